package rbd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// fuseFsType is how an rbd-fuse mount shows in the mount table.
const fuseFsType = "fuse.rbd-fuse"

// cephKeyRE is what a cephx key looks like (base64); anything else could
// break out of the keyring file.
var cephKeyRE = regexp.MustCompile(`^[A-Za-z0-9+/]+={0,2}$`) //nolint:gochecknoglobals // constant

// fuseMapper is the userspace mapper for nodes without the rbd and nbd
// kernel modules: one rbd-fuse process per staged volume exposes just that
// image as a file (-r), and a loop device (direct I/O) turns the file into
// a block device. rbd-fuse reads its monitors and key from a conf and a
// keyring written 0600 in the volume's working directory, which stay
// there while the process runs and are removed by Unmap.
type fuseMapper struct {
	exec     utilexec.Interface
	mounter  *mount.Mounter
	stateDir string
	// settle bounds the waits for a loop device to let go of its file and
	// for the rbd-fuse process to exit after unmount.
	settle time.Duration
}

func newFuseMapper(ex utilexec.Interface, m *mount.Mounter, stateDir string) *fuseMapper {
	return &fuseMapper{exec: ex, mounter: m, stateDir: stateDir, settle: 10 * time.Second}
}

// fusePaths are the files of one volume's working directory.
type fusePaths struct {
	dir, mnt, conf, keyring string
}

func (f *fuseMapper) paths(volumeID string) fusePaths {
	dir := filepath.Join(f.stateDir, "fuse", noderecord.Key(volumeID))
	return fusePaths{
		dir:     dir,
		mnt:     filepath.Join(dir, "mnt"),
		conf:    filepath.Join(dir, "ceph.conf"),
		keyring: filepath.Join(dir, "keyring"),
	}
}

// Map implements mapper.
func (f *fuseMapper) Map(ctx context.Context, req *MapRequest) (_ *Mapping, err error) {
	if err := validateFuseRequest(req); err != nil {
		return nil, err
	}
	p := f.paths(req.VolumeID)
	m := &Mapping{Mapper: MounterFuse, Spec: req.spec(), ReadOnly: req.ReadOnly,
		WorkDir: p.dir, File: filepath.Join(p.mnt, req.Image)}

	// Reuse a live rbd-fuse mount (and its loop device) from an earlier try.
	live, err := f.liveMount(p.mnt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if uerr := f.Unmap(context.WithoutCancel(ctx), m); uerr != nil {
				klog.FromContext(ctx).Error(uerr, "Undo of a failed map left state behind", "image", m.Spec)
			}
		}
	}()
	if !live {
		if err := f.startFuse(ctx, req, p); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(m.File); err != nil {
		return nil, fmt.Errorf("%w: %s is not visible through rbd-fuse: %v", ErrImageNotMapped, m.Spec, err)
	}

	if m.Device, err = f.reuseLoop(ctx, m.File, req.ReadOnly); err != nil || m.Device != "" {
		return m, err
	}
	if m.Device, err = f.attachLoop(ctx, m.File, req.ReadOnly); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Image mapped", "mapper", MounterFuse, "device", m.Device, "image", m.Spec)
	return m, nil
}

// reuseLoop returns a loop device an earlier try attached to file in the
// same mode; one in the other mode is detached, so a read-only stage never
// gets a writable device.
func (f *fuseMapper) reuseLoop(ctx context.Context, file string, readOnly bool) (string, error) {
	loops, err := loopDevicesFor(file)
	if err != nil {
		return "", err
	}
	for _, dev := range loops {
		if loopReadOnly(dev) == readOnly {
			klog.FromContext(ctx).V(4).Info("Image already mapped", "device", dev, "file", file)
			return dev, nil
		}
		if out, err := f.exec.CommandContext(ctx, "losetup", "-d", dev).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%w: losetup -d %s: %v: %s", ErrMapFailed, dev, err, redact(out, ""))
		}
	}
	return "", nil
}

// validateFuseRequest keeps everything that goes into the conf and keyring
// files on one line, so no value can add settings.
func validateFuseRequest(req *MapRequest) error {
	if !cephKeyRE.MatchString(string(req.Key)) {
		return fmt.Errorf("%w: the user key is not a cephx key", ErrMissingCredentials)
	}
	for _, v := range append([]string{req.User, req.Pool, req.Namespace, req.Image}, req.Monitors...) {
		if strings.ContainsAny(v, "\n\r\x00") {
			return fmt.Errorf("%w: control character in user, pool, image or monitors", ErrMissingCredentials)
		}
	}
	if req.User == "" || len(req.Monitors) == 0 {
		return fmt.Errorf("%w: user and monitors are required", ErrMissingCredentials)
	}
	return nil
}

