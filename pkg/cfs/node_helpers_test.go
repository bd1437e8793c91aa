package cfs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// standinPath is the cfs-client stand-in built by TestMain, or "" when
// this machine cannot run FUSE tests.
var standinPath string //nolint:gochecknoglobals // set once by TestMain

func TestMain(m *testing.M) {
	if sock := os.Getenv(crashPluginEnv); sock != "" {
		os.Exit(runCrashPlugin(sock)) // a child of TestCrashRetry
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cfs-standin-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := os.Stat("/dev/fuse"); err == nil && os.Geteuid() == 0 {
		bin := filepath.Join(dir, "cfs-client-standin")
		out, err := exec.Command("go", "build", "-o", bin,
			"github.com/tkestack/tkestor-csi/tests/cfs/cmd/cfs-client-standin").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build stand-in: %v\n%s", err, out)
			return 1
		}
		standinPath = bin
	}
	return m.Run()
}

// nodeEnv is one emulated cluster, a data root shared by all nodes, and a
// controller to create volumes with.
type nodeEnv struct {
	*testCluster
	cs       *ControllerServer
	dataRoot string
}

func newNodeEnv(t *testing.T, opts emulator.Options) *nodeEnv {
	t.Helper()
	if standinPath == "" {
		t.Skip("needs root and /dev/fuse")
	}
	root := t.TempDir()
	opts.DataRoot = filepath.Join(root, "data")
	return &nodeEnv{
		testCluster: newTestCluster(t, opts),
		cs:          newTestController(t, server.ModeController),
		dataRoot:    opts.DataRoot,
	}
}

// node starts a node plugin with its own state directory (a "node").
func (env *nodeEnv) node(t *testing.T, nodeID, stateDir string) *NodeServer {
	t.Helper()
	ns, err := newNodeServer(Options{NodeID: nodeID, StateDir: stateDir, ClientPath: standinPath})
	if err != nil {
		t.Fatal(err)
	}
	ns.client = &execClient{path: standinPath, env: append(os.Environ(),
		"CFS_STANDIN_DATA_ROOT="+env.dataRoot, "CFS_STANDIN_RETRY_UNIT=10ms")}
	t.Cleanup(ns.close)
	return ns
}

// volume creates a volume and returns it.
func (env *nodeEnv) volume(t *testing.T, name string, params map[string]string) *csi.Volume {
	t.Helper()
	if params == nil {
		params = env.params()
	}
	resp, err := env.cs.CreateVolume(context.Background(), createReq(name, params, gi))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Volume
}

// paths makes a staging path and two targets under a fresh directory and
// unmounts whatever is left there when the test ends (only our mounts
// live under it).
func paths(t *testing.T) (staging, target1, target2 string) {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { unmountUnder(dir) })
	staging = filepath.Join(dir, "globalmount")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	return staging, filepath.Join(dir, "pod1", "mount"), filepath.Join(dir, "pod2", "mount")
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append(targets, f[4])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		_ = unix.Unmount(targets[i], unix.MNT_DETACH)
	}
}

func stageReq(vol *csi.Volume, staging string, c *csi.VolumeCapability) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{
		VolumeId: vol.VolumeId, StagingTargetPath: staging, VolumeCapability: c,
		VolumeContext: vol.VolumeContext,
	}
}

func publishReq(vol *csi.Volume, staging, target string, c *csi.VolumeCapability, ro bool,
) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId: vol.VolumeId, StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: c, Readonly: ro, VolumeContext: vol.VolumeContext,
	}
}

// unstage unpublishes the targets and unstages, failing the test on error.
func unstage(t *testing.T, ns *NodeServer, vol *csi.Volume, staging string, targets ...string) {
	t.Helper()
	ctx := context.Background()
	for _, target := range targets {
		if _, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
			VolumeId: vol.VolumeId, TargetPath: target}); err != nil {
			t.Fatalf("unpublish %s: %v", target, err)
		}
	}
	if _, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
		VolumeId: vol.VolumeId, StagingTargetPath: staging}); err != nil {
		t.Fatalf("unstage: %v", err)
	}
}

// killClient kills the stand-in daemon of a staged volume with SIGKILL and
// waits until its mount answers "transport endpoint is not connected".
func killClient(t *testing.T, ns *NodeServer, volumeID string) {
	t.Helper()
	rec, err := ns.loadRecord(volumeID)
	if err != nil || rec == nil {
		t.Fatalf("record: %v", err)
	}
	pids := clientPIDs(rec.ConfigFile)
	if len(pids) != 1 {
		t.Fatalf("client processes of %s: %v", rec.ConfigFile, pids)
	}
	if err := unix.Kill(pids[0], unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitGone(context.Background(), rec.ConfigFile, clientExitGrace) {
		t.Fatal("killed client still there")
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
