package rbd

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// NodeStageVolume maps the image and mounts its filesystem (formatting a
// blank image first) at the staging path, or for a raw block volume binds
// the device onto a file in it. Steps: validate → lock → already staged?
// → record → claim → map → mkfs/mount; a failing step undoes the others.
func (ns *NodeServer) NodeStageVolume(
	ctx context.Context, req *csi.NodeStageVolumeRequest,
) (*csi.NodeStageVolumeResponse, error) {
	volumeID, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required("volume_id", volumeID, "staging_target_path", staging); err != nil {
		return nil, toStatus(err)
	}
	capInfo, err := checkCapability(req.GetVolumeCapability())
	if err != nil {
		return nil, toStatus(err)
	}
	if len(req.GetSecrets()) == 0 {
		return nil, toStatus(fmt.Errorf("%w: secrets", ErrMissingField))
	}
	if !ns.locks.TryAcquire(volumeID) {
		return nil, abortedStatus(volumeID)
	}
	defer ns.locks.Release(volumeID)
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "stagingPath", staging)
	ctx = klog.NewContext(ctx, logger)

	staged, err := ns.checkStaged(ctx, volumeID, staging, capInfo)
	if err != nil {
		return nil, toStatus(err)
	}
	if staged {
		logger.V(4).Info("Volume already staged")
		return &csi.NodeStageVolumeResponse{}, nil
	}

	spec, err := ns.resolver.resolve(ctx, volumeID, req.GetVolumeContext(), req.GetSecrets())
	if err != nil {
		return nil, toStatus(err)
	}
	rec := ns.newStageRecord(volumeID, staging, spec, capInfo)
	if err := ns.stage(ctx, rec, spec, capInfo); err != nil {
		return nil, toStatus(err)
	}
	logger.V(2).Info("Volume staged", "device", rec.device(), "mapper", rec.Mapper, "block", rec.Block)
	return &csi.NodeStageVolumeResponse{}, nil
}

func (ns *NodeServer) newStageRecord(
	volumeID, staging string, spec *stageSpec, c *capabilityInfo,
) *stageRecord {
	rec := &stageRecord{
		VolumeID: volumeID, NodeID: ns.nodeID, StagingPath: staging, AccessMode: c.mode.String(),
		Block: c.block, ReadOnly: c.rule.ReadOnly,
		ClusterID: spec.ClusterID, Pool: spec.Pool, Namespace: spec.Namespace, Image: spec.Image,
		Mapper: spec.Mounter,
	}
	if rec.Mapper == "" {
		rec.Mapper = MounterKRBD
	}
	if !c.block {
		rec.FsType = firstNonEmpty(c.fsType, spec.FsType, mount.FsExt4)
	}
	return rec
}

// checkStaged decides idempotency: true when the volume is already staged
// at this path with a live mapping and a compatible capability. A stage
// whose mapping died (mapper process gone, device detached) is taken down
// so it can be staged again.
func (ns *NodeServer) checkStaged(
	ctx context.Context, volumeID, staging string, c *capabilityInfo,
) (bool, error) {
	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return false, err
	}
	if rec != nil && rec.StagingPath != staging {
		if live, err := ns.stageLive(ctx, rec); err != nil || live {
			return false, errors.Join(err, fmt.Errorf("%w: %q", ErrStagedElsewhere, rec.StagingPath))
		}
		rec = nil // a stale record of an earlier stage; the new one replaces it
	}
	if rec != nil && rec.Staged {
		live, err := ns.stageLive(ctx, rec)
		if err != nil {
			return false, err
		}
		if live {
			return true, compatibleStage(rec, c)
		}
		klog.FromContext(ctx).Info("Staged volume lost its mapping, staging again", "device", rec.device())
		return false, ns.teardownStage(ctx, rec)
	}
	return false, ns.checkPathFree(staging, c.block, rec)
}

// stageLive reports whether the record's stage point is mounted from its
// device and the mapping still serves the image.
func (ns *NodeServer) stageLive(ctx context.Context, rec *stageRecord) (bool, error) {
	if rec.Mapping == nil {
		return false, nil
	}
	m, err := ns.mapperFor(rec.Mapping.Mapper)
	if err != nil {
		return false, err
	}
	if err := m.Check(ctx, rec.Mapping); errors.Is(err, ErrMappingGone) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return ns.mounter.MountedFrom(rec.stagePoint(), rec.Mapping.Device)
}

// compatibleStage refuses a repeated stage that asks for something else
// than what is staged.
func compatibleStage(rec *stageRecord, c *capabilityInfo) error {
	switch {
	case rec.Block != c.block:
		return fmt.Errorf("%w: staged with block=%v", ErrPathInUse, rec.Block)
	case rec.ReadOnly != c.rule.ReadOnly:
		return fmt.Errorf("%w: staged with readOnly=%v", ErrPathInUse, rec.ReadOnly)
	case !c.block && c.fsType != "" && c.fsType != rec.FsType:
		return fmt.Errorf("%w: staged as %s", ErrPathInUse, rec.FsType)
	}
	return nil
}

