package cfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// cleanupTimeout bounds the undo of a failed stage, which runs even when
// the request's own deadline has passed.
const cleanupTimeout = 30 * time.Second

// NodeStageVolume mounts the volume's root on the staging path with the
// FUSE client: write the client config (0600) and the record, run the
// client, confirm the mount in mountinfo, make the subdir, claim, and
// only then report success. An already staged volume is success; a dead
// client's mount (after a plugin restart) is remounted and its bind mounts
// are renewed.
func (ns *NodeServer) NodeStageVolume(
	ctx context.Context, req *csi.NodeStageVolumeRequest,
) (*csi.NodeStageVolumeResponse, error) {
	plan, err := planStage(req)
	if err != nil {
		return nil, toStatus(err)
	}
	unlock, err := ns.lock(plan.volumeID)
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	logger := klog.FromContext(ctx).WithValues("volumeID", plan.volumeID, "stagingPath", plan.stagingPath)
	rec, err := ns.loadRecord(plan.volumeID)
	if err != nil {
		return nil, toStatus(err)
	}
	if rec != nil && rec.StagingPath != plan.stagingPath {
		return nil, toStatus(fmt.Errorf("%w: volume is staged at %s", ErrWrongState, rec.StagingPath))
	}
	st, _, err := ns.stateOf(plan.stagingPath, plan.id.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	switch st {
	case mountedOther:
		return nil, toStatus(fmt.Errorf("%w: staging path %s holds another mount", ErrWrongState, plan.stagingPath))
	case mountedLive:
		logger.V(4).Info("Volume already staged")
		if err := ns.confirmStaged(ctx, plan, rec); err != nil {
			return nil, toStatus(err)
		}
		return &csi.NodeStageVolumeResponse{}, nil
	case mountedDead:
		logger.V(2).Info("FUSE client of the staging mount is gone, remounting")
		if err := ns.mounter.Unmount(plan.stagingPath); err != nil {
			return nil, toStatus(err)
		}
	}

	rec, err = ns.stage(ctx, plan, req.GetSecrets(), rec)
	if err != nil {
		return nil, toStatus(err)
	}
	ns.rebindTargets(ctx, rec)
	logger.V(2).Info("Volume staged", "volume", plan.id.Name, "readOnly", plan.readOnly)
	return &csi.NodeStageVolumeResponse{}, nil
}

// confirmStaged answers a repeated NodeStage for a live mount: the same
// access is fine (and claimed again), another is a conflict. A live mount
// without a record (the state directory was lost) is adopted.
func (ns *NodeServer) confirmStaged(ctx context.Context, plan *stagePlan, rec *stageRecord) error {
	if rec == nil {
		rec = ns.newRecord(plan, "unknown")
		if err := ns.saveRecord(rec); err != nil {
			return err
		}
	}
	if rec.ReadOnly != plan.readOnly {
		return fmt.Errorf("%w: volume is staged with read-only %t", ErrNameConflict, rec.ReadOnly)
	}
	return ns.holder.Claim(ctx, ns.claimOf(rec, plan.rule))
}

// newRecord describes the staging plan will make.
func (ns *NodeServer) newRecord(plan *stagePlan, ownerFrom string) *stageRecord {
	return &stageRecord{
		VolumeID: plan.volumeID, VolName: plan.id.Name, Masters: plan.masters,
		StagingPath: plan.stagingPath, ConfigFile: filepath.Join(ns.volumeDir(plan.volumeID), "client.json"),
		Subdir: plan.subdir, ReadOnly: plan.readOnly, AccessMode: plan.mode.String(), OwnerFrom: ownerFrom,
	}
}

// claimOf is the Holder's view of a staging.
func (ns *NodeServer) claimOf(rec *stageRecord, rule access.Rule) Claim {
	return Claim{
		VolumeID: rec.VolumeID, NodeID: ns.opts.NodeID, StagingPath: rec.StagingPath, Rule: rule,
		Mode: rec.AccessMode,
	}
}

// stage writes the config and the record, then mounts. A fresh stage that
// fails leaves nothing behind; a failed remount keeps the record (its
// targets still need cleaning up).
func (ns *NodeServer) stage(
	ctx context.Context, plan *stagePlan, secrets map[string]string, old *stageRecord,
) (rec *stageRecord, err error) {
	owner, from, err := ns.stageOwner(ctx, plan, secrets)
	if err != nil {
		return nil, err
	}
	rec = ns.newRecord(plan, from)
	if old != nil {
		rec.Targets = old.Targets
	}
	dir := filepath.Dir(rec.ConfigFile)
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	defer func() {
		if err != nil && old == nil {
			ns.forget(rec)
		}
	}()

	err = writeClientConfig(rec.ConfigFile, clientConfig{
		MountPoint: plan.stagingPath, VolName: plan.id.Name, Owner: owner, Masters: plan.masters,
		LogDir: filepath.Join(dir, "log"), LogLevel: plan.logLevel, ConsulAddr: plan.consulAddr,
		ReadOnly: clientReadOnly(plan),
	})
	if err != nil {
		return nil, err
	}
	if err := ns.saveRecord(rec); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(plan.stagingPath, 0o750); err != nil {
		return nil, fmt.Errorf("create staging path: %w", err)
	}
	return rec, ns.mountRecord(ctx, rec, plan.rule)
}

// clientReadOnly says whether the client mounts read-only. A single-node
// staging renews its lease through the staging mount, so its client
// mounts read-write even for a read-only mode or volume; every publish
// target of it is then a read-only bind, and only root on the node can
// write through the staging path.
func clientReadOnly(plan *stagePlan) bool {
	return plan.readOnly && !plan.rule.SingleNode
}

// mountRecord runs the client of a record and confirms the mount, makes
// the subdir and claims; on any failure the client is ended and the mount
// undone. It is the whole of a remount after the client died.
func (ns *NodeServer) mountRecord(ctx context.Context, rec *stageRecord, rule access.Rule) (err error) {
	claimed := false
	defer func() {
		if err != nil && claimed {
			ns.releaseAfterFailure(ctx, rec, rule)
		}
		if err != nil {
			ns.endClient(ctx, rec)
		}
	}()
	// A process still holding this config serves no live mount (the
	// callers checked): a stuck earlier attempt. Never run two clients.
	if err := ns.client.Stop(ctx, rec.ConfigFile, 0); err != nil {
		return err
	}
	if err := ns.client.Mount(ctx, rec.ConfigFile); err != nil {
		return err
	}
	st, e, err := ns.stateOf(rec.StagingPath, rec.VolName)
	if err != nil {
		return err
	}
	if st != mountedLive {
		return fmt.Errorf("%w: cfs-client exited 0 but %s is %s", ErrUnavailable, rec.StagingPath, st)
	}
	if rec.Subdir != "" {
		dir, err := openSubdir(rec.StagingPath, rec.Subdir, !rec.ReadOnly)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrWrongState, err)
		}
		dir.Close()
	}
	if err := ns.holder.Claim(ctx, ns.claimOf(rec, rule)); err != nil {
		return err
	}
	claimed = true
	rec.Source, rec.FsType = e.Source, e.FsType
	return ns.saveRecord(rec)
}

