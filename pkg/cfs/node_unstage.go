package cfs

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"
)

// NodeUnstageVolume releases the claim, unmounts the staging path (which
// makes the client exit; it is killed if it lingers), and removes the
// config and the record. It refuses while a publish target is still
// mounted: unmounting the staging path alone would leave the pod's bind
// mount served by a client that is about to be killed.
func (ns *NodeServer) NodeUnstageVolume(
	ctx context.Context, req *csi.NodeUnstageVolumeRequest,
) (*csi.NodeUnstageVolumeResponse, error) {
	if req.GetVolumeId() == "" || req.GetStagingTargetPath() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume_id and staging_target_path are required", ErrInvalidArgument))
	}
	if err := checkPaths("staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	unlock, err := ns.lock(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	rec, err := ns.unstageRecord(req.GetVolumeId(), req.GetStagingTargetPath())
	if err != nil {
		return nil, toStatus(err)
	}
	if rec == nil {
		return &csi.NodeUnstageVolumeResponse{}, nil
	}
	target, err := ns.otherUse(rec, "")
	if err != nil {
		return nil, toStatus(err)
	}
	if target != "" {
		return nil, toStatus(fmt.Errorf("%w: volume is still published at %s", ErrWrongState, target))
	}

	st, _, err := ns.stateOf(rec.StagingPath, rec.VolName)
	if err != nil {
		return nil, toStatus(err)
	}
	if st == mountedLive || st == mountedDead {
		if err := ns.holder.Release(ctx, ns.claimOf(rec, accessRuleOf(rec))); err != nil {
			return nil, toStatus(err)
		}
	}
	if _, err := ns.unmountVolume(rec.StagingPath, rec.VolName); err != nil {
		return nil, toStatus(err)
	}
	if err := ns.client.Stop(ctx, rec.ConfigFile, clientExitGrace); err != nil {
		return nil, toStatus(err)
	}
	ns.forget(rec)
	klog.FromContext(ctx).V(2).Info("Volume unstaged", "volumeID", rec.VolumeID, "stagingPath", rec.StagingPath)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// unstageRecord finds what to undo: the record, or for a live mount of
// the volume without one (a lost state directory), a record rebuilt from
// the ID and the config path. Nil means nothing of ours is there.
func (ns *NodeServer) unstageRecord(volumeID, stagingPath string) (*stageRecord, error) {
	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if rec.StagingPath != stagingPath {
			return nil, nil // staged elsewhere: this path is not ours
		}
		return rec, nil
	}
	id, err := parseVolumeID(volumeID)
	if err != nil {
		return nil, nil //nolint:nilerr // not our ID: nothing of ours to undo
	}
	st, _, err := ns.stateOf(stagingPath, id.Name)
	if err != nil || st == notMounted || st == mountedOther {
		return nil, err
	}
	return ns.newRecord(&stagePlan{volumeID: volumeID, id: id, stagingPath: stagingPath}, "unknown"), nil
}
