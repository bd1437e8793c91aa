package rbd

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// NodePublishVolume bind-mounts the staged volume onto the target path
// (the staging directory for a filesystem, the device for raw block),
// read-only when asked. The staging path must be a live mount of the
// volume's device: an empty directory is never bound into a pod.
func (ns *NodeServer) NodePublishVolume(
	ctx context.Context, req *csi.NodePublishVolumeRequest,
) (*csi.NodePublishVolumeResponse, error) {
	volumeID, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	if err := required("volume_id", volumeID, "target_path", target,
		"staging_target_path", staging); err != nil {
		return nil, toStatus(err)
	}
	capInfo, err := checkCapability(req.GetVolumeCapability())
	if err != nil {
		return nil, toStatus(err)
	}
	readOnly := req.GetReadonly() || capInfo.rule.ReadOnly
	if !ns.locks.TryAcquire(volumeID) {
		return nil, abortedStatus(volumeID)
	}
	defer ns.locks.Release(volumeID)
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "targetPath", target)
	ctx = klog.NewContext(ctx, logger)

	rec, err := ns.stagedRecord(ctx, volumeID, staging, capInfo)
	if err != nil {
		return nil, toStatus(err)
	}
	done, err := ns.checkTarget(rec, target, readOnly, capInfo)
	if err != nil {
		return nil, toStatus(err)
	}
	if done {
		logger.V(4).Info("Volume already published")
		return &csi.NodePublishVolumeResponse{}, nil
	}

	if err := ns.publish(ctx, rec, target, readOnly, capInfo); err != nil {
		return nil, toStatus(err)
	}
	logger.V(2).Info("Volume published", "readOnly", readOnly, "device", rec.device())
	return &csi.NodePublishVolumeResponse{}, nil
}

// stagedRecord returns the record of a volume that is staged, live, at
// staging with the same access type; FailedPrecondition otherwise, or
// NotFound for an ID that names no volume.
func (ns *NodeServer) stagedRecord(
	ctx context.Context, volumeID, staging string, c *capabilityInfo,
) (*stageRecord, error) {
	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		if err := ns.resolver.checkID(volumeID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: no stage record", ErrNotStaged)
	}
	if rec.StagingPath != staging {
		return nil, fmt.Errorf("%w: staged at %q, not %q", ErrNotStaged, rec.StagingPath, staging)
	}
	if rec.Block != c.block {
		return nil, fmt.Errorf("%w: staged with block=%v", ErrBadCapability, rec.Block)
	}
	live, err := ns.stageLive(ctx, rec)
	if err != nil {
		return nil, err
	}
	if !live {
		return nil, fmt.Errorf("%w: %s is not a live mount of %s", ErrNotStaged, rec.stagePoint(), rec.device())
	}
	return rec, nil
}

// checkTarget decides idempotency for one target: true when it is already
// a mount of the volume in the same mode. A target mounted from anything
// else, or in the other mode, is AlreadyExists; a second target of a
// single-writer (RWOP) volume is FailedPrecondition.
func (ns *NodeServer) checkTarget(rec *stageRecord, target string, readOnly bool, c *capabilityInfo) (bool, error) {
	e, err := ns.mounter.Lookup(target)
	if err != nil {
		return false, err
	}
	if e != nil {
		ours, err := ns.mounter.MountedFrom(target, rec.device())
		if err != nil {
			return false, err
		}
		if !ours || e.ReadOnly() != readOnly {
			return false, fmt.Errorf("%w: %s (source %s, readOnly=%v)", ErrPathInUse, target, e.Source, e.ReadOnly())
		}
		if !rec.hasTarget(target) {
			rec.Targets = append(rec.Targets, publishTarget{Path: target, ReadOnly: readOnly})
			return true, ns.saveRecord(rec)
		}
		return true, nil
	}
	if !c.rule.SingleTarget {
		return false, nil
	}
	for _, t := range rec.Targets {
		if t.Path == target {
			continue
		}
		if other, err := ns.mounter.Lookup(t.Path); err != nil || other != nil {
			return false, errors.Join(err, fmt.Errorf("%w: %q", ErrSingleTarget, t.Path))
		}
	}
	return false, nil
}

// publish records the target, then creates and bind-mounts it; on failure
// both are undone.
func (ns *NodeServer) publish(
	ctx context.Context, rec *stageRecord, target string, readOnly bool, c *capabilityInfo,
) (err error) {
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run(ctx)
		}
	}()

	if !rec.hasTarget(target) {
		rec.Targets = append(rec.Targets, publishTarget{Path: target, ReadOnly: readOnly})
		if err := ns.saveRecord(rec); err != nil {
			return err
		}
		undo.push("forget target", func(context.Context) error {
			rec.removeTarget(target)
			return ns.saveRecord(rec)
		})
	}

	if rec.Block {
		err = mount.MakeFile(target)
	} else {
		err = mount.MakeDir(target)
	}
	if err != nil {
		return err
	}
	undo.push("remove target", func(context.Context) error { return ns.mounter.CleanupMountPoint(target) })
	// Bind from the stage point just verified, never from a device path
	// that could have been reused.
	flags := c.mountFlags
	if rec.Block {
		flags = nil
	}
	return ns.mounter.Bind(rec.stagePoint(), target, readOnly, flags)
}

// NodeUnpublishVolume unmounts and removes the target path; a target that
// is already gone is fine.
func (ns *NodeServer) NodeUnpublishVolume(
	ctx context.Context, req *csi.NodeUnpublishVolumeRequest,
) (*csi.NodeUnpublishVolumeResponse, error) {
	volumeID, target := req.GetVolumeId(), req.GetTargetPath()
	if err := required("volume_id", volumeID, "target_path", target); err != nil {
		return nil, toStatus(err)
	}
	if !ns.locks.TryAcquire(volumeID) {
		return nil, abortedStatus(volumeID)
	}
	defer ns.locks.Release(volumeID)
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "targetPath", target)

	if err := ns.mounter.CleanupMountPoint(target); err != nil {
		return nil, toStatus(err)
	}
	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return nil, toStatus(err)
	}
	if rec != nil && rec.hasTarget(target) {
		rec.removeTarget(target)
		if err := ns.saveRecord(rec); err != nil {
			return nil, toStatus(err)
		}
	}
	logger.V(2).Info("Volume unpublished")
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
