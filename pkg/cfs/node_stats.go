package cfs

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// Health reasons reported by NodeGetVolumeHealth.
const (
	reasonClientGone = "FuseClientGone"
	reasonNotMounted = "NotMounted"
	msgClientGone    = "transport endpoint is not connected: the volume's cfs-client is gone; " +
		"the next stage or publish remounts it"
)

// NodeGetVolumeStats reports the FUSE filesystem's statfs numbers (the
// volume's quota and use as the client last heard them). The path must be
// a mount of this volume, else NotFound; a mount whose client is gone is
// Unavailable, and NodeGetVolumeHealth says INACCESSIBLE for it.
func (ns *NodeServer) NodeGetVolumeStats(
	_ context.Context, req *csi.NodeGetVolumeStatsRequest,
) (*csi.NodeGetVolumeStatsResponse, error) {
	if req.GetVolumeId() == "" || req.GetVolumePath() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume_id and volume_path are required", ErrInvalidArgument))
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("%w: %w", ErrVolumeNotFound, err))
	}
	st, err := ns.pathState(req.GetVolumePath(), id.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	switch st {
	case mountedDead:
		return nil, toStatus(fmt.Errorf("%w: %s: %s", ErrUnavailable, req.GetVolumePath(), msgClientGone))
	case mountedLive:
	default:
		return nil, toStatus(fmt.Errorf("%w: %s is not a mount of volume %q", ErrVolumeNotFound,
			req.GetVolumePath(), id.Name))
	}

	u, err := mount.FsUsage(req.GetVolumePath())
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: u.TotalBytes, Available: u.AvailableBytes, Used: u.UsedBytes},
		{Unit: csi.VolumeUsage_INODES, Total: u.TotalInodes, Available: u.FreeInodes, Used: u.UsedInodes},
	}}, nil
}

// pathState is stateOf for a path given by the CO: a missing path is
// NotFound rather than "not mounted".
func (ns *NodeServer) pathState(path, volName string) (mountState, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return notMounted, fmt.Errorf("%w: %s does not exist", ErrVolumeNotFound, path)
	}
	st, _, err := ns.stateOf(path, volName)
	return st, err
}

// NodeGetVolumeHealth reports INACCESSIBLE when the staging path or the
// publish path is a mount whose client is gone (or is not mounted while
// the volume is recorded as staged), and no condition otherwise.
func (ns *NodeServer) NodeGetVolumeHealth(
	_ context.Context, req *csi.NodeGetVolumeHealthRequest,
) (*csi.NodeGetVolumeHealthResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume_id is required", ErrInvalidArgument))
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("%w: %w", ErrVolumeNotFound, err))
	}
	rec, err := ns.loadRecord(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(err)
	}
	staging := req.GetStagingTargetPath()
	if staging == "" && rec != nil {
		staging = rec.StagingPath
	}
	if staging == "" && req.GetVolumePublishPath() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume %q is not staged on this node", ErrVolumeNotFound, id.Name))
	}

	health := &csi.VolumeHealth{VolumeId: req.GetVolumeId()}
	for _, path := range []string{staging, req.GetVolumePublishPath()} {
		if path == "" {
			continue
		}
		if entry := ns.healthOf(path, id.Name); entry != nil {
			health.HealthStatuses = append(health.HealthStatuses, entry)
			break // one entry per (status, reason)
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: health}, nil
}

// healthOf is the adverse condition of one path, or nil.
func (ns *NodeServer) healthOf(path, volName string) *csi.VolumeHealth_VolumeHealthEntry {
	st, _, err := ns.stateOf(path, volName)
	switch {
	case err != nil:
		return &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_UNKNOWN_VOLUME_HEALTH_TYPE, Reason: "MountTableUnreadable",
			Message: err.Error(),
		}
	case st == mountedDead:
		return &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: reasonClientGone,
			Message: path + ": " + msgClientGone,
		}
	case st != mountedLive:
		return &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: reasonNotMounted,
			Message: fmt.Sprintf("%s is %s", path, st),
		}
	}
	return nil
}
