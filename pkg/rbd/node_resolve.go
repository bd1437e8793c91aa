package rbd

import (
	"context"
	"fmt"
	"strings"
)

// contextResolver resolves a stage request with the driver's own rules:
// the volume ID names cluster and image, the volume context the pool and
// how to present the image, the cluster config the monitors, the secrets
// the cephx user.
type contextResolver struct {
	clusters *clusterConfig
}

func newVolumeResolver(opts Options) (volumeResolver, error) {
	return &contextResolver{clusters: newClusterConfig(opts.ClusterConfig)}, nil
}

// checkID implements volumeResolver.
func (r *contextResolver) checkID(volumeID string) error {
	_, err := DecodeVolumeID(volumeID)
	return err
}

// resolve implements volumeResolver.
func (r *contextResolver) resolve(
	_ context.Context, volumeID string, volCtx, secrets map[string]string,
) (*stageSpec, error) {
	id, err := DecodeVolumeID(volumeID)
	if err != nil {
		return nil, err
	}
	vc, err := ParseVolumeContext(volCtx)
	if err != nil {
		return nil, err
	}
	if vc.ClusterID != "" && vc.ClusterID != id.ClusterID {
		return nil, fmt.Errorf("%w: volume context names cluster %q, the volume ID %q",
			ErrInvalidParam, vc.ClusterID, id.ClusterID)
	}
	if vc.ImageName != "" && vc.ImageName != id.Image {
		return nil, fmt.Errorf("%w: volume context names image %q, the volume ID %q",
			ErrInvalidParam, vc.ImageName, id.Image)
	}
	if vc.Pool == "" {
		// TODO: look the pool name up by the ID's pool ID; until then a
		// static PV must carry the pool in its volume attributes.
		return nil, fmt.Errorf("%w: volume context has no %q", ErrMissingField, VolCtxPool)
	}
	info, err := r.clusters.lookup(id.ClusterID)
	if err != nil {
		return nil, err
	}
	creds, err := CredentialsFromSecrets(secrets)
	if err != nil {
		return nil, err
	}
	return &stageSpec{
		ClusterID: id.ClusterID, Monitors: info.Monitors,
		Pool: vc.Pool, Image: id.Image,
		User: creds.ID, Key: Secret(creds.Key),
		FsType: vc.FsType, Mounter: vc.Mounter,
		MkfsOptions: strings.Fields(vc.MkfsOptions),
		MapOptions:  splitList(vc.MapOptions),
	}, nil
}

// splitList splits a comma-separated option list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
