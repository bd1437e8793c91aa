package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/rbd"
	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// TestCrashDeleteVolume kills the controller at every DeleteVolume step,
// for a plain volume and for one that still has a snapshot (whose image
// must survive the source's deletion), and proves the retry converges.
func TestCrashDeleteVolume(t *testing.T) {
	env := needCeph(t)
	for _, withSnap := range []bool{false, true} {
		for _, point := range rbd.DeleteFailpoints() {
			t.Run(fmt.Sprintf("snapshot=%v/%s", withSnap, point), func(t *testing.T) {
				crashDelete(t, env, withSnap, point)
			})
		}
	}
}

func crashDelete(t *testing.T, env cephEnv, withSnap bool, point string) {
	r := &crashRun{t: t, env: env, dir: t.TempDir(), point: point}
	before := env.inventory(t)
	ctx := context.Background()
	ctrl := r.controller("setup", "")
	vol, err := ctrl.client.Controller.CreateVolume(ctx, r.createReq(fmt.Sprintf("crash-del-%d", time.Now().UnixNano()), nil))
	if err != nil {
		t.Fatal(err)
	}
	volID := vol.GetVolume().GetVolumeId()
	var snapID string
	if withSnap {
		snap, err := ctrl.client.Controller.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{
			Name: fmt.Sprintf("crash-del-snap-%d", time.Now().UnixNano()), SourceVolumeId: volID,
			Secrets: env.secrets(t)})
		if err != nil {
			t.Fatal(err)
		}
		snapID = snap.GetSnapshot().GetSnapshotId()
	}
	ctrl.kill()

	r.crash(func(c *csiclient.Client) error {
		_, err := c.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: env.secrets(t)})
		return err
	})
	ctrl = r.controller("retry", "")
	deleteVolume(t, ctrl.client, r, volID)
	deleteVolume(t, ctrl.client, r, volID) // and once more: still OK

	if withSnap {
		restoreStillWorks(t, ctrl.client, r, snapID)
		retry(t, func(ctx context.Context) (*csi.DeleteSnapshotResponse, error) {
			return ctrl.client.Controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{
				SnapshotId: snapID, Secrets: env.secrets(t)})
		})
	}
	assertSameInventory(t, env, before)
}

// restoreStillWorks restores a snapshot whose source volume is gone and
// deletes the restored volume again.
func restoreStillWorks(t *testing.T, c *csiclient.Client, r *crashRun, snapID string) {
	t.Helper()
	src := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}}
	vol := retry(t, func(ctx context.Context) (*csi.CreateVolumeResponse, error) {
		return c.Controller.CreateVolume(ctx, r.createReq(fmt.Sprintf("crash-restore-%d", time.Now().UnixNano()), src))
	})
	deleteVolume(t, c, r, vol.GetVolume().GetVolumeId())
}

// TestCrashCreateSnapshot kills the controller at every CreateSnapshot step
// and proves the retry yields one snapshot that restores, and that deleting
// everything leaves the pool as it was.
func TestCrashCreateSnapshot(t *testing.T) {
	env := needCeph(t)
	for _, point := range rbd.SnapshotFailpoints() {
		t.Run(point, func(t *testing.T) {
			crashSnapshot(t, env, point)
		})
	}
}

func crashSnapshot(t *testing.T, env cephEnv, point string) {
	r := &crashRun{t: t, env: env, dir: t.TempDir(), point: point}
	before := env.inventory(t)
	ctx := context.Background()
	ctrl := r.controller("setup", "")
	vol, err := ctrl.client.Controller.CreateVolume(ctx, r.createReq(fmt.Sprintf("crash-snapsrc-%d", time.Now().UnixNano()), nil))
	if err != nil {
		t.Fatal(err)
	}
	volID := vol.GetVolume().GetVolumeId()
	ctrl.kill()

	req := &csi.CreateSnapshotRequest{Name: fmt.Sprintf("crash-snap-%d", time.Now().UnixNano()),
		SourceVolumeId: volID, Secrets: env.secrets(t)}
	if !r.crash(func(c *csiclient.Client) error {
		_, err := c.Controller.CreateSnapshot(ctx, req)
		return err
	}) {
		t.Logf("failpoint %s not on the snapshot path", point)
	}
	ctrl = r.controller("retry", "")
	first := retry(t, func(ctx context.Context) (*csi.CreateSnapshotResponse, error) {
		return ctrl.client.Controller.CreateSnapshot(ctx, req)
	})
	second := retry(t, func(ctx context.Context) (*csi.CreateSnapshotResponse, error) {
		return ctrl.client.Controller.CreateSnapshot(ctx, req)
	})
	snapID := first.GetSnapshot().GetSnapshotId()
	if snapID != second.GetSnapshot().GetSnapshotId() {
		t.Fatalf("retries returned two snapshots: %s and %s", snapID, second.GetSnapshot().GetSnapshotId())
	}
	assertImageCount(t, env, before, 2)
	restoreStillWorks(t, ctrl.client, r, snapID)
	deleteVolume(t, ctrl.client, r, volID)
	retry(t, func(ctx context.Context) (*csi.DeleteSnapshotResponse, error) {
		return ctrl.client.Controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{
			SnapshotId: snapID, Secrets: env.secrets(t)})
	})
	assertSameInventory(t, env, before)
}