// liveMount reports whether mnt holds a working rbd-fuse mount. A dead one
// (its process gone, ENOTCONN) is unmounted so a new one can take its place.
func (f *fuseMapper) liveMount(mnt string) (bool, error) {
	e, err := f.mounter.Lookup(mnt)
	if err != nil || e == nil {
		return false, err
	}
	if e.FsType == fuseFsType && fuseAlive(filepath.Dir(mnt), mnt) {
		return true, nil
	}
	// Loop devices still over the dead mount's file go first, or the
	// unmount finds the mount busy.
	loops, err := loopDevicesUnder(mnt)
	if err != nil {
		return false, err
	}
	for _, dev := range loops {
		if out, err := f.exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			return false, fmt.Errorf("losetup -d %s: %w: %s", dev, err, redact(out, ""))
		}
	}
	if err := f.unmountFuse(context.Background(), mnt); err != nil {
		return false, fmt.Errorf("unmount dead rbd-fuse at %s: %w", mnt, err)
	}
	return false, nil
}

// fuseAlive reports whether the rbd-fuse serving mnt still runs. A dead
// daemon is not always visible through stat (the kernel may answer from
// its attribute cache), so the process is looked for as well.
func fuseAlive(workDir, mnt string) bool {
	return len(fuseProcesses(workDir)) > 0 && !mount.IsCorruptedMount(mnt)
}

// startFuse writes the conf and keyring (0600) and starts rbd-fuse, which
// daemonizes once the mount is up.
func (f *fuseMapper) startFuse(ctx context.Context, req *MapRequest, p fusePaths) error {
	if err := os.MkdirAll(p.mnt, 0o700); err != nil {
		return fmt.Errorf("create rbd-fuse mount point: %w", err)
	}
	if err := os.Chmod(p.dir, 0o700); err != nil {
		return fmt.Errorf("protect working directory: %w", err)
	}
	keyring := fmt.Sprintf("[client.%s]\n\tkey = %s\n", req.User, string(req.Key))
	if err := writePrivate(p.keyring, keyring); err != nil {
		return err
	}
	if err := writePrivate(p.conf, fuseConf(req.Monitors, p.keyring)); err != nil {
		return err
	}

	args := []string{p.mnt, "-c", p.conf, "--id", req.User, "-p", req.Pool, "-r", req.Image}
	if req.Namespace != "" {
		// Long form only: -s is also FUSE's single-thread flag.
		args = append(args, "--namespace="+req.Namespace)
	}
	out, err := f.exec.CommandContext(ctx, "rbd-fuse", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: rbd-fuse %s: %v: %s", ErrMapFailed, req.spec(), err, redact(out, req.Key))
	}
	return nil
}

// fuseConf is rbd-fuse's private configuration: no admin socket, no log
// file, a bounded wait for the monitors at start, and no librbd cache.
// The loop device already bypasses the page cache (direct I/O); librbd's
// writeback cache would acknowledge writes before they reach the OSDs,
// and once this node is fenced (blocklisted) it went on acknowledging
// writes that never arrive (measured: 20 s of "successful" writes after
// a frozen rbd-fuse resumed; without the cache the first one fails, EIO).
func fuseConf(monitors []string, keyring string) string {
	return "[global]\n" +
		"mon host = " + strings.Join(monitors, ",") + "\n" +
		"keyring = " + keyring + "\n" +
		"admin socket = \n" +
		"log file = \n" +
		"client mount timeout = 30\n" +
		"rados mon op timeout = 30\n" +
		"rbd cache = false\n"
}

func writePrivate(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return os.Chmod(path, 0o600) // WriteFile keeps the mode of an existing file
}

// attachLoop attaches file to a free loop device with direct I/O, so
// writes go to rbd-fuse instead of lingering in a second page cache.
func (f *fuseMapper) attachLoop(ctx context.Context, file string, readOnly bool) (string, error) {
	args := []string{"-f", "--show", "--direct-io=on"}
	if readOnly {
		args = append(args, "-r")
	}
	out, err := f.exec.CommandContext(ctx, "losetup", append(args, file)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: losetup %s: %v: %s", ErrMapFailed, file, err, redact(out, ""))
	}
	dev := lastLine(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("%w: losetup printed %q", ErrMapFailed, dev)
	}
	return dev, nil
}