// releaseAfterFailure gives back a claim of a stage that failed after it.
func (ns *NodeServer) releaseAfterFailure(ctx context.Context, rec *stageRecord, rule access.Rule) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := ns.holder.Release(ctx, ns.claimOf(rec, rule)); err != nil {
		klog.FromContext(ctx).Error(err, "Cleanup: release failed", "volumeID", rec.VolumeID)
	}
}

// endClient unmounts the staging path (if it is the volume's) and ends
// its client, even when ctx is already done. A client that had mounted
// gets time to exit after the unmount; one that never did is killed at
// once. The second unmount catches a daemon that mounted after the first
// look.
func (ns *NodeServer) endClient(ctx context.Context, rec *stageRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	logger := klog.FromContext(ctx)
	unmounted, err := ns.unmountVolume(rec.StagingPath, rec.VolName)
	if err != nil {
		logger.Error(err, "Cleanup: unmount failed", "stagingPath", rec.StagingPath)
	}
	grace := time.Duration(0)
	if unmounted {
		grace = clientExitGrace
	}
	if err := ns.client.Stop(ctx, rec.ConfigFile, grace); err != nil {
		logger.Error(err, "Cleanup: client did not end", "volumeID", rec.VolumeID)
	}
	if _, err := ns.unmountVolume(rec.StagingPath, rec.VolName); err != nil {
		logger.Error(err, "Cleanup: unmount failed", "stagingPath", rec.StagingPath)
	}
}

// forget removes a volume's working directory and record.
func (ns *NodeServer) forget(rec *stageRecord) {
	if err := os.RemoveAll(ns.volumeDir(rec.VolumeID)); err != nil {
		klog.ErrorS(err, "Cleanup: remove volume directory", "volumeID", rec.VolumeID)
	}
	if err := ns.records.Remove(rec.VolumeID); err != nil {
		klog.ErrorS(err, "Cleanup: remove record", "volumeID", rec.VolumeID)
	}
}
