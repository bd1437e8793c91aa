package standin

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// maxRead matches the max_read=262144 the real client's mount shows.
const maxRead = 256 << 10

// mountSpec says what to mount where.
type mountSpec struct {
	mountPoint string
	backing    string // directory whose files the mount serves
	source     string // mountinfo source, cubefs-<vol>
	subtype    string // mountinfo fstype is fuse.<subtype>
	readOnly   bool
	quota      *quota
}

// quota is the capacity statfs reports, refreshed from the master.
type quota struct {
	total atomic.Uint64
	used  atomic.Uint64
}

// volNode is a loopback node whose statfs reports the volume's quota, as
// the real client's df shows the volume capacity, not the host disk's.
type volNode struct {
	*fs.LoopbackNode
	quota *quota
}

var (
	_ fs.NodeStatfser    = (*volNode)(nil)
	_ fs.NodeWrapChilder = (*volNode)(nil)
)

// WrapChild makes every looked-up node a volNode too.
func (n *volNode) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &volNode{LoopbackNode: ops.(*fs.LoopbackNode), quota: n.quota}
}

// Statfs keeps the host's inode figures and replaces the block figures.
func (n *volNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	if errno := n.LoopbackNode.Statfs(ctx, out); errno != 0 {
		return errno
	}
	bsize := uint64(out.Bsize)
	if bsize == 0 {
		bsize = 4096
		out.Bsize = uint32(bsize)
	}
	total := n.quota.total.Load()
	used := min(n.quota.used.Load(), total)
	out.Blocks = total / bsize
	out.Bfree = (total - used) / bsize
	out.Bavail = out.Bfree
	return fs.OK
}

// mountLoopback mounts spec and returns once the kernel has the mount.
func mountLoopback(spec mountSpec) (*fuse.Server, error) {
	root, err := fs.NewLoopbackRoot(spec.backing)
	if err != nil {
		return nil, err
	}
	lb := root.(*fs.LoopbackNode)
	node := &volNode{LoopbackNode: lb, quota: spec.quota}
	lb.RootData.RootNode = node

	// No kernel caching of names or attributes: another "node" may change
	// the backing directory at any time, and tests read across mounts.
	var noCache time.Duration
	opts := &fs.Options{
		EntryTimeout: &noCache, AttrTimeout: &noCache, NegativeTimeout: &noCache,
		MountOptions: fuse.MountOptions{
			AllowOther: true, FsName: spec.source, Name: spec.subtype,
			MaxWrite: maxRead, DirectMount: true,
		},
	}
	if spec.readOnly {
		opts.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	return fs.Mount(spec.mountPoint, node, opts)
}

// isMounted reports whether path is a mount point in /proc/self/mountinfo
// (dead FUSE mounts included), like the real client's check of `mount`.
func isMounted(path string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountPath(fields[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
