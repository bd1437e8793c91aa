package rbd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// Sizes: images are a whole number of MiB (rounded up) and the reported
// capacity is the image's real size. A request without a size gets 1 GiB.
const (
	sizeUnit    = int64(1 << 20)
	defaultSize = int64(1 << 30)
)

// createRequest is a validated CreateVolume.
type createRequest struct {
	name     string
	params   *VolumeParameters
	required int64
	limit    int64
	source   *contentSource
	csiSrc   *csi.VolumeContentSource
}

// contentSource is a decoded volume_content_source.
type contentSource struct {
	id VolumeID
}

// String is the form stored in the image record.
func (c *contentSource) String() string {
	if c == nil {
		return ""
	}
	if c.id.Kind == KindSnapshot {
		return "snapshot:" + c.id.String()
	}
	return "volume:" + c.id.String()
}

// CreateVolume makes a volume, or returns the one this name already made.
func (cs *ControllerServer) CreateVolume(
	ctx context.Context, req *csi.CreateVolumeRequest,
) (*csi.CreateVolumeResponse, error) {
	cr, err := validateCreateVolume(req)
	if err != nil {
		return nil, toStatus(err)
	}

	key := "create/" + cr.name
	if err := cs.tryLock("CreateVolume "+cr.name, key); err != nil {
		return nil, toStatus(err)
	}
	defer cs.locks.Release(key)

	s, err := cs.openSession(ctx, cr.params.ClusterID, req.GetSecrets())
	if err != nil {
		return nil, toStatus(err)
	}
	defer s.close()

	vol, err := cs.provision(ctx, s, cr)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.CreateVolumeResponse{Volume: vol}, nil
}

