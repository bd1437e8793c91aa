package cfs

import (
	"context"
	"fmt"
	"sort"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// ListVolumes lists the live volumes this driver made (name prefix
// "tkestor-", not marked for deletion) on every cluster the controller
// knows: the configured ones and those requests named since start. The
// starting token is the volume ID to start at, so it stays valid when that
// volume is deleted between pages.
func (cs *ControllerServer) ListVolumes(
	ctx context.Context, req *csi.ListVolumesRequest,
) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, toStatus(fmt.Errorf("%w: max_entries must not be negative", ErrInvalidArgument))
	}
	start := req.GetStartingToken()
	if start != "" {
		if _, err := parseVolumeID(start); err != nil {
			return nil, toStatus(fmt.Errorf("%w: %q", ErrBadToken, start))
		}
	}

	all, err := cs.listAll(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	first := sort.Search(len(all), func(i int) bool { return all[i].GetVolume().GetVolumeId() >= start })
	page := all[first:]
	next := ""
	if n := int(req.GetMaxEntries()); n > 0 && len(page) > n {
		next = page[n].GetVolume().GetVolumeId()
		page = page[:n]
	}
	return &csi.ListVolumesResponse{Entries: page, NextToken: next}, nil
}

// listAll returns every listed volume of every known cluster, by ID.
func (cs *ControllerServer) listAll(ctx context.Context) ([]*csi.ListVolumesResponse_Entry, error) {
	var out []*csi.ListVolumesResponse_Entry
	for _, c := range cs.clusters.known() {
		vols, err := c.ListVols(ctx, volNamePrefix)
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			if v.Status != master.StatusNormal || !isOurVolume(v.Name) {
				continue
			}
			out = append(out, &csi.ListVolumesResponse_Entry{Volume: &csi.Volume{
				VolumeId:      newVolumeID(v.Name, c.Addrs()).String(),
				CapacityBytes: int64(v.TotalBytes),
			}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetVolume().GetVolumeId() < out[j].GetVolume().GetVolumeId() })
	return out, nil
}

// GetCapacity reports the free data node space of the cluster the
// parameters name (of every known cluster without parameters), in whole
// GiB. It is raw space: the master does not subtract replication, and
// ChubaoFS quotas may add up to more than the cluster holds.
func (cs *ControllerServer) GetCapacity(
	ctx context.Context, req *csi.GetCapacityRequest,
) (*csi.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if _, _, err := access.Capability(false, c); err != nil {
			return &csi.GetCapacityResponse{AvailableCapacity: 0}, nil
		}
	}
	clients := cs.clusters.known()
	if len(req.GetParameters()) > 0 {
		params, err := ParseVolumeParameters(req.GetParameters())
		if err != nil {
			return nil, toStatus(err)
		}
		c, err := cs.clusters.client(params.Masters)
		if err != nil {
			return nil, toStatus(err)
		}
		clients = []*master.Client{c}
	}

	var avail int64
	for _, c := range clients {
		info, err := c.Cluster(ctx)
		if err != nil {
			return nil, toStatus(err)
		}
		avail += int64(info.AvailGiB) * gib
	}
	return &csi.GetCapacityResponse{AvailableCapacity: avail}, nil
}
