package rbd

import (
	"context"
	"fmt"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"
)

// A snapshot is an image, csi-snap-<hash of the snapshot name>, in its
// source volume's pool: a clone-v2 child of a temporary snapshot of the
// source (removed at once: it moves to the source's trash namespace), with
// one snapshot of its own of the same name, which restores clone from.
// Because it is an image of its own, the source volume can be deleted
// while snapshots exist (it waits in the trash until the last one goes),
// and its snapshots restore unchanged.
//
//	snapshot V@S → clone V@S to S → record → remove V@S → flatten if deep
//	→ snapshot S@S → commit

// snapshotFeatures are the source features a snapshot image keeps.
const snapshotFeatures = librbd.FeatureLayering | librbd.FeatureExclusiveLock | librbd.FeatureObjectMap |
	librbd.FeatureFastDiff | librbd.FeatureDeepFlatten

// VolumeSnapshotClass parameter keys.
const paramSnapshotPool = "pool"

// CreateSnapshot cuts a snapshot, or returns the one this name already cut.
func (cs *ControllerServer) CreateSnapshot(
	ctx context.Context, req *csi.CreateSnapshotRequest,
) (*csi.CreateSnapshotResponse, error) {
	srcID, err := validateCreateSnapshot(req)
	if err != nil {
		return nil, toStatus(err)
	}

	key := "snapshot/" + req.GetName()
	if err := cs.tryLock("CreateSnapshot "+req.GetName(), key); err != nil {
		return nil, toStatus(err)
	}
	defer cs.locks.Release(key)

	s, err := cs.openSession(ctx, srcID.ClusterID, req.GetSecrets())
	if err != nil {
		return nil, toStatus(err)
	}
	defer s.close()
	src, err := s.resolve(srcID)
	if err != nil {
		return nil, toStatus(err)
	}
	if pool := req.GetParameters()[paramSnapshotPool]; pool != "" && pool != src.pool {
		return nil, toStatus(fmt.Errorf("%w: snapshots live in the source volume's pool %q, not %q",
			ErrInvalidParam, src.pool, pool))
	}

	snap, err := cs.snapshot(ctx, s, req.GetName(), src)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.CreateSnapshotResponse{Snapshot: snap}, nil
}

func validateCreateSnapshot(req *csi.CreateSnapshotRequest) (VolumeID, error) {
	if req.GetName() == "" {
		return VolumeID{}, missing("name")
	}
	if req.GetSourceVolumeId() == "" {
		return VolumeID{}, missing("source_volume_id")
	}
	srcID, err := DecodeVolumeID(req.GetSourceVolumeId())
	if err != nil {
		return VolumeID{}, fmt.Errorf("%w: source volume %q: %v", ErrVolumeNotFound, req.GetSourceVolumeId(), err)
	}
	for key, value := range req.GetParameters() {
		switch key {
		case paramClusterID:
			if value != srcID.ClusterID {
				return VolumeID{}, fmt.Errorf("%w: clusterID %q differs from the source volume's %q",
					ErrInvalidParam, value, srcID.ClusterID)
			}
		case paramSnapshotPool:
		default:
			if err := checkSidecarKey(key); err != nil {
				return VolumeID{}, err
			}
		}
	}
	return srcID, nil
}

// snapshot locks the source and the snapshot image and makes the snapshot.
func (cs *ControllerServer) snapshot(
	ctx context.Context, s *session, name string, src imageRef,
) (_ *csi.Snapshot, err error) {
	defer cs.observe("create_snapshot", time.Now(), &err)
	target := imageRef{id: newVolumeID(KindSnapshot, src.id.ClusterID, src.id.PoolID, name), pool: src.pool, io: src.io}
	keys := []string{target.lockKey(), src.lockKey()}
	if err := cs.tryLock("snapshot image "+target.id.Image, keys...); err != nil {
		return nil, err
	}
	defer cs.locks.Release(keys...)
	ls, err := cs.lease(s, "CreateSnapshot", target, src)
	if err != nil {
		return nil, err
	}
	defer ls.release()
	o := &op{ctx: ctx, leases: ls}
	if err := o.step(FPSnapAfterLock); err != nil {
		return nil, err
	}

	info, err := ensureSnapshot(o, s, name, target, src)
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Snapshot ready", "snapshotID", target.id.String(), "pool", target.pool,
		"image", target.id.Image)
	return &csi.Snapshot{
		SnapshotId:     target.id.String(),
		SourceVolumeId: src.id.String(),
		SizeBytes:      int64(info.size),
		CreationTime:   timestamppb.New(info.record.createdTime()),
		ReadyToUse:     true,
	}, nil
}

