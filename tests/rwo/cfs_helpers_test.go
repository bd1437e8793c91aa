package rwo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// Short leases keep the expiry scenarios quick: a holder renews every
// second, another node takes over after seeing no renewal for 3 s + 1 s.
const (
	cfsLease      = 3 * time.Second
	cfsGrace      = 1 * time.Second
	cfsOwner      = "rwotester"
	cfsCallWait   = 2 * time.Minute
	cfsPluginWait = 20 * time.Second
)

// cfsBinaries are the binaries the scenarios run, from `make build tools`.
type cfsBinaries struct {
	plugin, standin string
}

func cfsBins(t *testing.T) cfsBinaries {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (FUSE mounts)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
	b := cfsBinaries{
		plugin:  cfsBinPath(t, "TKESTOR_BIN", "tkestor-csi", "make build"),
		standin: cfsBinPath(t, "TKESTOR_CFS_STANDIN", "cfs-client-standin", "make tools"),
	}
	return b
}

func cfsBinPath(t *testing.T, env, name, how string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		path = filepath.Join("..", "..", "bin", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s missing: run `%s` first", abs, how)
	}
	return abs
}

// cfsCluster is one emulated ChubaoFS cluster: the master emulator (in
// this process), a data root shared by every stand-in client ("the
// cluster's storage"), a controller plugin, and node plugins.
type cfsCluster struct {
	t          *testing.T
	bins       cfsBinaries
	work       string
	dataRoot   string
	masterAddr string
	controller *cfsPlugin
}

func newCFSCluster(t *testing.T) *cfsCluster {
	t.Helper()
	bins := cfsBins(t)
	work, err := os.MkdirTemp("/var/tmp", "tkestor-rwo-cfs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &cfsCluster{t: t, bins: bins, work: work, dataRoot: filepath.Join(work, "data")}
	t.Cleanup(c.cleanup)
	_, srv := emulator.NewTestServer(t, emulator.Options{DataRoot: c.dataRoot})
	c.masterAddr = strings.TrimPrefix(srv.URL, "http://")
	c.controller = c.start("controller", "--mode=controller")
	return c
}

// cleanup runs after every plugin was killed (t.Cleanup order): it ends
// the stand-in clients started under the work directory, lazily unmounts
// what is left there, and removes it.
func (c *cfsCluster) cleanup() {
	for _, pid := range cfsClientPIDs(c.work) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	cfsUnmountUnder(c.work)
	time.Sleep(100 * time.Millisecond)
	if os.Getenv("KEEP_WORK") == "" {
		_ = os.RemoveAll(c.work)
	} else {
		c.t.Logf("work directory kept: %s", c.work)
	}
}

// node starts a node plugin with its own state directory.
func (c *cfsCluster) node(name string) *cfsPlugin {
	return c.start(name, "--mode=node", "--nodeid="+name,
		"--state-dir="+filepath.Join(c.work, "state-"+name))
}

func (c *cfsCluster) start(name string, args ...string) *cfsPlugin {
	c.t.Helper()
	p := &cfsPlugin{
		name: name, socket: filepath.Join(c.work, name+".sock"), done: make(chan struct{}),
		stateDir: filepath.Join(c.work, "state-"+name),
	}
	args = append([]string{
		"--driver=cfs", "--endpoint=unix://" + p.socket, "--cfs-client=" + c.bins.standin,
		"--rwo-lease=" + cfsLease.String(), "--rwo-takeover-grace=" + cfsGrace.String(), "-v=4",
	}, args...)
	p.cmd = exec.Command(c.bins.plugin, args...)
	p.cmd.Env = append(os.Environ(), "CFS_STANDIN_DATA_ROOT="+c.dataRoot, "CFS_STANDIN_RETRY_UNIT=10ms")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	_ = os.Remove(p.socket)
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go p.collect(stderr)
	c.t.Cleanup(p.kill)
	p.waitReady(c.t)
	return p
}

// restart kills a node plugin (SIGKILL, its clients keep running) and
// starts it again on the same state directory.
func (c *cfsCluster) restart(p *cfsPlugin) *cfsPlugin {
	c.t.Helper()
	p.kill()
	return c.node(p.name)
}

// volume creates a volume through the controller plugin.
func (c *cfsCluster) volume(name string) *csi.Volume {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfsCallWait)
	defer cancel()
	resp, err := c.controller.client.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:          name,
		Parameters:    map[string]string{"masterAddr": c.masterAddr, "owner": cfsOwner, "logLevel": "error"},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{
			csiclient.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, ""),
		},
	})
	if err != nil {
		c.t.Fatalf("create %s: %v", name, err)
	}
	return resp.GetVolume()
}

// cfsPlugin is one tkestor-csi process.
type cfsPlugin struct {
	name     string
	socket   string
	stateDir string
	cmd      *exec.Cmd
	client   *csiclient.Client
	mu       sync.Mutex
	lines    []string
	done     chan struct{}
}

