package rbd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"
)

// Listing walks every pool of every configured cluster and reads each of
// the driver's images (a committed record is what makes a volume or a
// snapshot). Entries are sorted by ID; a page token is the ID of the first
// entry of the next page, so a token stays valid when entries before it
// are deleted or new ones are added.

// listed is one committed volume or snapshot.
type listed struct {
	id   VolumeID
	pool string
	info imageInfo
}

// ListVolumes lists committed volumes, paginated.
func (cs *ControllerServer) ListVolumes(
	ctx context.Context, req *csi.ListVolumesRequest,
) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, toStatus(fmt.Errorf("%w: max_entries must not be negative", ErrInvalidParam))
	}
	if tok := req.GetStartingToken(); tok != "" {
		if _, err := DecodeVolumeID(tok); err != nil {
			return nil, toStatus(fmt.Errorf("%w: %q", ErrBadToken, tok))
		}
	}
	all, err := cs.enumerate(ctx, nil, KindVolume, nil)
	if err != nil {
		return nil, toStatus(err)
	}
	page, next := paginate(all, req.GetStartingToken(), req.GetMaxEntries())
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, e := range page {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{
			Volume: &csi.Volume{
				VolumeId:      e.id.String(),
				CapacityBytes: int64(e.info.size),
				VolumeContext: map[string]string{
					VolCtxClusterID: e.id.ClusterID, VolCtxPool: e.pool, VolCtxImageName: e.id.Image,
				},
				ContentSource: recordSource(e.info.record.Source),
			},
			Status: &csi.ListVolumesResponse_VolumeStatus{PublishedNodeIds: attachedNodes(e.info.metadata)},
		})
	}
	return resp, nil
}

// ListSnapshots lists committed snapshots, filtered and paginated.
func (cs *ControllerServer) ListSnapshots(
	ctx context.Context, req *csi.ListSnapshotsRequest,
) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, toStatus(fmt.Errorf("%w: max_entries must not be negative", ErrInvalidParam))
	}
	if tok := req.GetStartingToken(); tok != "" {
		if _, err := DecodeSnapshotID(tok); err != nil {
			return nil, toStatus(fmt.Errorf("%w: %q", ErrBadToken, tok))
		}
	}
	all, err := cs.listSnapshots(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	page, next := paginate(all, req.GetStartingToken(), req.GetMaxEntries())
	resp := &csi.ListSnapshotsResponse{NextToken: next}
	for _, e := range page {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: &csi.Snapshot{
			SnapshotId:     e.id.String(),
			SourceVolumeId: strings.TrimPrefix(e.info.record.Source, "volume:"),
			SizeBytes:      int64(e.info.size),
			CreationTime:   timestamppb.New(e.info.record.createdTime()),
			ReadyToUse:     true,
		}})
	}
	return resp, nil
}

// listSnapshots applies the filters: by snapshot ID (one lookup), by
// source volume (that volume's pool only), or everything.
func (cs *ControllerServer) listSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) ([]listed, error) {
	var scope *VolumeID
	if req.GetSnapshotId() != "" {
		id, err := DecodeSnapshotID(req.GetSnapshotId())
		if err != nil {
			return nil, nil // no such snapshot
		}
		scope = &id
	}
	var source string
	if req.GetSourceVolumeId() != "" {
		id, err := DecodeVolumeID(req.GetSourceVolumeId())
		if err != nil {
			return nil, nil
		}
		source = "volume:" + id.String()
		if scope == nil {
			scope = &VolumeID{ClusterID: id.ClusterID, PoolID: id.PoolID}
		}
	}
	all, err := cs.enumerate(ctx, req.GetSecrets(), KindSnapshot, scope)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if source == "" || e.info.record.Source == source {
			out = append(out, e)
		}
	}
	return out, nil
}

// paginate returns the page starting at token (an ID) and the next token.
func paginate(all []listed, token string, max int32) ([]listed, string) {
	start := sort.Search(len(all), func(i int) bool { return all[i].id.String() >= token })
	page := all[start:]
	if max > 0 && len(page) > int(max) {
		return page[:max], page[max].id.String()
	}
	return page, ""
}

// enumerate lists committed images of kind, sorted by ID. scope, when
// set, narrows the walk to its cluster and pool (and to one image when it
// has a Hash).
func (cs *ControllerServer) enumerate(
	ctx context.Context, secrets map[string]string, kind IDKind, scope *VolumeID,
) ([]listed, error) {
	clusters, err := cs.clusters.all()
	if err != nil {
		return nil, err
	}
	creds, err := cs.credentials(secrets)
	if err != nil {
		return nil, err
	}
	var out []listed
	for _, info := range clusters {
		if scope != nil && scope.ClusterID != info.ClusterID {
			continue
		}
		s, err := cs.sessionFor(ctx, info, creds)
		if err != nil {
			return nil, err
		}
		found, err := enumerateCluster(ctx, s, kind, scope)
		s.close()
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out, nil
}

func enumerateCluster(ctx context.Context, s *session, kind IDKind, scope *VolumeID) ([]listed, error) {
	pools, err := s.conn.ListPools()
	if err != nil {
		return nil, fmt.Errorf("list pools of cluster %q: %w", s.cluster.ClusterID, err)
	}
	var out []listed
	for _, pool := range pools {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		poolID, err := s.conn.GetPoolByName(pool)
		if err != nil || (scope != nil && scope.PoolID != poolID) {
			continue
		}
		found, err := enumeratePool(s, kind, pool, poolID, scope)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

func enumeratePool(s *session, kind IDKind, pool string, poolID int64, scope *VolumeID) ([]listed, error) {
	io, err := s.ioctx(pool)
	if err != nil {
		return nil, nil //nolint:nilerr // a pool we cannot open holds none of our images
	}
	var names []string
	if scope != nil && scope.Hash != "" {
		names = []string{scope.Image}
	} else if names, err = librbd.GetImageNames(io); err != nil {
		if isNotFound(err) || errors.Is(err, rados.ErrPermissionDenied) {
			return nil, nil // not an RBD pool, or not ours to read
		}
		klog.V(4).InfoS("Cannot list images", "pool", pool, "err", err)
		return nil, nil
	}
	var out []listed
	for _, name := range names {
		hash, ok := imageNameOK(kind, name)
		if !ok {
			continue
		}
		id := VolumeID{Kind: kind, ClusterID: s.cluster.ClusterID, PoolID: poolID, Hash: hash, Image: name}
		info, err := inspect(imageRef{id: id, pool: pool, io: io})
		if err != nil {
			if isNotFound(err) {
				continue // removed while we listed
			}
			return nil, err
		}
		if info.state == stateCommitted {
			out = append(out, listed{id: id, pool: pool, info: info})
		}
	}
	return out, nil
}

// recordSource turns a record's source back into a content source.
func recordSource(source string) *csi.VolumeContentSource {
	if id, ok := strings.CutPrefix(source, "snapshot:"); ok {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id},
		}}
	}
	if id, ok := strings.CutPrefix(source, "volume:"); ok {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id},
		}}
	}
	return nil
}
