package floor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MountOptions configure the hand-run mount path.
type MountOptions struct {
	// Dir is a private directory for the per-volume working directories
	// (client config, keyring, FUSE mount point).
	Dir      string
	Monitors []string
	User     string
	// Key is written to a 0600 keyring per volume; rbd-fuse reads it there.
	Key  string
	Pool string
	// RbdFuse is the rbd-fuse binary (default "rbd-fuse").
	RbdFuse string
}

// Mounter runs the userspace mount path as plain commands, the same steps
// the driver's userspace mapper and mount helpers take: a 0600 conf and
// keyring per volume, rbd-fuse exposing that one image as a file (-r),
// losetup with direct I/O, blkid to see the device is blank, mkfs.ext4
// with the driver's options, mount on the staging path, and a bind mount
// on the target path. Teardown: umount both, losetup -d, umount rbd-fuse,
// wait for the rbd-fuse process to exit, remove the working directory.
//
// What the floor leaves out is the driver's own overhead: gRPC, locks, the
// RWO ownership claim on the image, node records, mount-table lookups and
// the second (remount) call mount-utils makes for every bind.
type Mounter struct {
	opts MountOptions
}

// Staged is what Unstage needs to undo one Stage.
type Staged struct {
	Image   string
	WorkDir string
	FuseDir string
	Device  string
	Staging string
	Target  string
}

// Steps are the durations of the individual commands of one call.
type Steps map[string]time.Duration

// NewMounter returns a Mounter working in o.Dir.
func NewMounter(o MountOptions) (*Mounter, error) {
	if o.RbdFuse == "" {
		o.RbdFuse = "rbd-fuse"
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	return &Mounter{opts: o}, nil
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
	st.WorkDir = filepath.Join(m.opts.Dir, st.Image)
	st.FuseDir = filepath.Join(st.WorkDir, "mnt")
	if err := os.MkdirAll(st.FuseDir, 0o700); err != nil {
		return err
	}
	conf, err := m.writeClientFiles(st.WorkDir)
	if err != nil {
		return err
	}
	if err := m.timed(ctx, steps, "rbd-fuse", m.opts.RbdFuse, st.FuseDir, "-c", conf,
		"--id", m.opts.User, "-p", m.opts.Pool, "-r", st.Image); err != nil {
		return err
	}
	file := filepath.Join(st.FuseDir, st.Image)
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("%s not visible through rbd-fuse: %w", st.Image, err)
	}

	out, err := m.output(ctx, steps, "losetup", "losetup", "-f", "--show", "--direct-io=on", file)
	if err != nil {
		return err
	}
	st.Device = strings.TrimSpace(out)

	// blkid exits 2 when the device holds nothing: that is the blank case.
	out, err = m.output(ctx, steps, "blkid", "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE",
		"-o", "export", st.Device)
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 2) {
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

// writeClientFiles writes rbd-fuse's conf and keyring (0600), with the
// settings the driver's mapper uses, and returns the conf's path.
func (m *Mounter) writeClientFiles(dir string) (string, error) {
	keyring := filepath.Join(dir, "keyring")
	conf := filepath.Join(dir, "ceph.conf")
	kr := fmt.Sprintf("[client.%s]\n\tkey = %s\n", m.opts.User, m.opts.Key)
	if err := os.WriteFile(keyring, []byte(kr), 0o600); err != nil {
		return "", err
	}
	cf := "[global]\nmon host = " + strings.Join(m.opts.Monitors, ",") + "\nkeyring = " + keyring +
		"\nadmin socket = \nlog file = \nclient mount timeout = 30\nrados mon op timeout = 30\n"
	if err := os.WriteFile(conf, []byte(cf), 0o600); err != nil {
		return "", err
	}
	return conf, nil
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
	if st.FuseDir != "" {
		keep(m.unmountFuse(ctx, steps, st.FuseDir))
		start := time.Now()
		keep(waitNoFuse(ctx, st.WorkDir))
		steps["rbd-fuse exit"] += time.Since(start)
	}
	for _, p := range []string{st.Target, st.Staging} {
		if p != "" {
			_ = os.Remove(p)
		}
	}
	if st.WorkDir != "" {
		keep(os.RemoveAll(st.WorkDir))
	}
	return steps, first
}

// unmountFuse unmounts rbd-fuse, retrying while the just-detached loop
// device still holds the file (the kernel lets go of it lazily).
func (m *Mounter) unmountFuse(ctx context.Context, steps Steps, dir string) error {
	for {
		if !isMountPoint(dir) {
			return nil
		}
		err := m.timed(ctx, steps, "umount rbd-fuse", "umount", dir)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitNoFuse waits until no rbd-fuse process names a path under dir.
func waitNoFuse(ctx context.Context, dir string) error {
	for len(fuseProcesses(dir)) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("rbd-fuse for %s still running: %w", dir, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// fuseProcesses returns the PIDs of rbd-fuse processes whose command line
// names a path under dir.
func fuseProcesses(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "rbd-fuse" {
			continue
		}
		for _, a := range args[1:] {
			if a == dir || strings.HasPrefix(a, dir+string(filepath.Separator)) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
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
