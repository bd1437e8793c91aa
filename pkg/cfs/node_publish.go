package cfs

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// publishPlan is a validated NodePublishVolume request.
type publishPlan struct {
	id       volumeID
	target   string
	staging  string
	rule     access.Rule
	readOnly bool
}

// NodePublishVolume bind-mounts the staged volume (or its subdir) onto the
// target. The staging path must be a live mount of this volume: a staging
// path whose client died is remounted from the record first, and one that
// is not mounted at all is FailedPrecondition, never a bind of an empty
// directory. A second target of a single-writer (RWOP) volume is refused.
func (ns *NodeServer) NodePublishVolume(
	ctx context.Context, req *csi.NodePublishVolumeRequest,
) (*csi.NodePublishVolumeResponse, error) {
	plan, err := planPublish(req)
	if err != nil {
		return nil, toStatus(err)
	}
	unlock, err := ns.lock(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	rec, err := ns.loadRecord(req.GetVolumeId())
	switch {
	case err != nil:
		return nil, toStatus(err)
	case rec == nil || rec.StagingPath != plan.staging:
		return nil, toStatus(fmt.Errorf("%w: volume is not staged at %s", ErrWrongState, plan.staging))
	}
	plan.readOnly = plan.readOnly || rec.ReadOnly
	if err := ns.checkSingleTarget(plan, rec); err != nil {
		return nil, toStatus(err)
	}
	if done, err := ns.checkTarget(plan, rec); err != nil || done {
		if err != nil {
			return nil, toStatus(err)
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := ns.ensureStaged(ctx, rec); err != nil {
		return nil, toStatus(err)
	}

	if err := ns.bindTarget(rec, plan.target, plan.readOnly); err != nil {
		return nil, toStatus(err)
	}
	klog.FromContext(ctx).V(2).Info("Volume published", "volumeID", rec.VolumeID, "targetPath", plan.target,
		"readOnly", plan.readOnly)
	return &csi.NodePublishVolumeResponse{}, nil
}

// planPublish validates the request.
func planPublish(req *csi.NodePublishVolumeRequest) (*publishPlan, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, fmt.Errorf("%w: volume_id is required", ErrInvalidArgument)
	case req.GetTargetPath() == "":
		return nil, fmt.Errorf("%w: target_path is required", ErrInvalidArgument)
	case req.GetVolumeCapability() == nil:
		return nil, fmt.Errorf("%w: volume_capability is required", ErrInvalidArgument)
	case req.GetStagingTargetPath() == "":
		return nil, fmt.Errorf("%w: staging_target_path is required", ErrInvalidArgument)
	}
	if err := checkPaths("target_path", req.GetTargetPath(),
		"staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	rule, _, err := access.Capability(false, req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	return &publishPlan{
		id: id, target: req.GetTargetPath(), staging: req.GetStagingTargetPath(),
		rule: rule, readOnly: req.GetReadonly() || rule.ReadOnly,
	}, nil
}

// checkSingleTarget refuses a second target of a single-writer volume.
func (ns *NodeServer) checkSingleTarget(plan *publishPlan, rec *stageRecord) error {
	if !plan.rule.SingleTarget {
		return nil
	}
	other, err := ns.otherUse(rec, plan.target)
	if err != nil {
		return err
	}
	if other != "" {
		return fmt.Errorf("%w: single-writer volume is already published at %s", ErrWrongState, other)
	}
	return nil
}

// checkTarget handles a target that is already mounted: the same publish
// is done, a different one a conflict, a dead bind is cleared for a new
// one. It reports whether there is nothing left to do.
func (ns *NodeServer) checkTarget(plan *publishPlan, rec *stageRecord) (bool, error) {
	st, e, err := ns.stateOf(plan.target, rec.VolName)
	if err != nil {
		return false, err
	}
	switch st {
	case mountedOther:
		return false, fmt.Errorf("%w: target %s holds another mount", ErrWrongState, plan.target)
	case mountedDead:
		return false, ns.mounter.Unmount(plan.target)
	case mountedLive:
		if e.ReadOnly() != plan.readOnly {
			return false, fmt.Errorf("%w: already published at %s with read-only %t", ErrNameConflict,
				plan.target, e.ReadOnly())
		}
		return true, nil
	}
	return false, nil
}

// ensureStaged makes sure the staging path is a live mount of the volume,
// remounting it from the record when its client died, and that this node
// still holds the volume (Claim is idempotent: a held lease is only read).
func (ns *NodeServer) ensureStaged(ctx context.Context, rec *stageRecord) error {
	st, _, err := ns.stateOf(rec.StagingPath, rec.VolName)
	if err != nil {
		return err
	}
	switch st {
	case mountedLive:
		return ns.holder.Claim(ctx, ns.claimOf(rec, accessRuleOf(rec)))
	case mountedDead:
		return ns.remount(ctx, rec)
	}
	return fmt.Errorf("%w: staging path %s is %s", ErrWrongState, rec.StagingPath, st)
}

// remount replaces the dead staging mount of rec with a new client and
// renews the record's dead bind mounts.
func (ns *NodeServer) remount(ctx context.Context, rec *stageRecord) error {
	klog.FromContext(ctx).V(2).Info("FUSE client gone, remounting from record", "volumeID", rec.VolumeID,
		"stagingPath", rec.StagingPath)
	if _, err := os.Stat(rec.ConfigFile); err != nil {
		return fmt.Errorf("%w: cannot remount, client config missing: %w", ErrWrongState, err)
	}
	if err := ns.mounter.Unmount(rec.StagingPath); err != nil {
		return err
	}
	if err := ns.mountRecord(ctx, rec, accessRuleOf(rec)); err != nil {
		return err
	}
	ns.rebindTargets(ctx, rec)
	return nil
}

// bindTarget binds the staged volume's root or subdir onto target and
// records it; the bind is undone if the record cannot be written.
func (ns *NodeServer) bindTarget(rec *stageRecord, target string, readOnly bool) error {
	if err := os.MkdirAll(target, 0o750); err != nil {
		return fmt.Errorf("create target %s: %w", target, err)
	}
	dir, err := openSubdir(rec.StagingPath, rec.Subdir, false)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWrongState, err)
	}
	defer dir.Close()
	if err := bindDir(dir, target, readOnly); err != nil {
		return err
	}
	if rec.Targets == nil {
		rec.Targets = map[string]bool{}
	}
	rec.Targets[target] = readOnly
	if err := ns.saveRecord(rec); err != nil {
		_ = ns.mounter.Unmount(target)
		return err
	}
	return nil
}