func (p *cfsPlugin) collect(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.mu.Unlock()
	}
	_ = p.cmd.Wait()
}

func (p *cfsPlugin) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *cfsPlugin) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(cfsPluginWait)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("plugin %s exited early:\n%s", p.name, p.log())
		default:
		}
		if _, err := os.Stat(p.socket); err == nil {
			cl, err := csiclient.Dial("unix://" + p.socket)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = cl.Ready(ctx)
			cancel()
			if err == nil {
				p.client = cl
				return
			}
			_ = cl.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("plugin %s not ready within %s:\n%s", p.name, cfsPluginWait, p.log())
}

// kill ends the plugin with SIGKILL, as a crash or an OOM kill would.
func (p *cfsPlugin) kill() {
	if p.client != nil {
		_ = p.client.Close()
		p.client = nil
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// signal sends sig to the plugin process.
func (p *cfsPlugin) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// clientPIDs lists the stand-in clients this plugin runs for a volume.
func (p *cfsPlugin) clientPIDs(volumeID string) []int {
	config := filepath.Join(p.stateDir, "cfs", "volumes", noderecord.Key(volumeID), "client.json")
	return cfsClientPIDs(config)
}

// cfsPaths are the kubelet-like paths of one node for one volume.
type cfsPaths struct {
	staging, target1, target2 string
}

func (c *cfsCluster) paths(node, vol string) cfsPaths {
	c.t.Helper()
	dir := filepath.Join(c.work, "kubelet-"+node, vol)
	p := cfsPaths{
		staging: filepath.Join(dir, "globalmount"),
		target1: filepath.Join(dir, "pod1", "mount"),
		target2: filepath.Join(dir, "pod2", "mount"),
	}
	if err := os.MkdirAll(p.staging, 0o750); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func cfsStage(p *cfsPlugin, vol *csi.Volume, staging string, mode csi.VolumeCapability_AccessMode_Mode) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfsCallWait)
	defer cancel()
	_, err := p.client.Node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging,
		VolumeCapability: csiclient.MountCap(mode, ""), VolumeContext: vol.GetVolumeContext(),
	})
	return err
}

func cfsPublish(p *cfsPlugin, vol *csi.Volume, staging, target string, mode csi.VolumeCapability_AccessMode_Mode) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfsCallWait)
	defer cancel()
	_, err := p.client.Node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: csiclient.MountCap(mode, ""), VolumeContext: vol.GetVolumeContext(),
	})
	return err
}

func cfsUnpublish(p *cfsPlugin, vol *csi.Volume, target string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfsCallWait)
	defer cancel()
	_, err := p.client.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), TargetPath: target,
	})
	return err
}

func cfsUnstage(p *cfsPlugin, vol *csi.Volume, staging string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfsCallWait)
	defer cancel()
	_, err := p.client.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging,
	})
	return err
}

// cfsMust fails the test on err, naming what failed.
func cfsMust(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// cfsWantRefusal asserts FailedPrecondition whose message names node.
func cfsWantRefusal(t *testing.T, what string, err error, node string) {
	t.Helper()
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), node) {
		t.Fatalf("%s = %v, want FailedPrecondition naming %s", what, err, node)
	}
}

func cfsWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func cfsRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cfsClientPIDs lists live processes whose "-c CONFIG" argument is under
// prefix (a config file, or a directory of them).
func cfsClientPIDs(prefix string) []int {
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
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-c" && strings.HasPrefix(args[i+1], prefix) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// cfsUnmountUnder lazily unmounts every mount below dir, deepest first.
// Only this test's plugins mount there.
func cfsUnmountUnder(dir string) {
	for _, target := range cfsMountsUnder(dir) {
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
}

// cfsMountsUnder lists the mount points below dir, deepest (latest) first.
func cfsMountsUnder(dir string) []string {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var targets []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append([]string{f[4]}, targets...)
		}
	}
	return targets
}

// cfsIsMount reports whether path is a mount point now.
func cfsIsMount(path string) bool {
	for _, m := range cfsMountsUnder(filepath.Dir(path)) {
		if m == path {
			return true
		}
	}
	return false
}

// cfsEventually polls f every interval until it returns true or wait
// passes; it returns how long that took and whether f succeeded.
func cfsEventually(wait, interval time.Duration, f func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if f() {
			return time.Since(start), true
		}
		if time.Since(start) > wait {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}

func cfsSignalAll(t *testing.T, pids []int, sig unix.Signal) {
	t.Helper()
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil {
			t.Fatalf("signal %v to %d: %v", sig, pid, err)
		}
	}
}

func cfsDescribe(err error) string {
	if err == nil {
		return "OK"
	}
	return fmt.Sprintf("%s: %s", status.Code(err), status.Convert(err).Message())
}
