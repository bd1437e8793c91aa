package mount

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	mountutils "k8s.io/mount-utils"
)

// Entry is one line of the mount table.
type Entry struct {
	// Target is the mount point.
	Target string
	// Source is the mounted device or the filesystem's source string.
	Source string
	// FsType is the filesystem type, e.g. ext4 or fuse.rbd-fuse.
	FsType string
	// Root is the path inside the filesystem that is mounted here; for a
	// bind mount of a device node it names that node (e.g. /loop3).
	Root string
	// Options are the per-mount options followed by the superblock ones.
	Options []string
	// Major and Minor are the device number of the mounted filesystem
	// (zero when the table came from a fake).
	Major, Minor int
}

// ReadOnly reports whether the mount is read-only.
func (e *Entry) ReadOnly() bool {
	for _, o := range e.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

// List returns the whole mount table, in mount order.
func (m *Mounter) List() ([]Entry, error) {
	all, err := m.entries()
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return all, nil
}

// Lookup returns the top-most mount on target, or nil when target is not a
// mount point. Symlinks in target are resolved first.
func (m *Mounter) Lookup(target string) (*Entry, error) {
	path := filepath.Clean(target)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	all, err := m.entries()
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var found *Entry
	for i := range all {
		if all[i].Target == path {
			found = &all[i] // later lines are mounted on top of earlier ones
		}
	}
	return found, nil
}

// MountedFrom reports whether target is a live mount of device: either a
// filesystem mounted from it, or the device node itself bind-mounted onto
// target (raw block). A device that no longer exists never matches.
func (m *Mounter) MountedFrom(target, device string) (bool, error) {
	e, err := m.Lookup(target)
	if err != nil || e == nil {
		return false, err
	}
	if e.Source == device {
		return true, nil
	}
	want, err := rdev(device)
	if err != nil {
		return false, nil //nolint:nilerr // a missing device is simply not the source
	}
	if got, err := rdev(target); err == nil {
		return got == want, nil // a device node bound onto a file
	}
	return e.Major == int(unix.Major(want)) && e.Minor == int(unix.Minor(want)), nil
}

// rdev returns the device number of a block device node.
func rdev(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%q is not a block device", path)
	}
	return st.Rdev, nil
}

// IsBlockDevice reports whether path is a block device node.
func IsBlockDevice(path string) bool {
	_, err := rdev(path)
	return err == nil
}

// readMountInfo reads /proc/self/mountinfo.
func readMountInfo() ([]Entry, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(infos))
	for _, in := range infos {
		opts := splitOptions(in.Options)
		opts = append(opts, splitOptions(in.VFSOptions)...)
		out = append(out, Entry{
			Target:  in.Mountpoint,
			Source:  in.Source,
			FsType:  in.FSType,
			Root:    in.Root,
			Options: opts,
			Major:   in.Major,
			Minor:   in.Minor,
		})
	}
	return out, nil
}

func splitOptions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// fakeEntries turns a fake mounter's list into entries.
func fakeEntries(fm *mountutils.FakeMounter) ([]Entry, error) {
	mps, err := fm.List()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(mps))
	for _, mp := range mps {
		out = append(out, Entry{
			Target:  mp.Path,
			Source:  mp.Device,
			FsType:  mp.Type,
			Options: append([]string(nil), mp.Opts...),
		})
	}
	return out, nil
}