// ensureSnapshot drives the snapshot image to the committed state.
func ensureSnapshot(o *op, s *session, name string, target, src imageRef) (imageInfo, error) {
	source := "volume:" + src.id.String()
	info, err := inspect(target)
	if err != nil {
		return imageInfo{}, err
	}
	switch {
	case info.state == stateCommitted && info.record.Name != name:
		return imageInfo{}, fmt.Errorf("%w: image %s/%s belongs to snapshot name %q, not %q",
			ErrCorrupt, target.pool, target.id.Image, info.record.Name, name)
	case info.state == stateCommitted && info.record.Source != source:
		return imageInfo{}, fmt.Errorf("%w: snapshot %q exists with source %q",
			ErrNameConflict, name, info.record.Source)
	case info.state == stateCommitted:
		return info, nil
	case info.state == stateRecorded && (info.record.Name != name || info.record.Source != source):
		info.state = stateUnrecorded
	}
	if info.state == stateUnrecorded {
		if err := discardHalfMade(s, target); err != nil {
			return imageInfo{}, err
		}
		info.state = stateMissing
	}
	if info.state == stateMissing {
		if err := cutSnapshotImage(o, s, name, target, src); err != nil {
			return imageInfo{}, err
		}
	}
	if err := finishSnapshot(o, s, target, src); err != nil {
		return imageInfo{}, err
	}
	return inspect(target)
}

// cutSnapshotImage clones the source's current content into the snapshot
// image and records it.
func cutSnapshotImage(o *op, s *session, name string, target, src imageRef) error {
	srcInfo, err := inspect(src)
	if err != nil {
		return err
	}
	if srcInfo.state != stateCommitted {
		return fmt.Errorf("%w: source volume %s does not exist", ErrVolumeNotFound, src.id)
	}
	params, err := snapshotParams(s, src)
	if err != nil {
		return err
	}
	if err := ensureSnap(src, target.id.Image); err != nil {
		return err
	}
	if err := o.step(FPSnapAfterTempSnap); err != nil {
		return err
	}
	if err := cloneImage(src, target.id.Image, target, params); err != nil {
		return err
	}
	if err := o.step(FPSnapAfterClone); err != nil {
		return err
	}
	rec := imageRecord{
		Image:   target.id.Image,
		Name:    name,
		Source:  "volume:" + src.id.String(),
		Created: time.Now().UTC().Format(time.RFC3339Nano),
	}
	if err := writeRecord(target, rec); err != nil {
		return err
	}
	return o.step(FPSnapAfterRecord)
}

// finishSnapshot removes the temporary snapshot, flattens a deep chain,
// snapshots the snapshot image and commits it. Each step is idempotent.
func finishSnapshot(o *op, s *session, target, src imageRef) error {
	if err := removeSnap(src, target.id.Image); err != nil {
		return err
	}
	if err := o.step(FPSnapAfterTempSnapRm); err != nil {
		return err
	}
	if err := flattenIfDeep(s, target); err != nil {
		return err
	}
	if err := o.step(FPSnapAfterFlatten); err != nil {
		return err
	}
	if err := ensureSnap(target, target.id.Image); err != nil {
		return err
	}
	if err := o.step(FPSnapAfterSnap); err != nil {
		return err
	}
	if err := commit(target); err != nil {
		return err
	}
	klog.V(2).InfoS("Created snapshot image", "pool", target.pool, "image", target.id.Image, "source", src.id.Image)
	return o.step(FPSnapAfterCommit)
}

// snapshotParams copies the source's features and data pool.
func snapshotParams(s *session, src imageRef) (*VolumeParameters, error) {
	img, err := librbd.OpenImageReadOnly(src.io, src.id.Image, librbd.NoSnapshot)
	if err != nil {
		return nil, fmt.Errorf("open image %s/%s: %w", src.pool, src.id.Image, err)
	}
	defer img.Close()
	features, err := img.GetFeatures()
	if err != nil {
		return nil, fmt.Errorf("features of %s/%s: %w", src.pool, src.id.Image, err)
	}
	p := &VolumeParameters{Features: features&snapshotFeatures | librbd.FeatureLayering}
	dataPool, err := img.GetDataPoolID()
	if err != nil {
		return nil, err
	}
	if dataPool >= 0 && dataPool != src.id.PoolID {
		name, err := s.conn.GetPoolByID(dataPool)
		if err != nil {
			return nil, fmt.Errorf("data pool %d of %s/%s: %w", dataPool, src.pool, src.id.Image, err)
		}
		p.DataPool = name
	}
	return p, nil
}

// DeleteSnapshot removes a snapshot. A missing one or a malformed ID is
// success. Volumes restored from it keep working: the snapshot image moves
// to the trash until the last of them goes.
func (cs *ControllerServer) DeleteSnapshot(
	ctx context.Context, req *csi.DeleteSnapshotRequest,
) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, toStatus(missing("snapshot_id"))
	}
	id, err := DecodeSnapshotID(req.GetSnapshotId())
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Malformed snapshot ID: nothing to delete", "snapshotID", req.GetSnapshotId())
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err := cs.deleteByID(ctx, id, req.GetSecrets(), "DeleteSnapshot"); err != nil {
		return nil, toStatus(err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}
