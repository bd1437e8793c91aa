package cfs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/access"
	"github.com/tkestack/tkestor-csi/pkg/common/failpoint"
)

// Failpoints between the steps of CreateVolume, for crash tests.
const (
	fpCreateBeforeCreateVol = "cfs-create-before-createvol"
	fpCreateAfterCreateVol  = "cfs-create-after-createvol"
)

// Volume context keys: what NodeStage needs besides the ID. The owner is
// never among them (the context is stored in the PV and logged).
const (
	ctxMasterAddr = paramMasterAddr
	ctxVolName    = "volName"
	ctxConsulAddr = paramConsulAddr
	ctxLogLevel   = paramLogLevel
	ctxSubdir     = paramSubdir
	ctxReadOnly   = paramReadOnly
)

// createPlan is a validated CreateVolume request.
type createPlan struct {
	id     volumeID
	params *VolumeParameters
	owner  master.Owner
	size   uint64
	rng    *csi.CapacityRange
}

// CreateVolume creates a volume named after the request, or returns the
// one an earlier call made. A name taken by another owner, a smaller
// quota or another layout is AlreadyExists; a name still held by a volume
// being deleted is FailedPrecondition. The only write is one createVol, so
// there is nothing to undo: a reply lost on the way back is found by name
// on the retry.
func (cs *ControllerServer) CreateVolume(
	ctx context.Context, req *csi.CreateVolumeRequest,
) (*csi.CreateVolumeResponse, error) {
	plan, err := planCreate(req)
	if err != nil {
		return nil, toStatus(err)
	}
	unlock, err := cs.lock(plan.id.lockKey())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	c, err := cs.clusters.client(plan.params.Masters)
	if err != nil {
		return nil, toStatus(err)
	}
	size, err := cs.ensureVolume(ctx, c, plan)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      plan.id.String(),
		CapacityBytes: int64(size) * gib,
		VolumeContext: volumeContext(plan),
	}}, nil
}

// planCreate validates the request.
func planCreate(req *csi.CreateVolumeRequest) (*createPlan, error) {
	if req.GetName() == "" {
		return nil, fmt.Errorf("%w: name is required", ErrInvalidArgument)
	}
	if req.GetVolumeContentSource() != nil {
		return nil, fmt.Errorf("%w: chubaofs volumes cannot be created from a snapshot or volume",
			ErrInvalidArgument)
	}
	if err := access.Capabilities(false, req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	params, err := ParseVolumeParameters(req.GetParameters())
	if err != nil {
		return nil, err
	}
	owner, err := createOwner(params, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	size, err := capacityGiB(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	return &createPlan{
		id:     newVolumeID(backendName(req.GetName()), params.Masters),
		params: params, owner: owner, size: size, rng: req.GetCapacityRange(),
	}, nil
}

// ensureVolume makes the volume exist as planned and returns its quota.
func (cs *ControllerServer) ensureVolume(ctx context.Context, c *master.Client, plan *createPlan) (uint64, error) {
	logger := klog.FromContext(ctx).WithValues("volume", plan.id.Name)
	vol, err := c.GetVol(ctx, plan.id.Name)
	if err == nil {
		logger.V(4).Info("Volume exists, comparing")
		return vol.CapacityGiB, compatible(vol, plan)
	}
	if !errors.Is(err, master.ErrVolNotFound) {
		return 0, err
	}

	failpoint.Hit(fpCreateBeforeCreateVol)
	err = c.CreateVol(ctx, master.CreateRequest{
		Name: plan.id.Name, Owner: plan.owner, CapacityGiB: plan.size,
		VolType: plan.params.VolType, ZoneName: plan.params.ZoneName, CrossZone: plan.params.CrossZone,
	})
	failpoint.Hit(fpCreateAfterCreateVol)
	switch {
	case err == nil:
		logger.V(2).Info("Volume created", "capacityGiB", plan.size)
		return plan.size, nil
	case !errors.Is(err, master.ErrDuplicateVol):
		return 0, err
	}

	// Taken since we looked (a racing replica, or our own lost reply).
	if vol, err = c.GetVol(ctx, plan.id.Name); err != nil {
		if errors.Is(err, master.ErrVolNotFound) {
			return 0, fmt.Errorf("%w: name %q was taken and is gone again; retry", ErrInProgress, plan.id.Name)
		}
		return 0, err
	}
	return vol.CapacityGiB, compatible(vol, plan)
}

// compatible decides whether an existing volume is the one asked for.
func compatible(vol *master.Volume, plan *createPlan) error {
	p := plan.params
	switch {
	case vol.MarkedDeleted():
		return fmt.Errorf("%w: volume %q is marked for deletion; its name is free again only after "+
			"the master purges it", ErrBeingDeleted, vol.Name)
	case !vol.Owner.Equal(plan.owner):
		return fmt.Errorf("%w: volume %q exists with another owner", ErrNameConflict, vol.Name)
	case !fitsRange(vol.CapacityGiB, plan.rng):
		return fmt.Errorf("%w: volume %q exists with %d GiB, outside the requested range",
			ErrNameConflict, vol.Name, vol.CapacityGiB)
	case p.VolType != nil && *p.VolType != vol.VolType:
		return fmt.Errorf("%w: volume %q exists with volType %d", ErrNameConflict, vol.Name, vol.VolType)
	case p.ZoneName != "" && p.ZoneName != vol.ZoneName:
		return fmt.Errorf("%w: volume %q exists in zone %q", ErrNameConflict, vol.Name, vol.ZoneName)
	case p.CrossZone != nil && *p.CrossZone != vol.CrossZone:
		return fmt.Errorf("%w: volume %q exists with crossZone %t", ErrNameConflict, vol.Name, vol.CrossZone)
	}
	return nil
}

// volumeContext is what the node needs besides the ID: the masters in the
// order the StorageClass gave, and the client options. Never the owner.
func volumeContext(plan *createPlan) map[string]string {
	p := plan.params
	vc := map[string]string{
		ctxMasterAddr: strings.Join(p.Masters, ","),
		ctxVolName:    plan.id.Name,
	}
	if p.ConsulAddr != "" {
		vc[ctxConsulAddr] = p.ConsulAddr
	}
	if p.LogLevel != "" {
		vc[ctxLogLevel] = p.LogLevel
	}
	if p.Subdir != "" {
		vc[ctxSubdir] = p.Subdir
	}
	if p.ReadOnly {
		vc[ctxReadOnly] = strconv.FormatBool(true)
	}
	return vc
}