// checkPathFree refuses a staging path that holds a mount that is not the
// (crashed) stage of this very volume.
func (ns *NodeServer) checkPathFree(staging string, block bool, rec *stageRecord) error {
	point := staging
	if block {
		point = (&stageRecord{StagingPath: staging, Block: true}).stagePoint()
	}
	e, err := ns.mounter.Lookup(point)
	if err != nil || e == nil {
		return err
	}
	if rec != nil && rec.device() != "" {
		if ok, err := ns.mounter.MountedFrom(point, rec.device()); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("%w: %s is already mounted from %s", ErrPathInUse, point, e.Source)
}

// stage runs the steps of a stage, each with its undo.
func (ns *NodeServer) stage(ctx context.Context, rec *stageRecord, spec *stageSpec, c *capabilityInfo) (err error) {
	m, err := ns.mapperFor(rec.Mapper)
	if err != nil {
		return err
	}
	if err := mount.ValidateMountFlags(spec.MapOptions); err != nil {
		return fmt.Errorf("%w: mapOptions: %w", ErrInvalidParam, err)
	}
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run(ctx)
		}
	}()

	if err := ns.saveRecord(rec); err != nil {
		return err
	}
	undo.push("remove record", func(context.Context) error { return ns.records.Remove(rec.VolumeID) })
	ns.hit(FPStageAfterRecord)

	if err := ns.owner.claim(ctx, rec, spec); err != nil {
		return err
	}
	undo.push("release", func(ctx context.Context) error { return ns.owner.release(ctx, rec) })

	before := ns.watchersBefore(ctx, spec)
	mapping, err := m.Map(ctx, mapRequestFor(rec, spec))
	if err != nil {
		return err
	}
	undo.push("unmap", func(ctx context.Context) error { return m.Unmap(ctx, mapping) })
	rec.Mapping = mapping
	rec.ClientAddrs = ns.clientAddrs(ctx, spec, before)
	if err := ns.owner.mapped(ctx, rec); err != nil {
		return err
	}
	if err := ns.saveRecord(rec); err != nil {
		return err
	}
	ns.hit(FPStageAfterMap)

	if err := ns.mountStage(ctx, rec, spec, c); err != nil {
		return err
	}
	undo.push("unmount", func(context.Context) error { return ns.mounter.CleanupMountPoint(rec.stagePoint()) })
	ns.hit(FPStageAfterMount)
	rec.Staged = true
	return ns.saveRecord(rec)
}

func mapRequestFor(rec *stageRecord, spec *stageSpec) *MapRequest {
	return &MapRequest{
		VolumeID: rec.VolumeID, Monitors: spec.Monitors, User: spec.User, Key: spec.Key,
		Pool: rec.Pool, Namespace: rec.Namespace, Image: rec.Image,
		ReadOnly: rec.ReadOnly, Options: spec.MapOptions,
	}
}

// mountStage formats (only a blank device) and mounts the filesystem, or
// binds the raw device onto the stage file. A mount left by a crashed
// earlier try is kept.
func (ns *NodeServer) mountStage(ctx context.Context, rec *stageRecord, spec *stageSpec, c *capabilityInfo) error {
	point, dev := rec.stagePoint(), rec.device()
	if ok, err := ns.mounter.MountedFrom(point, dev); err != nil || ok {
		return err
	}
	if rec.Block {
		if err := mount.MakeFile(point); err != nil {
			return err
		}
		return ns.mounter.Bind(dev, point, false, nil)
	}

	if err := mount.MakeDir(point); err != nil {
		return err
	}
	opts := append(defaultMountOptions(rec.FsType), c.mountFlags...)
	if rec.ReadOnly {
		opts = append(opts, "ro")
	}
	err := ns.mounter.FormatAndMount(ctx, dev, point, mount.FormatOptions{
		FsType: rec.FsType, MkfsOptions: spec.MkfsOptions, MountOptions: opts,
	})
	if errors.Is(err, mount.ErrFilesystemMismatch) || errors.Is(err, mount.ErrUnformattedReadOnly) {
		return fmt.Errorf("%w: %w", ErrCannotFormat, err)
	}
	return err
}

// defaultMountOptions: xfs clones share their source's UUID, and xfs
// refuses a second filesystem with a known UUID without nouuid.
func defaultMountOptions(fsType string) []string {
	if fsType == mount.FsXFS {
		return []string{"nouuid"}
	}
	return nil
}

// teardownStage unmounts the stage point and unmaps the image.
func (ns *NodeServer) teardownStage(ctx context.Context, rec *stageRecord) error {
	if err := ns.mounter.CleanupMountPoint(rec.stagePoint()); err != nil {
		return err
	}
	ns.hit(FPUnstageAfterUmount)
	m, err := ns.mapperFor(rec.Mapper)
	if err != nil {
		return err
	}
	return m.Unmap(ctx, rec.mappingOrGuess(ns.fuse()))
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
