package rbd

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// ValidateVolumeCapabilities confirms the capabilities (and parameters,
// when given) the volume supports; an unknown volume is NotFound.
func (cs *ControllerServer) ValidateVolumeCapabilities(
	ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest,
) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(missing("volume_id"))
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, toStatus(missing("volume_capabilities"))
	}
	id, err := DecodeVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(err)
	}

	if err := cs.requireVolume(ctx, id, req.GetSecrets()); err != nil {
		return nil, toStatus(err)
	}

	return access.Confirm(true, req, parseOnly), nil
}

// requireVolume fails with NotFound unless id names a finished volume.
func (cs *ControllerServer) requireVolume(ctx context.Context, id VolumeID, secrets map[string]string) error {
	s, err := cs.openSession(ctx, id.ClusterID, secrets)
	if err != nil {
		return err
	}
	defer s.close()
	ref, err := s.resolve(id)
	if err != nil {
		return err
	}
	return requireCommitted(ref)
}

// notFoundErr is the NotFound error for an image that does not exist.
func notFoundErr(ref imageRef) error {
	return fmt.Errorf("%w: %s %s (image %s/%s)", ref.id.notFound(), ref.id.Kind.noun(), ref.id, ref.pool, ref.id.Image)
}
