package floor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// MountOptions configure the hand-run mount path.
type MountOptions struct {
	// Dir is a private directory for the client config, the keyring and
	// the FUSE mount points.
	Dir      string
	Monitors []string
	User     string
	// Key is written to a 0600 keyring in Dir; rbd-fuse reads it there.
	Key  string
	Pool string
	// RbdFuse is the rbd-fuse binary (default "rbd-fuse").
	RbdFuse string
}

// Mounter runs the userspace mount path as plain commands, the same steps
// the driver's userspace mapper takes: rbd-fuse exposes one image as a
// file, losetup attaches it, blkid checks it is blank, mkfs.ext4 formats
// it, mount mounts it on the staging path and a bind mount publishes it.
type Mounter struct {
	opts MountOptions
	conf string
}

// Staged is what Unstage needs to undo one Stage.
type Staged struct {
	Image   string
	FuseDir string
	Device  string
	Staging string
	Target  string
}

// Steps are the durations of the individual commands of one call.
type Steps map[string]time.Duration

// NewMounter writes the client config and keyring (both 0600) into o.Dir.
func NewMounter(o MountOptions) (*Mounter, error) {
	if o.RbdFuse == "" {
		o.RbdFuse = "rbd-fuse"
	}
	keyring := filepath.Join(o.Dir, "keyring")
	conf := filepath.Join(o.Dir, "ceph.conf")
	kr := fmt.Sprintf("[client.%s]\n\tkey = %s\n", o.User, o.Key)
	if err := os.WriteFile(keyring, []byte(kr), 0o600); err != nil {
		return nil, err
	}
	cf := fmt.Sprintf("[global]\nmon host = %s\nkeyring = %s\nlog to stderr = false\n",
		strings.Join(o.Monitors, ","), keyring)
	if err := os.WriteFile(conf, []byte(cf), 0o600); err != nil {
		return nil, err
	}
	return &Mounter{opts: o, conf: conf}, nil
}

// Stage maps image, formats it, mounts it on staging and bind-mounts that
// on target. On failure it undoes what it did.
func (m *Mounter) Stage(ctx context.Context, image, staging, target string) (*Staged, Steps, error) {
	st := &Staged{Image: image, Staging: staging, Target: target}
	steps := Steps{}
	err := m.stage(ctx, st, steps)
	if err != nil {
		_, _ = m.Unstage(context.WithoutCancel(ctx), st)
		return nil, steps, err
	}
	return st, steps, nil
}

func (m *Mounter) stage(ctx context.Context, st *Staged, steps Steps) error {
	st.FuseDir = filepath.Join(m.opts.Dir, "fuse", st.Image)
	if err := os.MkdirAll(st.FuseDir, 0o700); err != nil {
		return err
	}
	if err := m.timed(ctx, steps, "rbd-fuse", m.opts.RbdFuse, "-c", m.conf, "--id", m.opts.User,
		"-p", m.opts.Pool, "-r", st.Image, st.FuseDir); err != nil {
		return err
	}
	file := filepath.Join(st.FuseDir, st.Image)
	if err := waitFile(ctx, file); err != nil {
		return err
	}

	out, err := m.output(ctx, steps, "losetup", "losetup", "-f", "--show", file)
	if err != nil {
		return err
	}
	st.Device = strings.TrimSpace(out)

	// blkid exits 2 when the device holds nothing: that is the blank case.
	out, err = m.output(ctx, steps, "blkid", "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE",
		"-o", "export", st.Device)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
		return err
	}
	if !strings.Contains(out, "TYPE=") {
		if err := m.timed(ctx, steps, "mkfs", "mkfs.ext4", "-F", "-m0", "-E",
			"nodiscard,lazy_itable_init=1,lazy_journal_init=1", st.Device); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(st.Staging, 0o750); err != nil {
		return err
	}
	if err := m.timed(ctx, steps, "mount", "mount", "-t", "ext4", st.Device, st.Staging); err != nil {
		return err
	}
	if err := os.MkdirAll(st.Target, 0o750); err != nil {
		return err
	}
	return m.timed(ctx, steps, "bind", "mount", "--bind", st.Staging, st.Target)
}

// Unstage undoes Stage in reverse order; it goes on after a failed step
// and returns the first error.
func (m *Mounter) Unstage(ctx context.Context, st *Staged) (Steps, error) {
	steps := Steps{}
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, p := range []string{st.Target, st.Staging} {
		if p != "" && isMountPoint(p) {
			keep(m.timed(ctx, steps, "umount", "umount", p))
		}
	}
	if st.Device != "" {
		keep(m.timed(ctx, steps, "losetup -d", "losetup", "-d", st.Device))
	}
	if st.FuseDir != "" && isMountPoint(st.FuseDir) {
		keep(m.timed(ctx, steps, "fusermount -u", "fusermount", "-u", st.FuseDir))
	}
	for _, p := range []string{st.Target, st.Staging, st.FuseDir} {
		if p != "" {
			_ = os.Remove(p)
		}
	}
	return steps, first
}

func (m *Mounter) timed(ctx context.Context, steps Steps, step, name string, args ...string) error {
	_, err := m.output(ctx, steps, step, name, args...)
	return err
}

// output runs a command, adds its duration to steps and returns stdout.
func (m *Mounter) output(ctx context.Context, steps Steps, step, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	steps[step] += time.Since(start)
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", step, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func waitFile(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", path, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// isMountPoint reports whether path is listed in /proc/self/mountinfo.
func isMountPoint(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescape(f[4]) == path {
			return true
		}
	}
	return false
}

// unescape undoes mountinfo's octal escapes of space, tab, newline, backslash.
func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
