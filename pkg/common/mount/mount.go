// Package mount holds the node-side mount helpers both drivers use: what is
// mounted where (read from mountinfo, so callers check "is this path a live
// mount of the expected source", never mere directory existence), format
// and mount, bind mounts, cleanup, online resize and usage statistics.
package mount

import (
	"context"
	"errors"
	"fmt"
	"os"

	mountutils "k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
)

var (
	// ErrFilesystemMismatch reports a device that already carries a
	// different filesystem than the one asked for; it is never reformatted.
	ErrFilesystemMismatch = errors.New("device holds a different filesystem")
	// ErrUnformattedReadOnly reports a blank device that must be mounted
	// read-only, so it cannot be formatted.
	ErrUnformattedReadOnly = errors.New("device has no filesystem and is mounted read-only")
	// ErrUnsupportedFsType reports a filesystem type other than ext4 or xfs.
	ErrUnsupportedFsType = errors.New("unsupported filesystem type")
)

// Mounter runs mount operations through mount-utils and an exec interface,
// both replaceable by fakes in tests.
type Mounter struct {
	mounter mountutils.Interface
	exec    utilexec.Interface
	// entries lists the mount table; mountinfo on a real node, the fake
	// mounter's list in tests.
	entries func() ([]Entry, error)
}

// New returns a Mounter for the real host.
func New() *Mounter {
	return &Mounter{
		mounter: mountutils.New(""),
		exec:    utilexec.New(),
		entries: readMountInfo,
	}
}

// NewFake returns a Mounter over a fake mounter and a (scripted) exec; the
// mount table is the fake's list.
func NewFake(fm *mountutils.FakeMounter, ex utilexec.Interface) *Mounter {
	return &Mounter{
		mounter: fm,
		exec:    ex,
		entries: func() ([]Entry, error) { return fakeEntries(fm) },
	}
}

// Exec returns the exec interface the mounter runs tools with.
func (m *Mounter) Exec() utilexec.Interface { return m.exec }

// Unmount unmounts target once.
func (m *Mounter) Unmount(target string) error {
	return m.mounter.Unmount(target)
}

// CleanupMountPoint unmounts target if it is mounted (corrupted mounts
// included) and removes it. A missing path is fine: cleanup is idempotent.
func (m *Mounter) CleanupMountPoint(target string) error {
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := mountutils.CleanupMountPoint(target, m.mounter, true); err != nil {
		return fmt.Errorf("clean up mount point %q: %w", target, err)
	}
	return nil
}

// IsCorruptedMount reports whether path is a mount whose server side is
// gone: a FUSE daemon that died answers ENOTCONN, a stale device EIO.
func IsCorruptedMount(path string) bool {
	_, err := os.Stat(path)
	return mountutils.IsCorruptedMnt(err)
}

// ResizeFs grows the filesystem on device, mounted at mountPath, to the
// size of the device (resize2fs for ext4, xfs_growfs for xfs).
func (m *Mounter) ResizeFs(device, mountPath string) error {
	if _, err := mountutils.NewResizeFs(m.exec).Resize(device, mountPath); err != nil {
		return fmt.Errorf("resize filesystem on %q: %w", device, err)
	}
	return nil
}

// NeedResize reports whether the filesystem on device is smaller than the
// device.
func (m *Mounter) NeedResize(device, mountPath string) (bool, error) {
	return mountutils.NewResizeFs(m.exec).NeedResize(device, mountPath)
}

// run runs a command and returns its combined output in the error.
func (m *Mounter) run(ctx context.Context, name string, args ...string) error {
	out, err := m.exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, trimOutput(out))
	}
	return nil
}

// trimOutput keeps tool output short enough for an error message.
func trimOutput(out []byte) string {
	const max = 512
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return string(out)
}