func validateCreateVolume(req *csi.CreateVolumeRequest) (*createRequest, error) {
	if req.GetName() == "" {
		return nil, missing("name")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, missing("volume_capabilities")
	}
	if err := access.Capabilities(true, req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	params, err := ParseVolumeParameters(req.GetParameters())
	if err != nil {
		return nil, err
	}
	if err := applyCapabilityFsType(params, req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	cr := &createRequest{
		name:     req.GetName(),
		params:   params,
		required: req.GetCapacityRange().GetRequiredBytes(),
		limit:    req.GetCapacityRange().GetLimitBytes(),
		csiSrc:   req.GetVolumeContentSource(),
	}
	if _, err := cr.size(0); err != nil {
		return nil, err
	}
	if cr.source, err = decodeContentSource(req.GetVolumeContentSource(), params.ClusterID); err != nil {
		return nil, err
	}
	return cr, nil
}

// applyCapabilityFsType lets a mount capability's fs_type override the
// StorageClass's; the two must agree when both are set.
func applyCapabilityFsType(p *VolumeParameters, caps []*csi.VolumeCapability) error {
	for _, c := range caps {
		fs := c.GetMount().GetFsType()
		if fs == "" {
			continue
		}
		parsed, err := parseFsType(fs)
		if err != nil {
			return err
		}
		p.FsType = parsed
	}
	return nil
}

func decodeContentSource(src *csi.VolumeContentSource, clusterID string) (*contentSource, error) {
	var id VolumeID
	var err error
	switch {
	case src == nil:
		return nil, nil
	case src.GetSnapshot() != nil:
		if id, err = DecodeSnapshotID(src.GetSnapshot().GetSnapshotId()); err != nil {
			return nil, fmt.Errorf("%w: source snapshot %q: %v",
				ErrSnapshotNotFound, src.GetSnapshot().GetSnapshotId(), err)
		}
	case src.GetVolume() != nil:
		if id, err = DecodeVolumeID(src.GetVolume().GetVolumeId()); err != nil {
			return nil, fmt.Errorf("%w: source volume %q: %v", ErrVolumeNotFound, src.GetVolume().GetVolumeId(), err)
		}
	default:
		return nil, fmt.Errorf("%w: volume_content_source has neither snapshot nor volume", ErrInvalidParam)
	}
	if id.ClusterID != clusterID {
		return nil, fmt.Errorf("%w: the content source is in cluster %q, the StorageClass names %q",
			ErrInvalidParam, id.ClusterID, clusterID)
	}
	return &contentSource{id: id}, nil
}

// maxVolumeBytes is the largest volume this driver creates or grows to.
const maxVolumeBytes = int64(1) << 50

// size picks the image size: the request rounded up to whole MiB, at least
// min (a clone's source size), 1 GiB when nothing is asked.
func (cr *createRequest) size(min uint64) (uint64, error) {
	return pickSize(cr.required, cr.limit, min)
}

func pickSize(required, limit int64, min uint64) (uint64, error) {
	if required < 0 || limit < 0 {
		return 0, fmt.Errorf("%w: capacity_range must not be negative", ErrInvalidParam)
	}
	if limit > 0 && required > limit {
		return 0, fmt.Errorf("%w: required_bytes %d exceeds limit_bytes %d", ErrOutOfRange, required, limit)
	}
	// Rounding near MaxInt64 would overflow, and librbd accepts images far
	// larger than any cluster: refuse sizes past a sane maximum.
	if required > maxVolumeBytes || (min > 0 && min > uint64(maxVolumeBytes)) {
		return 0, fmt.Errorf("%w: required_bytes %d is larger than the maximum %d (1 PiB)",
			ErrOutOfRange, required, int64(maxVolumeBytes))
	}
	size := required
	if size == 0 && min == 0 {
		size = defaultSize
		if limit > 0 && limit < size {
			size = limit / sizeUnit * sizeUnit
		}
	}
	if size < int64(min) {
		size = int64(min)
	}
	size = (size + sizeUnit - 1) / sizeUnit * sizeUnit
	if size == 0 || (limit > 0 && size > limit) {
		return 0, fmt.Errorf("%w: no whole MiB size fits required_bytes %d, limit_bytes %d (source %d bytes)",
			ErrOutOfRange, required, limit, min)
	}
	return uint64(size), nil
}

// fits reports whether an existing image of size satisfies the request.
func (cr *createRequest) fits(size uint64) bool {
	return int64(size) >= cr.required && (cr.limit == 0 || int64(size) <= cr.limit)
}

// provision resolves, locks and makes (or finds) the volume.
func (cs *ControllerServer) provision(ctx context.Context, s *session, cr *createRequest) (_ *csi.Volume, err error) {
	defer cs.observe("create_volume", time.Now(), &err)
	target, src, err := cs.resolveCreate(s, cr)
	if err != nil {
		return nil, err
	}
	keys := []string{target.lockKey()}
	refs := []imageRef{target}
	if src != nil {
		keys, refs = append(keys, src.lockKey()), append(refs, *src)
	}
	if err := cs.tryLock("image "+target.id.Image, keys...); err != nil {
		return nil, err
	}
	defer cs.locks.Release(keys...)

	ls, err := cs.lease(s, "CreateVolume", refs...)
	if err != nil {
		return nil, err
	}
	defer ls.release()
	o := &op{ctx: ctx, leases: ls}
	if err := o.step(FPCreateAfterLock); err != nil {
		return nil, err
	}

	size, err := cs.ensureVolume(o, s, cr, target, src)
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Volume ready", "volumeID", target.id.String(),
		"pool", target.pool, "image", target.id.Image, "size", size)
	return &csi.Volume{
		VolumeId:      target.id.String(),
		CapacityBytes: int64(size),
		VolumeContext: cr.params.volumeContext(target.id.Image),
		ContentSource: cr.csiSrc,
	}, nil
}

// resolveCreate finds the target pool (and data pool) and the source.
func (cs *ControllerServer) resolveCreate(s *session, cr *createRequest) (imageRef, *imageRef, error) {
	poolID, err := s.poolID(cr.params.Pool)
	if err != nil {
		return imageRef{}, nil, err
	}
	if cr.params.DataPool != "" {
		if _, err := s.poolID(cr.params.DataPool); err != nil {
			return imageRef{}, nil, err
		}
	}
	io, err := s.ioctx(cr.params.Pool)
	if err != nil {
		return imageRef{}, nil, err
	}
	id := newVolumeID(KindVolume, cr.params.ClusterID, poolID, cr.name)
	target := imageRef{id: id, pool: cr.params.Pool, io: io}
	if cr.source == nil {
		return target, nil, nil
	}
	src, err := s.resolve(cr.source.id)
	if err != nil {
		return imageRef{}, nil, err
	}
	if src.id.PoolID == target.id.PoolID && src.id.Image == target.id.Image {
		return imageRef{}, nil, fmt.Errorf("%w: volume %q cannot be its own content source", ErrInvalidParam, cr.name)
	}
	return target, &src, nil
}

// ensureVolume drives the image to the committed state from wherever a
// previous attempt stopped, and returns its size.
func (cs *ControllerServer) ensureVolume(
	o *op, s *session, cr *createRequest, target imageRef, src *imageRef,
) (uint64, error) {
	info, err := inspect(target)
	if err != nil {
		return 0, err
	}
	if info.state == stateCommitted {
		return checkExisting(cr, target, info)
	}
	if info.state == stateRecorded && (info.record.Name != cr.name || info.record.Source != cr.source.String()) {
		info.state = stateUnrecorded // an abandoned attempt with other arguments
	}
	if info.state == stateUnrecorded {
		if err := discardHalfMade(s, target); err != nil {
			return 0, err
		}
		info.state = stateMissing
	}
	plan, err := cs.planCreate(s, cr, target, src)
	if err != nil {
		if info.state != stateMissing && codeOf(err) == codes.NotFound {
			// The source went away after an interrupted attempt: this
			// request can never finish, so its half-made image must not stay.
			if derr := discardHalfMade(s, target); derr != nil {
				return 0, derr
			}
		}
		return 0, err
	}
	if info.state == stateMissing {
		if err := plan.make(o); err != nil {
			return 0, err
		}
	}
	return plan.finish(o)
}

// checkExisting compares a committed volume with the request.
func checkExisting(cr *createRequest, target imageRef, info imageInfo) (uint64, error) {
	switch {
	case info.record.Name != cr.name:
		return 0, fmt.Errorf("%w: image %s/%s belongs to volume name %q, not %q",
			ErrCorrupt, target.pool, target.id.Image, info.record.Name, cr.name)
	case info.record.Source != cr.source.String():
		return 0, fmt.Errorf("%w: volume %q exists with content source %q",
			ErrNameConflict, cr.name, info.record.Source)
	case !cr.fits(info.size):
		return 0, fmt.Errorf("%w: volume %q exists with %d bytes, outside the requested range",
			ErrNameConflict, cr.name, info.size)
	}
	return info.size, nil
}

// discardHalfMade removes an image an interrupted create left without a
// record of its own: its ID was never handed out, so nothing uses it. A
// watcher would prove otherwise, and then nothing is touched.
func discardHalfMade(s *session, target imageRef) error {
	watchers, err := otherWatchers(s, target)
	if err != nil {
		return err
	}
	if len(watchers) > 0 {
		return fmt.Errorf("%w: image %s/%s has no record but %d watcher(s); not removing it",
			ErrInUse, target.pool, target.id.Image, len(watchers))
	}
	klog.V(2).InfoS("Removing half-made image", "pool", target.pool, "image", target.id.Image)
	return removeImage(s, target, nil)
}

// DeleteVolume removes a volume. A missing image or a malformed ID is
// success; a mapped or published volume is FailedPrecondition.
func (cs *ControllerServer) DeleteVolume(
	ctx context.Context, req *csi.DeleteVolumeRequest,
) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(missing("volume_id"))
	}
	id, err := DecodeVolumeID(req.GetVolumeId())
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Malformed volume ID: nothing to delete", "volumeID", req.GetVolumeId())
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err := cs.deleteByID(ctx, id, req.GetSecrets(), "DeleteVolume"); err != nil {
		return nil, toStatus(err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// deleteByID is DeleteVolume and DeleteSnapshot after decoding.
func (cs *ControllerServer) deleteByID(
	ctx context.Context, id VolumeID, secrets map[string]string, opName string,
) (err error) {
	defer cs.observe(opName, time.Now(), &err)
	key := imageRef{id: id}.lockKey()
	if err := cs.tryLock(opName+" "+id.String(), key); err != nil {
		return err
	}
	defer cs.locks.Release(key)

	s, err := cs.openSession(ctx, id.ClusterID, secrets)
	if err != nil {
		return err
	}
	defer s.close()
	ref, err := s.resolve(id)
	if errors.Is(err, ErrVolumeNotFound) || errors.Is(err, ErrSnapshotNotFound) {
		return nil
	}
	if err != nil {
		return err
	}

	ls, err := cs.lease(s, opName, ref)
	if err != nil {
		return err
	}
	defer ls.release()
	o := &op{ctx: ctx, leases: ls}
	if err := o.step(FPDeleteAfterLock); err != nil {
		return err
	}
	return deleteImage(o, s, ref)
}

// deleteImage refuses an image in use, then removes it.
func deleteImage(o *op, s *session, ref imageRef) error {
	info, err := inspect(ref)
	if err != nil {
		return err
	}
	if info.state == stateMissing {
		sweepTrash(s, ref.pool)
		return nil
	}
	if nodes := attachedNodes(info.metadata); len(nodes) > 0 {
		return fmt.Errorf("%w: %s %s is still published to node(s) %s",
			ErrInUse, ref.id.Kind.noun(), ref.id, strings.Join(nodes, ", "))
	}
	watchers, err := otherWatchers(s, ref)
	if err != nil {
		return err
	}
	if len(watchers) > 0 {
		return fmt.Errorf("%w: %s %s is mapped by %d client(s), first %s",
			ErrInUse, ref.id.Kind.noun(), ref.id, len(watchers), watchers[0].Addr)
	}
	if err := removeImage(s, ref, o); err != nil {
		return err
	}
	sweepTrash(s, ref.pool)
	klog.FromContext(o.ctx).V(2).Info("Deleted", "volumeID", ref.id.String(), "pool", ref.pool, "image", ref.id.Image)
	return o.step(FPDeleteAfterReap)
}
