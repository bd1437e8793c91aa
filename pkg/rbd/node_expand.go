package rbd

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// NodeExpandVolume makes the mapped device show the image's new size
// (rbd-fuse's file and the loop device over it; krbd and rbd-nbd follow by
// themselves) and grows the filesystem online. A raw block volume only
// needs the device refreshed. It returns the device's new size.
func (ns *NodeServer) NodeExpandVolume(
	ctx context.Context, req *csi.NodeExpandVolumeRequest,
) (*csi.NodeExpandVolumeResponse, error) {
	volumeID, path := req.GetVolumeId(), req.GetVolumePath()
	if err := required("volume_id", volumeID, "volume_path", path); err != nil {
		return nil, toStatus(err)
	}
	if !ns.locks.TryAcquire(volumeID) {
		return nil, abortedStatus(volumeID)
	}
	defer ns.locks.Release(volumeID)
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "volumePath", path)
	ctx = klog.NewContext(ctx, logger)

	rec, err := ns.recordForPath(volumeID, path)
	if err != nil {
		return nil, toStatus(err)
	}
	if p := ns.volumeProblem(ctx, rec, path); p != nil {
		return nil, toStatus(notStaged(p.message))
	}
	m, err := ns.mapperFor(rec.Mapping.Mapper)
	if err != nil {
		return nil, toStatus(err)
	}

	if _, err := m.Refresh(ctx, rec.Mapping, req.GetCapacityRange().GetRequiredBytes()); err != nil {
		return nil, toStatus(err)
	}
	if !rec.Block && !rec.ReadOnly {
		if err := ns.mounter.ResizeFs(rec.device(), rec.StagingPath); err != nil {
			if rec.FsType == mount.FsExt4 && !mount.HasCapSysResource() {
				err = fmt.Errorf("%w (ext4 grows online only with CAP_SYS_RESOURCE, which this plugin lacks)", err)
			}
			return nil, toStatus(fmt.Errorf("%w: %w", ErrResizeFailed, err))
		}
	}
	size, err := mount.DeviceSize(rec.device())
	if err != nil {
		return nil, toStatus(err)
	}
	logger.V(2).Info("Volume expanded", "device", rec.device(), "bytes", size)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}
