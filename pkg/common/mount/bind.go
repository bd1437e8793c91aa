package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// ErrBadMountFlag reports a mount flag that is not a single plain option.
var ErrBadMountFlag = errors.New("invalid mount flag")

// mountFlagRE is one option: a name, optionally =value, without commas,
// spaces or shell-ish characters.
var mountFlagRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]+(=[A-Za-z0-9_.:/@+-]+)?$`) //nolint:gochecknoglobals // constant

// forbiddenFlags change what a mount is, not how it behaves.
var forbiddenFlags = map[string]bool{ //nolint:gochecknoglobals // constant set
	"bind": true, "rbind": true, "remount": true, "move": true,
	"shared": true, "rshared": true, "slave": true, "rslave": true,
	"private": true, "rprivate": true, "unbindable": true, "runbindable": true,
}

// ValidateMountFlags checks mount flags from a volume capability: each must
// be one plain option (no commas, spaces or odd characters) and must not
// turn the mount into a bind, remount or propagation change.
func ValidateMountFlags(flags []string) error {
	for _, f := range flags {
		if !mountFlagRE.MatchString(f) {
			return fmt.Errorf("%w: %q", ErrBadMountFlag, f)
		}
		if forbiddenFlags[f] {
			return fmt.Errorf("%w: %q is not allowed", ErrBadMountFlag, f)
		}
	}
	return nil
}

// Bind bind-mounts source onto target. With readOnly the bind is remounted
// read-only (a plain "bind,ro" mount is silently read-write on Linux);
// mount-utils does the bind-then-remount.
func (m *Mounter) Bind(source, target string, readOnly bool, flags []string) error {
	opts := append([]string{"bind"}, flags...)
	if readOnly {
		opts = append(opts, "ro")
	}
	if err := m.mounter.Mount(source, target, "", opts); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, target, err)
	}
	return nil
}

// MakeDir creates a directory target (and its parents) for a mount.
func MakeDir(target string) error {
	if err := os.MkdirAll(target, 0o750); err != nil {
		return fmt.Errorf("create directory %q: %w", target, err)
	}
	return nil
}

// MakeFile creates an empty regular file target (and its parents) for a
// bind mount of a device node. An empty directory left at target by an
// earlier caller is replaced.
func MakeFile(target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return fmt.Errorf("create directory %q: %w", filepath.Dir(target), err)
	}
	if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("replace directory %q with a file: %w", target, err)
		}
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create file %q: %w", target, err)
	}
	return f.Close()
}
