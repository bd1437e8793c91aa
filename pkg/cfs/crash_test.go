package cfs

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tkestack/tkestor-csi/pkg/common/failpoint"
	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// crashPluginEnv makes the test binary serve a controller on the socket it
// names instead of running tests.
const crashPluginEnv = "CFS_CRASH_PLUGIN_SOCKET"

// runCrashPlugin serves the controller until killed.
func runCrashPlugin(sock string) int {
	d, err := NewDriver(Options{DriverName: DefaultDriverName, Mode: server.ModeController})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := server.New(server.Options{Endpoint: "unix://" + sock}, d.Services()).Serve(
		context.Background(), lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// crashPlugin is a controller process of the test binary.
type crashPlugin struct {
	cmd     *exec.Cmd
	ctrl    csi.ControllerClient
	reached chan string
}

// startCrashPlugin starts a controller process with the failpoint armed
// (none when empty) and connects to it.
func startCrashPlugin(t *testing.T, fp string) *crashPlugin {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashPluginEnv+"="+sock, failpoint.EnvVar+"="+fp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &crashPlugin{cmd: cmd, reached: make(chan string, 1)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "FAILPOINT "); ok {
				p.reached <- strings.TrimSuffix(name, " reached")
			}
		}
	}()
	// A race-enabled test binary may take seconds to start: calls wait
	// for the connection instead of failing fast.
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.ctrl = csi.NewControllerClient(conn)
	return p
}

// crashAt runs call in a plugin armed at fp, kills the plugin with SIGKILL
// once fp is reached, and returns.
func crashAt(t *testing.T, fp string, call func(csi.ControllerClient)) {
	t.Helper()
	p := startCrashPlugin(t, fp)
	go call(p.ctrl)
	select {
	case got := <-p.reached:
		if got != fp {
			t.Fatalf("reached %s, want %s", got, fp)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("failpoint %s not reached", fp)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// Kill the controller with SIGKILL between the steps of Create, Delete and
// Expand; a new process retrying the call converges to one volume with
// our owner, the size asked for, and a single deletion.
func TestCrashRetry(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{Delete: emulator.DeleteDelayed})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := createReq("pvc-crash", tc.params(), 2*gi)

	for _, fp := range []string{fpCreateBeforeCreateVol, fpCreateAfterCreateVol} {
		crashAt(t, fp, func(c csi.ControllerClient) { _, _ = c.CreateVolume(ctx, req) })
	}
	fresh := startCrashPlugin(t, "")
	vol, err := fresh.ctrl.CreateVolume(ctx, req)
	if err != nil {
		t.Fatalf("create after crashes: %v", err)
	}
	st, err := tc.emu.Snapshot()
	if err != nil || len(st.Vols) != 1 {
		t.Fatalf("volumes after crashes: %v, %v", st, err)
	}
	if v := st.Vols["tkestor-pvc-crash"]; v == nil || v.Owner != testOwner || v.Capacity != 2 {
		t.Fatalf("volume = %+v", v)
	}

	expand := &csi.ControllerExpandVolumeRequest{VolumeId: vol.Volume.VolumeId,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 4 * gi}}
	crashAt(t, fpExpandBeforeExpandVol, func(c csi.ControllerClient) { _, _ = c.ControllerExpandVolume(ctx, expand) })
	if resp, err := fresh.ctrl.ControllerExpandVolume(ctx, expand); err != nil || resp.CapacityBytes != 4*gi {
		t.Fatalf("expand after crash = %v, %v", resp, err)
	}

	del := &csi.DeleteVolumeRequest{VolumeId: vol.Volume.VolumeId}
	crashAt(t, fpDeleteBeforeDeleteVol, func(c csi.ControllerClient) { _, _ = c.DeleteVolume(ctx, del) })
	for i := 0; i < 2; i++ {
		if _, err := fresh.ctrl.DeleteVolume(ctx, del); err != nil {
			t.Fatalf("delete #%d after crash: %v", i, err)
		}
	}
	v, ok, err := tc.emu.Volume("tkestor-pvc-crash")
	if err != nil || !ok || !v.Forbidden {
		t.Fatalf("after delete: %+v, %v, %v; want held for delayed deletion", v, ok, err)
	}
}