// Unmap implements mapper: detach the loop devices backed by the image
// file, unmount rbd-fuse (which ends the process), remove the files.
func (f *fuseMapper) Unmap(ctx context.Context, m *Mapping) error {
	// The working directory is removed recursively: never trust a record
	// that points outside our own state directory.
	base := filepath.Join(f.stateDir, "fuse") + string(filepath.Separator)
	if !strings.HasPrefix(m.WorkDir, base) || filepath.Dir(filepath.Dir(m.File)) != m.WorkDir {
		return fmt.Errorf("%w: fuse mapping outside %s", ErrUnmapFailed, base)
	}
	mnt := filepath.Dir(m.File)
	loops, err := loopDevicesFor(m.File)
	if err != nil {
		return err
	}
	for _, dev := range loops {
		if out, err := f.exec.CommandContext(ctx, "losetup", "-d", dev).CombinedOutput(); err != nil {
			return fmt.Errorf("%w: losetup -d %s: %v: %s", ErrUnmapFailed, dev, err, redact(out, ""))
		}
	}
	if err := f.unmountFuse(ctx, mnt); err != nil {
		return err
	}
	if err := waitGone(ctx, f.settle, func() bool { return len(fuseProcesses(m.WorkDir)) == 0 }); err != nil {
		return fmt.Errorf("%w: rbd-fuse for %s still running after unmount", ErrUnmapFailed, m.Spec)
	}
	if err := os.RemoveAll(m.WorkDir); err != nil {
		return fmt.Errorf("%w: remove %s: %v", ErrUnmapFailed, m.WorkDir, err)
	}
	klog.FromContext(ctx).V(2).Info("Image unmapped", "mapper", MounterFuse, "device", m.Device, "image", m.Spec)
	return nil
}

// unmountFuse unmounts the rbd-fuse mount, retrying while a just-detached
// loop device still holds the file open (the kernel releases it lazily).
func (f *fuseMapper) unmountFuse(ctx context.Context, mnt string) error {
	var last error
	err := waitGone(ctx, f.settle, func() bool {
		e, err := f.mounter.Lookup(mnt)
		if err != nil {
			last = err
			return false
		}
		if e == nil {
			return true
		}
		last = f.mounter.Unmount(mnt)
		return false
	})
	if err != nil {
		return fmt.Errorf("%w: unmount rbd-fuse at %s: %v", ErrUnmapFailed, mnt, last)
	}
	return nil
}

// Check implements mapper: the rbd-fuse mount answers and the loop device
// is still backed by the image file.
func (f *fuseMapper) Check(_ context.Context, m *Mapping) error {
	mnt := filepath.Dir(m.File)
	if e, err := f.mounter.Lookup(mnt); err != nil {
		return err
	} else if e == nil || e.FsType != fuseFsType {
		return fmt.Errorf("%w: rbd-fuse is not mounted at %s", ErrMappingGone, mnt)
	}
	if !fuseAlive(m.WorkDir, mnt) {
		return fmt.Errorf("%w: rbd-fuse for %s is not running", ErrMappingGone, m.Spec)
	}
	backing, err := loopBackingFile(m.Device)
	if err != nil || backing != m.File {
		return fmt.Errorf("%w: %s is not backed by %s", ErrMappingGone, m.Device, m.File)
	}
	return nil
}

// Refresh implements mapper: rbd-fuse shows the new size once its
// attribute cache expires (about a second); then the loop device is told
// to re-read the size of its file.
func (f *fuseMapper) Refresh(ctx context.Context, m *Mapping, size int64) (int64, error) {
	var seen int64
	err := waitGone(ctx, f.settle, func() bool {
		fi, err := os.Stat(m.File)
		if err == nil {
			seen = fi.Size()
		}
		return err == nil && seen >= size
	})
	if err != nil {
		return 0, fmt.Errorf("%w: rbd-fuse shows %s at %d bytes, want %d", ErrDeviceNotGrown, m.Spec, seen, size)
	}
	if out, err := f.exec.CommandContext(ctx, "losetup", "-c", m.Device).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("losetup -c %s: %w: %s", m.Device, err, redact(out, ""))
	}
	return waitDeviceSize(ctx, m.Device, size, mount.DeviceSize, 100*time.Millisecond)
}

// waitGone polls done until it reports true, ctx ends or max passes.
func waitGone(ctx context.Context, max time.Duration, done func() bool) error {
	deadline := time.Now().Add(max)
	for !done() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
