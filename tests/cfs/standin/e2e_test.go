package standin_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// TestTwoNodesShareFiles mounts one volume twice (two "nodes") and checks
// what a user would: the mount looks like the real client's, a file written
// on one node reads back on the other, df shows the volume capacity, and
// umount ends the client process.
func TestTwoNodesShareFiles(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	e.createVol("pvc-shared", 10)
	cfgA, mntA := e.config("nodeA", "pvc-shared", nil)
	cfgB, mntB := e.config("nodeB", "pvc-shared", nil)
	e.mount(cfgA, mntA)
	e.mount(cfgB, mntB)

	m, _ := findMount(mntA)
	if m.fstype != "fuse.cubefs" || m.source != "cubefs-pvc-shared" ||
		!strings.HasPrefix(m.opts, "rw,nosuid,nodev") ||
		!strings.Contains(m.superOpts, "allow_other,max_read=262144") {
		t.Errorf("mountinfo = %+v, want fuse.cubefs cubefs-pvc-shared rw,nosuid,nodev ... allow_other,max_read=262144", m)
	}

	want := []byte("written on node A\n")
	if err := os.MkdirAll(filepath.Join(mntA, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mntA, "a/b/f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mntB, "a/b/f")); err != nil || string(got) != string(want) {
		t.Fatalf("read on node B = %q, %v; want %q", got, err, want)
	}

	var st syscall.Statfs_t
	if err := syscall.Statfs(mntB, &st); err != nil {
		t.Fatal(err)
	}
	if total := st.Blocks * uint64(st.Bsize); total != 10<<30 {
		t.Errorf("statfs size = %d, want 10 GiB", total)
	}

	pidA := daemonPID(t, cfgA)
	if err := syscall.Unmount(mntA, 0); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pidA)
	if _, err := os.Stat(filepath.Join(mntB, "a/b/f")); err != nil {
		t.Errorf("node B after node A unmounted: %v", err)
	}
}

