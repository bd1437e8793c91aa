package rbd

import (
	"context"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"
)

// ControllerExpandVolume grows the image (librbd resize, online). It never
// shrinks: an image already at least the requested size is returned as it
// is. A filesystem volume then needs the node to grow the filesystem.
func (cs *ControllerServer) ControllerExpandVolume(
	ctx context.Context, req *csi.ControllerExpandVolumeRequest,
) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(missing("volume_id"))
	}
	if req.GetCapacityRange() == nil {
		return nil, toStatus(missing("capacity_range"))
	}
	size, err := pickSize(req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes(), 0)
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := DecodeVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(err)
	}

	key := imageRef{id: id}.lockKey()
	if err := cs.tryLock("ControllerExpandVolume "+id.String(), key); err != nil {
		return nil, toStatus(err)
	}
	defer cs.locks.Release(key)

	newSize, err := cs.expand(ctx, id, req.GetSecrets(), size)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.ControllerExpandVolumeResponse{
		CapacityBytes:         int64(newSize),
		NodeExpansionRequired: req.GetVolumeCapability().GetBlock() == nil,
	}, nil
}

func (cs *ControllerServer) expand(
	ctx context.Context, id VolumeID, secrets map[string]string, size uint64,
) (_ uint64, err error) {
	defer cs.observe("expand", time.Now(), &err)
	s, err := cs.openSession(ctx, id.ClusterID, secrets)
	if err != nil {
		return 0, err
	}
	defer s.close()
	ref, err := s.resolve(id)
	if err != nil {
		return 0, err
	}
	ls, err := cs.lease(s, "ControllerExpandVolume", ref)
	if err != nil {
		return 0, err
	}
	defer ls.release()

	if err := requireCommitted(ref); err != nil {
		return 0, err
	}
	if err := ls.check(); err != nil {
		return 0, err
	}
	newSize, err := resizeImage(ref, size)
	if err != nil {
		return 0, err
	}
	klog.FromContext(ctx).V(2).Info("Expanded volume", "volumeID", id.String(), "pool", ref.pool,
		"image", id.Image, "size", newSize)
	return newSize, nil
}

// requireCommitted fails with NotFound unless ref is a finished image.
func requireCommitted(ref imageRef) error {
	info, err := inspect(ref)
	if err != nil {
		return err
	}
	if info.state != stateCommitted {
		return notFoundErr(ref)
	}
	return nil
}
