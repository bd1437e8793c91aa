package cfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// Two nodes (two plugins with their own state directories and staging
// paths) share one ReadWriteMany volume and see each other's files.
func TestIntegrationTwoNodesShareVolume(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	nodeA := env.node(t, "node-a", t.TempDir())
	nodeB := env.node(t, "node-b", t.TempDir())
	vol := env.volume(t, "pvc-shared", nil)
	stagingA, targetA, _ := paths(t)
	stagingB, targetB, _ := paths(t)
	ctx := context.Background()

	for _, n := range []struct {
		ns              *NodeServer
		staging, target string
	}{{nodeA, stagingA, targetA}, {nodeB, stagingB, targetB}} {
		if _, err := n.ns.NodeStageVolume(ctx, stageReq(vol, n.staging, rwx())); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ns.NodePublishVolume(ctx, publishReq(vol, n.staging, n.target, rwx(), false)); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(targetA, "from-a"), "written on node a")
	mustWrite(t, filepath.Join(targetB, "from-b"), "written on node b")
	if got := mustRead(t, filepath.Join(targetB, "from-a")); got != "written on node a" {
		t.Errorf("node b reads %q", got)
	}
	if got := mustRead(t, filepath.Join(targetA, "from-b")); got != "written on node b" {
		t.Errorf("node a reads %q", got)
	}
	unstage(t, nodeA, vol, stagingA, targetA)
	if got := mustRead(t, filepath.Join(targetB, "from-a")); got != "written on node a" {
		t.Errorf("after node a left, node b reads %q", got)
	}
	unstage(t, nodeB, vol, stagingB, targetB)
}

// The client dies (SIGKILL) and the plugin restarts: a new NodeServer on
// the same state directory remounts from the record when asked to publish,
// renews the other dead bind, and the data is there.
func TestIntegrationRecoverAfterClientKillAndRestart(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	state := t.TempDir()
	first := env.node(t, "node-a", state)
	vol := env.volume(t, "pvc-restart", nil)
	staging, target1, target2 := paths(t)
	ctx := context.Background()

	if _, err := first.NodeStageVolume(ctx, stageReq(vol, staging, rwx())); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{target1, target2} {
		if _, err := first.NodePublishVolume(ctx, publishReq(vol, staging, target, rwx(), false)); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(target1, "data"), "survives")
	killClient(t, first, vol.VolumeId)
	if _, err := os.Stat(target1); !mount.IsCorruptedMount(target1) {
		t.Fatalf("target after the kill: %v, want a dead mount", err)
	}

	// Simulated restart: same state directory, a new server.
	second := env.node(t, "node-a", state)
	if _, err := second.NodePublishVolume(ctx, publishReq(vol, staging, target1, rwx(), false)); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	for _, target := range []string{target1, target2} {
		if got := mustRead(t, filepath.Join(target, "data")); got != "survives" {
			t.Errorf("%s reads %q after recovery", target, got)
		}
	}

	// Again, recovered through NodeStage this time.
	killClient(t, second, vol.VolumeId)
	third := env.node(t, "node-a", state)
	if _, err := third.NodeStageVolume(ctx, stageReq(vol, staging, rwx())); err != nil {
		t.Fatalf("stage after restart: %v", err)
	}
	for _, target := range []string{target1, target2} {
		if got := mustRead(t, filepath.Join(target, "data")); got != "survives" {
			t.Errorf("%s reads %q after the second recovery", target, got)
		}
	}
	unstage(t, third, vol, staging, target1, target2)
}

// A dead client whose volume was deleted meanwhile cannot be remounted;
// publish says so instead of binding an empty directory, and unstage still
// cleans up.
func TestIntegrationRecoveryOfDeletedVolume(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	state := t.TempDir()
	ns := env.node(t, "node-a", state)
	vol := env.volume(t, "pvc-doomed", nil)
	staging, target, _ := paths(t)
	ctx := context.Background()
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwx())); err != nil {
		t.Fatal(err)
	}
	killClient(t, ns, vol.VolumeId)
	if _, err := env.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: vol.VolumeId}); err != nil {
		t.Fatal(err)
	}
	restarted := env.node(t, "node-a", state)
	_, err := restarted.NodePublishVolume(ctx, publishReq(vol, staging, target, rwx(), false))
	if err == nil {
		t.Fatal("publish of a deleted volume succeeded")
	}
	if e, _ := restarted.mounter.Lookup(target); e != nil {
		t.Errorf("target mounted: %+v", e)
	}
	unstage(t, restarted, vol, staging)
	if e, _ := restarted.mounter.Lookup(staging); e != nil {
		t.Errorf("staging still mounted: %+v", e)
	}
	if err := unix.Access(staging, unix.W_OK); err != nil && !errors.Is(err, unix.ENOENT) {
		t.Errorf("staging path unusable: %v", err)
	}
}
