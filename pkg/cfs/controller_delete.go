package cfs

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/access"
	"github.com/tkestack/tkestor-csi/pkg/common/failpoint"
)

// Failpoints of DeleteVolume and ControllerExpandVolume.
const (
	fpDeleteBeforeDeleteVol = "cfs-delete-before-deletevol"
	fpExpandBeforeExpandVol = "cfs-expand-before-expandvol"
)

// DeleteVolume deletes a volume this driver created. It is done once the
// master has the volume marked for deletion or no longer knows it, which
// makes it idempotent under direct and delayed deletion alike. An ID that
// is not ours is already "deleted"; a volume whose name does not carry our
// prefix (a static volume) is never deleted.
func (cs *ControllerServer) DeleteVolume(
	ctx context.Context, req *csi.DeleteVolumeRequest,
) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume_id is required", ErrInvalidArgument))
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Not a volume ID of ours, nothing to delete", "volumeID", req.GetVolumeId())
		return &csi.DeleteVolumeResponse{}, nil
	}
	if !isOurVolume(id.Name) {
		return nil, toStatus(fmt.Errorf("%w: volume %q was not created by this driver; delete it on the master",
			ErrWrongState, id.Name))
	}
	unlock, err := cs.lock(id.lockKey())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	c, err := cs.clusters.forID(id, req.GetSecrets())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := deleteVolume(ctx, c, id.Name, req.GetSecrets()); err != nil {
		return nil, toStatus(err)
	}
	cs.published.forget(id.lockKey())
	return &csi.DeleteVolumeResponse{}, nil
}

// deleteVolume marks name for deletion unless it is gone or marked.
func deleteVolume(ctx context.Context, c *master.Client, name string, secrets map[string]string) error {
	logger := klog.FromContext(ctx).WithValues("volume", name)
	vol, err := c.GetVol(ctx, name)
	switch {
	case errors.Is(err, master.ErrVolNotFound):
		logger.V(4).Info("Volume already gone")
		return nil
	case err != nil:
		return err
	case vol.MarkedDeleted():
		logger.V(4).Info("Volume already marked for deletion")
		return nil
	}
	owner, err := volumeOwner(vol, secrets)
	if err != nil {
		return err
	}

	failpoint.Hit(fpDeleteBeforeDeleteVol)
	err = c.DeleteVol(ctx, name, owner)
	switch {
	case err == nil:
		logger.V(2).Info("Volume deleted")
		return nil
	case errors.Is(err, master.ErrVolNotFound), errors.Is(err, master.ErrVolMarkedDeleted):
		return nil
	case !errors.Is(err, master.ErrNoVolPolicy):
		return err
	}
	// "no vol policy" is a repeated direct delete; confirm it is under way.
	vol, gerr := c.GetVol(ctx, name)
	if errors.Is(gerr, master.ErrVolNotFound) || (gerr == nil && vol.MarkedDeleted()) {
		return nil
	}
	return err
}

// ControllerExpandVolume raises the quota. A volume already at or above
// the size asked for is success (the master's own expand is strict, so a
// retry would otherwise fail). A mounted client sees the new size at its
// next refresh (5 minutes on CubeFS); no node step is needed.
func (cs *ControllerServer) ControllerExpandVolume(
	ctx context.Context, req *csi.ControllerExpandVolumeRequest,
) (*csi.ControllerExpandVolumeResponse, error) {
	id, size, err := validateExpand(req)
	if err != nil {
		return nil, toStatus(err)
	}
	unlock, err := cs.lock(id.lockKey())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	c, err := cs.clusters.forID(id, req.GetSecrets())
	if err != nil {
		return nil, toStatus(err)
	}
	got, err := expandVolume(ctx, c, id.Name, size, req.GetSecrets())
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: int64(got) * gib}, nil
}

// validateExpand checks the request and returns the ID and target size.
func validateExpand(req *csi.ControllerExpandVolumeRequest) (volumeID, uint64, error) {
	if req.GetVolumeId() == "" {
		return volumeID{}, 0, fmt.Errorf("%w: volume_id is required", ErrInvalidArgument)
	}
	if req.GetCapacityRange() == nil {
		return volumeID{}, 0, fmt.Errorf("%w: capacity_range is required", ErrInvalidArgument)
	}
	if c := req.GetVolumeCapability(); c != nil {
		if _, _, err := access.Capability(false, c); err != nil {
			return volumeID{}, 0, err
		}
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return volumeID{}, 0, fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	size, err := capacityGiB(req.GetCapacityRange())
	return id, size, err
}

// expandVolume makes the quota at least size GiB and returns the quota.
func expandVolume(
	ctx context.Context, c *master.Client, name string, size uint64, secrets map[string]string,
) (uint64, error) {
	vol, err := c.GetVol(ctx, name)
	if err != nil {
		return 0, err
	}
	if vol.MarkedDeleted() {
		return 0, fmt.Errorf("%w: volume %q", ErrBeingDeleted, name)
	}
	if vol.CapacityGiB >= size {
		klog.FromContext(ctx).V(4).Info("Volume already large enough", "volume", name, "capacityGiB", vol.CapacityGiB)
		return vol.CapacityGiB, nil
	}
	owner, err := volumeOwner(vol, secrets)
	if err != nil {
		return 0, err
	}

	failpoint.Hit(fpExpandBeforeExpandVol)
	err = c.ExpandVol(ctx, name, owner, size)
	if errors.Is(err, master.ErrExpandNotLarger) {
		// Grown by someone else since we looked; fine if large enough.
		if vol, gerr := c.GetVol(ctx, name); gerr == nil && vol.CapacityGiB >= size {
			return vol.CapacityGiB, nil
		}
	}
	if err != nil {
		return 0, err
	}
	klog.FromContext(ctx).V(2).Info("Volume expanded", "volume", name, "capacityGiB", size)
	return size, nil
}
