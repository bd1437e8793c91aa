package mount

import (
	"context"
	"fmt"

	mountutils "k8s.io/mount-utils"
)

// Supported filesystem types.
const (
	FsExt4 = "ext4"
	FsXFS  = "xfs"
)

// FormatOptions describe one format-and-mount.
type FormatOptions struct {
	// FsType is ext4 (the default when empty) or xfs.
	FsType string
	// MkfsOptions are appended to the defaults of mkfs.
	MkfsOptions []string
	// MountOptions are passed to mount; "ro" mounts read-only (and a
	// blank device is then refused, never formatted).
	MountOptions []string
}

// FormatAndMount mounts device on target, formatting it first only when
// blkid finds nothing on it. A device holding another filesystem or a
// partition table is never touched.
func (m *Mounter) FormatAndMount(ctx context.Context, device, target string, o FormatOptions) error {
	fsType := o.FsType
	if fsType == "" {
		fsType = FsExt4
	}
	if fsType != FsExt4 && fsType != FsXFS {
		return fmt.Errorf("%w: %q", ErrUnsupportedFsType, fsType)
	}

	existing, err := m.DiskFormat(device)
	if err != nil {
		return err
	}
	switch {
	case existing == "" && hasOption(o.MountOptions, "ro"):
		return fmt.Errorf("%w: %s", ErrUnformattedReadOnly, device)
	case existing == "":
		if err := m.run(ctx, "mkfs."+fsType, mkfsArgs(fsType, device, o.MkfsOptions)...); err != nil {
			return fmt.Errorf("format %s as %s: %w", device, fsType, err)
		}
	case existing != fsType:
		return fmt.Errorf("%w: %s has %s, want %s", ErrFilesystemMismatch, device, existing, fsType)
	}

	if err := m.mounter.Mount(device, target, fsType, o.MountOptions); err != nil {
		return fmt.Errorf("mount %s on %s: %w", device, target, err)
	}
	return nil
}

// DiskFormat returns the filesystem type blkid finds on device, "" for a
// blank device, or a non-empty placeholder for a partition table.
func (m *Mounter) DiskFormat(device string) (string, error) {
	sfm := &mountutils.SafeFormatAndMount{Interface: m.mounter, Exec: m.exec}
	format, err := sfm.GetDiskFormat(device)
	if err != nil {
		return "", fmt.Errorf("probe filesystem on %s: %w", device, err)
	}
	return format, nil
}

// mkfsArgs builds the mkfs command line: our defaults, then the user's
// options, then the device.
func mkfsArgs(fsType, device string, user []string) []string {
	var args []string
	switch fsType {
	case FsExt4:
		// No reserved blocks, no discard of a thin image, lazy init so
		// formatting a large image takes seconds.
		args = []string{"-F", "-m0", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1"}
	case FsXFS:
		// -K: do not discard blocks at mkfs time.
		args = []string{"-f", "-K"}
	}
	args = append(args, user...)
	return append(args, device)
}

func hasOption(opts []string, want string) bool {
	for _, o := range opts {
		if o == want {
			return true
		}
	}
	return false
}
