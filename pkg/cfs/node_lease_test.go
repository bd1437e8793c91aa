package cfs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// A single-node reader renews its lease through the staging mount, so its
// client mounts read-write; the pod still gets a read-only bind.
func TestNodeSingleNodeReaderMountsClientReadWrite(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-snro", nil)
	staging, target, _ := paths(t)
	ctx := context.Background()
	snro := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, snro)); err != nil {
		t.Fatal(err)
	}
	rec, _ := ns.loadRecord(vol.VolumeId)
	var conf map[string]string
	if err := json.Unmarshal([]byte(mustRead(t, rec.ConfigFile)), &conf); err != nil || conf["rdonly"] != "false" {
		t.Fatalf("client config rdonly = %q, %v", conf["rdonly"], err)
	}
	if !rec.ReadOnly {
		t.Error("record not read-only")
	}
	if _, err := os.Stat(filepath.Join(env.dataRoot, mustID(vol.VolumeId).Name, leaseDirName, "lease.1")); err != nil {
		t.Fatalf("no lease in the volume: %v", err)
	}
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target, snro, false)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write = %v, want EROFS", err)
	}
	unstage(t, ns, vol, staging, target)
}

// NodePublish checks the lease too: a node that lost the volume (its
// renewer has not noticed yet) is refused, naming the new holder.
func TestNodePublishRefusedAfterLeaseLost(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	a := env.node(t, "node-a", t.TempDir())
	b := env.node(t, "node-b", t.TempDir())
	vol := env.volume(t, "pvc-lost", nil)
	stagingA, targetA, _ := paths(t)
	stagingB, _, _ := paths(t)
	ctx := context.Background()
	rwo := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	if _, err := a.NodeStageVolume(ctx, stageReq(vol, stagingA, rwo)); err != nil {
		t.Fatal(err)
	}
	// An operator releases node a's hold; node b takes the volume.
	dir, err := openLeaseDir(stagingA, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.create(&leaseRecord{Generation: 2, ReleasedBy: "operator"}); err != nil {
		t.Fatal(err)
	}
	dir.close()
	if _, err := b.NodeStageVolume(ctx, stageReq(vol, stagingB, rwo)); err != nil {
		t.Fatal(err)
	}
	_, err = a.NodePublishVolume(ctx, publishReq(vol, stagingA, targetA, rwo, false))
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), `node "node-b"`) {
		t.Errorf("refusal %v does not name node-b", err)
	}
	if e, _ := a.mounter.Lookup(targetA); e != nil {
		t.Errorf("target mounted: %+v", e)
	}
	unstage(t, b, vol, stagingB)
}

// A holder that finds its lease released fences itself: the client and
// every mount of the volume on the node go, the record stays, and
// Kubernetes' usual calls still clean up and stage again.
func TestNodeFence(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	ns.holder = newLeaseHolder("node-a", time.Second, time.Second, ns.fence)
	vol := env.volume(t, "pvc-fence", nil)
	staging, target1, target2 := paths(t)
	ctx := context.Background()
	rwo := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER)
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwo)); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{target1, target2} {
		if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target, rwo, false)); err != nil {
			t.Fatal(err)
		}
	}
	pod, err := unix.Open(target1, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(pod) }()
	rec, _ := ns.loadRecord(vol.VolumeId)

	dir, err := openLeaseDir(staging, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.create(&leaseRecord{Generation: 2, ReleasedBy: "operator"}); err != nil {
		t.Fatal(err)
	}
	dir.close()
	if !waitFor(2*time.Second, func() bool { e, _ := ns.mounter.Lookup(staging); return e == nil }) {
		t.Fatal("no fence within two seconds")
	}
	if pids := clientPIDs(rec.ConfigFile); len(pids) != 0 {
		t.Errorf("client still running: %v", pids)
	}
	for _, p := range []string{staging, target1, target2} {
		if e, _ := ns.mounter.Lookup(p); e != nil {
			t.Errorf("%s still mounted: %+v", p, e)
		}
	}
	if fd, err := unix.Openat(pod, "after-fence", unix.O_WRONLY|unix.O_CREAT, 0o644); err == nil {
		_ = unix.Close(fd)
		t.Error("a write through the fenced mount succeeded")
	}
	if r, _ := ns.loadRecord(vol.VolumeId); r == nil {
		t.Fatal("record gone after the fence")
	}
	_, err = ns.NodePublishVolume(ctx, publishReq(vol, staging, target1, rwo, false))
	wantCode(t, err, codes.FailedPrecondition)

	// Stage again: the volume is free, so it is claimed anew.
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwo)); err != nil {
		t.Fatalf("stage after the fence: %v", err)
	}
	if gen, held := ns.holder.(*leaseHolder).holding(vol.VolumeId); !held || gen != 3 {
		t.Errorf("holding after re-stage: %d %v", gen, held)
	}
	unstage(t, ns, vol, staging, target1, target2)
}
