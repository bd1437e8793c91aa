package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// snapshotAndRestore snapshots the volume, restores the snapshot into a new
// volume, reads the demo file from it, and removes both again.
func (d *demo) snapshotAndRestore(ctx context.Context, vol *csi.Volume) error {
	d.say("CreateSnapshot of %s", vol.GetVolumeId())
	snap, err := d.c.Controller.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{
		Name: "demo-snapshot", SourceVolumeId: vol.GetVolumeId(), Secrets: d.secrets})
	if err != nil {
		return err
	}
	snapID := snap.GetSnapshot().GetSnapshotId()
	fmt.Printf("    snapshot_id=%s ready=%v\n", snapID, snap.GetSnapshot().GetReadyToUse())

	restored, err := d.create(ctx, "demo-restored", vol.GetCapacityBytes(), &csi.VolumeContentSource{
		Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}},
	})
	if err != nil {
		return err
	}
	paths, err := d.attach(ctx, restored, "restored")
	if err != nil {
		return err
	}
	d.say("Read %s from the restored volume", fileName)
	if err := readBack(filepath.Join(paths.target, fileName)); err != nil {
		return err
	}
	if err := d.detach(ctx, restored, paths); err != nil {
		return err
	}
	d.say("DeleteVolume %s (the restored copy)", restored.GetVolumeId())
	if _, err := d.c.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{
		VolumeId: restored.GetVolumeId(), Secrets: d.secrets}); err != nil {
		return err
	}
	d.say("DeleteSnapshot %s", snapID)
	_, err = d.c.Controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{
		SnapshotId: snapID, Secrets: d.secrets})
	return err
}