// TestReadOnlyAndSubdir: rdonly mounts refuse writes with EROFS; subdir
// mounts show only that directory; a missing subdir fails the mount.
func TestReadOnlyAndSubdir(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	e.createVol("pvc-ro", 1)
	if err := os.MkdirAll(filepath.Join(e.dataRoot, "pvc-ro", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dataRoot, "pvc-ro", "sub", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	cfg, mnt := e.config("ro", "pvc-ro", map[string]any{"rdonly": "true", "subdir": "sub"})
	e.mount(cfg, mnt)
	if m, _ := findMount(mnt); !strings.HasPrefix(m.opts, "ro,") {
		t.Errorf("mount options = %q, want ro", m.opts)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil {
		t.Errorf("read in subdir mount: %v", err)
	}
	err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write on rdonly mount: %v, want EROFS", err)
	}

	cfg, mnt = e.config("nosub", "pvc-ro", map[string]any{"subdir": "missing"})
	e.cleanupMount(mnt)
	code, out := e.run(nil, "-c", cfg)
	if code != 1 || !strings.Contains(out, "mount failed: lookup subdir(missing) failed") {
		t.Errorf("missing subdir: exit %d %q", code, redactEnv(out))
	}
}

// TestMountFailures: each failure exits 1 with one "Mount failed:" line
// carrying the real client's reason.
func TestMountFailures(t *testing.T) {
	tests := []struct {
		name      string
		numbering emulator.Numbering
		cfg       map[string]any
		deleted   bool
		want      string
	}{
		{"wrong owner", emulator.Numbering35, map[string]any{"owner": "wronguser"}, false,
			"[fuse.go 543] mount failed: [super.go 138] NewMetaWrapper failed!client and server auth key do not match :: client and server auth key do not match"},
		{"wrong owner, 2.x codes", emulator.Numbering2x, map[string]any{"owner": "wronguser"}, false,
			"NewMetaWrapper failed!client and server auth key do not match"},
		{"missing volume", emulator.Numbering35, map[string]any{"volName": "pvc-nope"}, false,
			"[fuse.go 393] parse mount opt from master failed: vol not exists"},
		{"marked deleted", emulator.Numbering35, nil, true,
			"NewMetaWrapper failed!vol not exists :: vol not exists"},
		{"no master listening", emulator.Numbering35, map[string]any{"masterAddr": "127.0.0.1:1"}, false,
			`parse mount opt from master failed: Get "http://127.0.0.1:1/admin/getVol?name=pvc-f": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"lacks owner", emulator.Numbering35, map[string]any{"owner": ""}, false,
			"parse mount opt failed: invalid config file: lack of mandatory fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, emulator.Options{Numbering: tc.numbering})
			e.createVol("pvc-f", 1)
			if tc.deleted {
				e.deleteVol("pvc-f")
			}
			cfg, mnt := e.config("n", "pvc-f", tc.cfg)
			e.cleanupMount(mnt)
			code, out := e.run([]string{"CFS_STANDIN_RETRY_UNIT=1ms"}, "-c", cfg)
			if code != 1 || !strings.HasPrefix(out, "Mount failed: startDaemon failed: daemon start failed, cmd(") ||
				!strings.Contains(out, "err(readFromProcess: sub-process: ") || !strings.Contains(out, tc.want) ||
				strings.Count(out, "\n") != 1 {
				t.Errorf("exit %d, stdout %q; want exit 1 and one Mount failed line with %q", code, redactEnv(out), tc.want)
			}
			if isMountPoint(mnt) {
				t.Errorf("%s is mounted after a failed mount", mnt)
			}
		})
	}
}

// TestFailoverToSecondMaster: an address that refuses or answers non-JSON
// is skipped, as the client tries each master in turn.
func TestFailoverToSecondMaster(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	e.createVol("pvc-ha", 1)
	badEmu, bad := emulator.NewTestServer(t, emulator.Options{})
	if err := badEmu.InjectFault(emulator.Fault{Kind: emulator.FaultNonJSON}); err != nil {
		t.Fatal(err)
	}
	cfg, mnt := e.config("ha", "pvc-ha", map[string]any{
		"masterAddr": "127.0.0.1:1," + bad.Listener.Addr().String() + "," + e.master(),
	})
	e.mount(cfg, mnt)
}

// TestKilledClientLeavesDeadMount: SIGKILL (and SIGTERM, which the real
// client also answers by exiting without unmounting) leaves the mount in
// place, answering "transport endpoint is not connected"; mounting again on
// it fails until it is unmounted.
func TestKilledClientLeavesDeadMount(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t, emulator.Options{})
			e.createVol("pvc-k", 1)
			cfg, mnt := e.config("k", "pvc-k", nil)
			e.mount(cfg, mnt)

			pid := daemonPID(t, cfg)
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatal(err)
			}
			waitGone(t, pid)
			if err := statDeadMount(t, mnt); !errors.Is(err, syscall.ENOTCONN) {
				t.Fatalf("stat dead mount: %v, want ENOTCONN", err)
			}
			if !isMountPoint(mnt) {
				t.Fatal("dead mount vanished from mountinfo")
			}

			code, out := e.run(nil, "-c", cfg)
			if code != 1 || !strings.Contains(out, "err(readFromProcess: Decode: EOF)") {
				t.Errorf("mount over dead mount: exit %d %q, want 1 Decode: EOF", code, redactEnv(out))
			}
			if err := syscall.Unmount(mnt, 0); err != nil {
				t.Fatal(err)
			}
			e.mount(cfg, mnt)
		})
	}
}

// TestForeground: -f serves in the foreground and exits 0 on umount.
func TestForeground(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	e.createVol("pvc-fg", 1)
	cfg, mnt := e.config("fg", "pvc-fg", nil)
	e.cleanupMount(mnt)

	done := make(chan int, 1)
	go func() {
		code, _ := e.run(nil, "-f", "-c", cfg)
		done <- code
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !isMountPoint(mnt) {
		if time.Now().After(deadline) {
			t.Fatal("foreground client did not mount")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("foreground exit %d after umount, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("foreground client did not exit after umount")
	}
}

// TestVersion: -v prints and exits 0 without mounting.
func TestVersion(t *testing.T) {
	e := &env{t: t}
	code, out := e.run(nil, "-v")
	if code != 0 || !strings.Contains(out, "STAND-IN") {
		t.Errorf("-v: exit %d %q", code, out)
	}
}

// statDeadMount stats a mount whose server died, until the error settles.
// A request caught in flight while the kernel aborts the connection fails
// with ECONNABORTED (rarely EIO); later ones get ENOTCONN.
func statDeadMount(t *testing.T, mnt string) error {
	var err error
	for i := 0; i < 200; i++ {
		if _, err = os.Stat(mnt); errors.Is(err, syscall.ENOTCONN) || err == nil {
			return err
		}
		t.Logf("transient error on dead mount: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// TestClientFollowsMaster: like the real client, a mounted stand-in picks up
// a new capacity at its statfs refresh, and exits (leaving a dead mount)
// when its volume is deleted.
func TestClientFollowsMaster(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	e.createVol("pvc-w", 1)
	cfg, mnt := e.config("w", "pvc-w", nil)
	e.cleanupMount(mnt)
	fast := []string{"CFS_STANDIN_CONF_INTERVAL=100ms", "CFS_STANDIN_STATFS_INTERVAL=100ms"}
	if code, out := e.run(fast, "-c", cfg); code != 0 {
		t.Fatalf("mount: exit %d %s", code, redactEnv(out))
	}
	pid := daemonPID(t, cfg)

	e.api("/vol/expand?name=pvc-w&capacity=3&authKey=" + emulator.AuthKey("csiuser"))
	waitUntil(t, func() bool {
		var st syscall.Statfs_t
		return syscall.Statfs(mnt, &st) == nil && st.Blocks*uint64(st.Bsize) == 3<<30
	})

	e.deleteVol("pvc-w")
	waitGone(t, pid)
	if err := statDeadMount(t, mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("mount of a deleted volume: %v, want ENOTCONN", err)
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
