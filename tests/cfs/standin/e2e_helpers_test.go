package standin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// standinBin is the cfs-client-standin binary built once by TestMain.
var standinBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfs-standin-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	standinBin = filepath.Join(dir, "cfs-client-standin")
	build := exec.Command("go", "build", "-o", standinBin, "../cmd/cfs-client-standin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cfs-client-standin:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needFUSE skips tests that mount when this machine cannot.
func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

// env is one test's world: an emulator and a data root shared by mounts.
type env struct {
	t        *testing.T
	emu      *emulator.Emulator
	srv      *httptest.Server
	dataRoot string
	dir      string
}

func newEnv(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	needFUSE(t)
	e := &env{t: t, dir: t.TempDir(), dataRoot: t.TempDir()}
	opts.DataRoot = e.dataRoot
	e.emu, e.srv = emulator.NewTestServer(t, opts)
	return e
}

// master is the emulator's host:port.
func (e *env) master() string { return e.srv.Listener.Addr().String() }

// createVol creates a volume owned by csiuser.
func (e *env) createVol(name string, capacityGB int) {
	e.t.Helper()
	q := url.Values{"name": {name}, "owner": {"csiuser"}, "capacity": {strconv.Itoa(capacityGB)}}
	e.api("/admin/createVol?" + q.Encode())
}

// config writes a client config for a mount named node and returns its path
// and mount point. extra keys override the defaults.
func (e *env) config(node, vol string, extra map[string]any) (string, string) {
	e.t.Helper()
	mnt := filepath.Join(e.dir, node, "mnt")
	cfg := map[string]any{
		"masterAddr": e.master(), "mountPoint": mnt, "volName": vol, "owner": "csiuser",
		"logDir": filepath.Join(e.dir, node, "log"), "logLevel": "info",
		"profPort": "17410", "exporterPort": "17510", "consulAddr": "",
		"standinDataRoot": e.dataRoot,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(e.dir, node+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path, mnt
}

// run runs the stand-in with args and returns its exit code and stdout.
func (e *env) run(environ []string, args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(standinBin, args...)
	cmd.Env = append(os.Environ(), environ...)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), out.String()
	default:
		e.t.Fatalf("run stand-in: %v", err)
		return -1, ""
	}
}

// mount runs "cfs-client -c cfg" (daemon mode), requires exit 0, and
// unmounts at cleanup.
func (e *env) mount(cfg, mnt string) {
	e.t.Helper()
	e.cleanupMount(mnt)
	if code, out := e.run(nil, "-c", cfg); code != 0 {
		e.t.Fatalf("mount %s: exit %d: %s", mnt, code, redactEnv(out))
	}
}

// cleanupMount unmounts mnt when the test ends, whatever state it is in.
func (e *env) cleanupMount(mnt string) {
	e.t.Cleanup(func() {
		for i := 0; i < 50 && isMountPoint(mnt); i++ {
			if err := syscall.Unmount(mnt, 0); err != nil {
				_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// daemonPID reads the pid file the daemon writes under its log directory.
func daemonPID(t *testing.T, cfgPath string) int {
	t.Helper()
	logDir := filepath.Join(filepath.Dir(cfgPath), strings.TrimSuffix(filepath.Base(cfgPath), ".json"), "log")
	raw, err := os.ReadFile(filepath.Join(logDir, "client", "fuseclient.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// mountEntry is one /proc/self/mountinfo line's interesting fields.
type mountEntry struct {
	opts, fstype, source, superOpts string
}

// findMount returns mnt's mountinfo entry, if mounted.
func findMount(mnt string) (mountEntry, bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mountEntry{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) > 5 && len(tail) > 2 && fields[4] == mnt {
			return mountEntry{opts: fields[5], fstype: tail[0], source: tail[1], superOpts: tail[2]}, true
		}
	}
	return mountEntry{}, false
}

func isMountPoint(mnt string) bool {
	_, ok := findMount(mnt)
	return ok
}

// redactEnv drops the env([...]) part of a "Mount failed" line, which
// holds the whole environment, before it reaches a test log.
func redactEnv(s string) string {
	start := strings.Index(s, " env([")
	end := strings.Index(s, "]) err(")
	if start < 0 || end < start {
		return s
	}
	return s[:start] + " env([...])" + s[end+1:]
}

// waitGone waits until process pid has exited.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 250; i++ {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || isZombie(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still running", pid)
}

// isZombie reports whether pid has exited but not been reaped yet.
func isZombie(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, ok := strings.Cut(string(raw), ") ")
	return ok && strings.HasPrefix(after, "Z")
}

// deleteVol deletes a volume (csiuser's) through the API.
func (e *env) deleteVol(name string) {
	e.t.Helper()
	e.api("/vol/delete?name=" + name + "&authKey=" + emulator.AuthKey("csiuser"))
}

// api GETs pathQuery from the emulator and requires code 0.
func (e *env) api(pathQuery string) {
	e.t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + pathQuery)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env emulator.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env.Code != 0 {
		e.t.Fatalf("%s: %+v %v", pathQuery, env, err)
	}
}