// rebindTargets renews the dead bind mounts of rec's targets after a
// remount and drops targets that are no longer mounted at all.
func (ns *NodeServer) rebindTargets(ctx context.Context, rec *stageRecord) {
	logger := klog.FromContext(ctx)
	for _, target := range sortedTargets(rec) {
		st, _, err := ns.stateOf(target, rec.VolName)
		switch {
		case err != nil:
			logger.Error(err, "Cannot check target", "targetPath", target)
		case st == notMounted || st == mountedOther:
			delete(rec.Targets, target)
		case st == mountedDead:
			err = ns.mounter.Unmount(target)
			if err == nil {
				err = ns.bindTarget(rec, target, rec.Targets[target])
			}
			if err != nil {
				logger.Error(err, "Cannot renew bind mount", "targetPath", target)
				continue
			}
			logger.V(2).Info("Bind mount renewed", "targetPath", target)
		}
	}
	if err := ns.saveRecord(rec); err != nil {
		logger.Error(err, "Cannot save record", "volumeID", rec.VolumeID)
	}
}

// liveTarget returns a recorded target other than except that is still a
// mount of the volume, or "".
func (ns *NodeServer) liveTarget(rec *stageRecord, except string) string {
	for _, target := range sortedTargets(rec) {
		if target == except {
			continue
		}
		if st, _, err := ns.stateOf(target, rec.VolName); err != nil || st == mountedLive || st == mountedDead {
			return target
		}
	}
	return ""
}

// NodeUnpublishVolume unmounts and removes the target and forgets it.
func (ns *NodeServer) NodeUnpublishVolume(
	ctx context.Context, req *csi.NodeUnpublishVolumeRequest,
) (*csi.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" || req.GetTargetPath() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume_id and target_path are required", ErrInvalidArgument))
	}
	if err := checkPaths("target_path", req.GetTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	unlock, err := ns.lock(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	if err := ns.mounter.CleanupMountPoint(req.GetTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	rec, err := ns.loadRecord(req.GetVolumeId())
	if err == nil && rec != nil && rec.Targets != nil {
		delete(rec.Targets, req.GetTargetPath())
		err = ns.saveRecord(rec)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	klog.FromContext(ctx).V(2).Info("Volume unpublished", "volumeID", req.GetVolumeId(),
		"targetPath", req.GetTargetPath())
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func sortedTargets(rec *stageRecord) []string {
	out := make([]string, 0, len(rec.Targets))
	for t := range rec.Targets {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// accessRuleOf is the rule of the access mode a record was staged with.
func accessRuleOf(rec *stageRecord) access.Rule {
	mode := csi.VolumeCapability_AccessMode_Mode(csi.VolumeCapability_AccessMode_Mode_value[rec.AccessMode])
	rule, err := access.Mode(access.CFS, mode)
	if err != nil {
		return access.Rule{SingleNode: true} // unknown: assume the strictest
	}
	return rule
}
