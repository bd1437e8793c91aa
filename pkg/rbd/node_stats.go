package rbd

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// NodeGetVolumeStats reports bytes and inodes of a mounted filesystem, or
// the size of a raw block device. A volume whose mount is corrupted,
// whose device is gone or whose mapper died is FailedPrecondition (the
// details are in NodeGetVolumeHealth).
func (ns *NodeServer) NodeGetVolumeStats(
	ctx context.Context, req *csi.NodeGetVolumeStatsRequest,
) (*csi.NodeGetVolumeStatsResponse, error) {
	volumeID, path := req.GetVolumeId(), req.GetVolumePath()
	if err := required("volume_id", volumeID, "volume_path", path); err != nil {
		return nil, toStatus(err)
	}
	rec, err := ns.recordForPath(volumeID, path)
	if err != nil {
		return nil, toStatus(err)
	}

	if p := ns.volumeProblem(ctx, rec, path); p != nil {
		return nil, toStatus(notStaged(p.message))
	}
	usage, err := ns.usage(rec, path)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: usage}, nil
}

// recordForPath returns the record of a volume whose stage point or one of
// whose targets is path; NotFound (ErrVolumePathNotFound) otherwise.
func (ns *NodeServer) recordForPath(volumeID, path string) (*stageRecord, error) {
	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		if err := ns.resolver.checkID(volumeID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: volume %q is not staged on this node", ErrVolumePathNotFound, volumeID)
	}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q does not exist", ErrVolumePathNotFound, path)
	}
	if path != rec.StagingPath && path != rec.stagePoint() && !rec.hasTarget(path) {
		return nil, fmt.Errorf("%w: %q is neither the staging path nor a target of %q",
			ErrVolumePathNotFound, path, volumeID)
	}
	return rec, nil
}

// problem is why a volume is unhealthy: a CamelCase reason and a message.
type problem struct {
	reason, message string
}

// volumeProblem returns why the volume at path (its staging path or a
// target) is unhealthy, nil if it is not.
func (ns *NodeServer) volumeProblem(ctx context.Context, rec *stageRecord, path string) *problem {
	if rec.Mapping == nil || !rec.Staged {
		return &problem{"NotStaged", "volume is not completely staged"}
	}
	m, err := ns.mapperFor(rec.Mapping.Mapper)
	if err != nil {
		return &problem{"UnknownMapper", err.Error()}
	}
	// First: the mapping of a fenced volume may not answer at all.
	if reason := ns.owner.lostReason(rec.VolumeID); reason != "" {
		return &problem{"Fenced", reason}
	}
	if err := m.Check(ctx, rec.Mapping); err != nil {
		return &problem{"MappingGone", err.Error()}
	}
	if mount.IsCorruptedMount(path) {
		return &problem{"CorruptedMount", fmt.Sprintf("%s is a corrupted mount", path)}
	}
	point := path
	if path == rec.StagingPath {
		point = rec.stagePoint()
	}
	if ok, err := ns.mounter.MountedFrom(point, rec.device()); err != nil || !ok {
		return &problem{"NotMounted", fmt.Sprintf("%s is not mounted from %s", point, rec.device())}
	}
	return nil
}

// NodeGetVolumeHealth reports a staged volume as INACCESSIBLE when its
// mapping died (mapper process gone, device detached) or its staging or
// publish mount is corrupted or missing; an empty list means healthy.
func (ns *NodeServer) NodeGetVolumeHealth(
	ctx context.Context, req *csi.NodeGetVolumeHealthRequest,
) (*csi.NodeGetVolumeHealthResponse, error) {
	volumeID := req.GetVolumeId()
	if err := required("volume_id", volumeID); err != nil {
		return nil, toStatus(err)
	}
	rec, err := ns.loadRecord(volumeID)
	if err != nil {
		return nil, toStatus(err)
	}
	if rec == nil {
		if err := ns.resolver.checkID(volumeID); err != nil {
			return nil, toStatus(err)
		}
		return nil, toStatus(fmt.Errorf("%w: volume %q is not staged on this node", ErrVolumePathNotFound, volumeID))
	}

	health := &csi.VolumeHealth{VolumeId: volumeID}
	paths := []string{rec.StagingPath}
	if p := req.GetVolumePublishPath(); p != "" && rec.hasTarget(p) {
		paths = append(paths, p)
	}
	for _, path := range paths {
		if p := ns.volumeProblem(ctx, rec, path); p != nil {
			health.HealthStatuses = append(health.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
				Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: p.reason, Message: p.message,
			})
			break
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: health}, nil
}

func (ns *NodeServer) usage(rec *stageRecord, path string) ([]*csi.VolumeUsage, error) {
	if rec.Block {
		size, err := mount.DeviceSize(rec.device())
		if err != nil {
			return nil, err
		}
		return []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: size}}, nil
	}
	u, err := mount.FsUsage(path)
	if err != nil {
		return nil, err
	}
	return []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: u.TotalBytes, Available: u.AvailableBytes, Used: u.UsedBytes},
		{Unit: csi.VolumeUsage_INODES, Total: u.TotalInodes, Available: u.FreeInodes, Used: u.UsedInodes},
	}, nil
}
