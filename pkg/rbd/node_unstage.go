package rbd

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"
)

// NodeUnstageVolume unmounts the staging path, unmaps the image, releases
// the volume and removes the record. It is idempotent: a volume that is
// not (or no longer) staged here only has its staging path cleaned up.
func (ns *NodeServer) NodeUnstageVolume(
	ctx context.Context, req *csi.NodeUnstageVolumeRequest,
) (*csi.NodeUnstageVolumeResponse, error) {
	volumeID, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required("volume_id", volumeID, "staging_target_path", staging); err != nil {
		return nil, toStatus(err)
	}
	if !ns.locks.TryAcquire(volumeID) {
		return nil, abortedStatus(volumeID)
	}
	defer ns.locks.Release(volumeID)
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "stagingPath", staging)
	ctx = klog.NewContext(ctx, logger)

	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return nil, toStatus(err)
	}
	if rec == nil || rec.StagingPath != staging {
		logger.V(4).Info("Volume not staged at this path, cleaning up the path only")
		if err := ns.cleanupStagingPath(staging); err != nil {
			return nil, toStatus(err)
		}
		return &csi.NodeUnstageVolumeResponse{}, nil
	}
	if err := ns.checkUnpublished(rec); err != nil {
		return nil, toStatus(err)
	}

	if err := ns.unstage(ctx, rec); err != nil {
		return nil, toStatus(err)
	}
	logger.V(2).Info("Volume unstaged", "device", rec.device())
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// unstage undoes a stage in reverse: unmount, unmap, release, forget.
func (ns *NodeServer) unstage(ctx context.Context, rec *stageRecord) error {
	if err := ns.teardownStage(ctx, rec); err != nil {
		return err
	}
	ns.hit(FPUnstageAfterUnmap)
	if err := ns.owner.release(ctx, rec); err != nil {
		return err
	}
	return ns.records.Remove(rec.VolumeID)
}

// checkUnpublished refuses to unstage while a publish target is still
// mounted (unmapping under a running pod fails its I/O); targets that are
// no longer mounted are forgotten.
func (ns *NodeServer) checkUnpublished(rec *stageRecord) error {
	var live []publishTarget
	for _, t := range rec.Targets {
		e, err := ns.mounter.Lookup(t.Path)
		if err != nil {
			return err
		}
		if e != nil {
			live = append(live, t)
		}
	}
	if len(live) > 0 {
		return fmt.Errorf("%w at %q", ErrStillPublished, live[0].Path)
	}
	if len(rec.Targets) > 0 {
		rec.Targets = nil
		return ns.saveRecord(rec)
	}
	return nil
}

// cleanupStagingPath unmounts whatever a stage of either kind left at the
// staging path.
func (ns *NodeServer) cleanupStagingPath(staging string) error {
	blockPoint := (&stageRecord{StagingPath: staging, Block: true}).stagePoint()
	if err := ns.mounter.CleanupMountPoint(blockPoint); err != nil {
		return err
	}
	return ns.mounter.CleanupMountPoint(staging)
}
