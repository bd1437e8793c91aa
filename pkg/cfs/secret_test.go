package cfs

import (
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// A secret planted as the owner goes through every RPC of the driver over
// gRPC, with the real interceptors logging at the highest verbosity; it
// (and its auth key) must appear in no log line and no error. Not
// parallel: it replaces klog's global logger.
func TestPlantedOwnerNeverLogged(t *testing.T) {
	const planted = "plantedSecret42"
	key := mustOwnerKey(t, planted)
	env := newNodeEnv(t, emulator.Options{Numbering: emulator.Numbering2x})
	lc := &logCapture{}
	klog.SetLogger(lc.logger())
	defer klog.ClearLogger()
	setKlogVerbosity(t, "10")
	defer setKlogVerbosity(t, "0")

	d, err := NewDriver(Options{DriverName: DefaultDriverName, NodeID: "node-a", Mode: server.ModeAll,
		StateDir: t.TempDir(), ClientPath: standinPath})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.node.client = &execClient{path: standinPath, env: append(os.Environ(),
		"CFS_STANDIN_DATA_ROOT="+env.dataRoot, "CFS_STANDIN_RETRY_UNIT=10ms")}
	ctrl, node := dialDriver(t, d)

	secrets := map[string]string{"owner": planted}
	params := map[string]string{"masterAddr": env.addr, "logLevel": "debug"}
	staging, target, _ := paths(t)
	ctx := context.Background()
	var errs []error
	note := func(err error) { errs = append(errs, err) }

	req := createReq("pvc-secret", params, gi)
	req.Secrets = secrets
	vol, err := ctrl.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := vol.Volume.VolumeId
	_, err = ctrl.CreateVolume(ctx, createReq("pvc-secret", map[string]string{"masterAddr": env.addr,
		"owner": "someoneelse"}, gi))
	note(err) // AlreadyExists: another owner
	_, err = ctrl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gi}, Secrets: secrets})
	note(err)
	_, err = ctrl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 3 * gi}, Secrets: map[string]string{"owner": "wrongOwner"}})
	note(err) // PermissionDenied

	stage := stageReq(vol.Volume, staging, rwx())
	stage.Secrets = map[string]string{"owner": "wrong" + planted}
	_, err = node.NodeStageVolume(ctx, stage)
	note(err) // the client's auth key mismatch, with its output
	stage.Secrets = secrets
	_, err = node.NodeStageVolume(ctx, stage)
	note(err)
	pub := publishReq(vol.Volume, staging, target, rwx(), false)
	pub.Secrets = secrets
	_, err = node.NodePublishVolume(ctx, pub)
	note(err)
	_, err = node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	note(err)
	_, err = node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	note(err)
	_, err = ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: secrets})
	note(err)

	logs := lc.String()
	if !strings.Contains(logs, "RPC request") || !strings.Contains(logs, "NodeStageVolume") {
		t.Fatalf("log capture did not work:\n%s", logs)
	}
	for _, s := range []string{planted, key} {
		if strings.Contains(logs, s) {
			t.Errorf("secret %q in logs:\n%s", s, logs)
		}
		for i, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("secret in error %d: %v", i, err)
			}
		}
	}
	if errs[0] == nil || errs[2] == nil || errs[3] == nil {
		t.Errorf("expected failures did not fail: %v", errs)
	}
	for i := 4; i < len(errs); i++ {
		if errs[i] != nil {
			t.Errorf("call %d failed: %v", i, errs[i])
		}
	}
}

// setKlogVerbosity sets klog's global -v, which gates V() even with a
// logger of our own.
func setKlogVerbosity(t *testing.T, v string) {
	t.Helper()
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	if err := fs.Set("v", v); err != nil {
		t.Fatal(err)
	}
}

func mustOwnerKey(t *testing.T, name string) string {
	t.Helper()
	o, err := master.NewOwner(name)
	if err != nil {
		t.Fatal(err)
	}
	return o.AuthKey()
}

// dialDriver serves d on a unix socket with the production interceptors.
func dialDriver(t *testing.T, d *Driver) (csi.ControllerClient, csi.NodeClient) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Endpoint: "unix://" + sock}, d.Services())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewControllerClient(conn), csi.NewNodeClient(conn)
}
