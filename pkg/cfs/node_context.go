package cfs

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// Where the owner in a client config came from.
const (
	ownerFromSecret = "secret"
	ownerFromMaster = "master"
)

// stagePlan is a validated NodeStageVolume request.
type stagePlan struct {
	volumeID    string
	id          volumeID
	stagingPath string
	rule        access.Rule
	mode        csi.VolumeCapability_AccessMode_Mode
	// masters in the order the client should try them.
	masters    []string
	consulAddr string
	logLevel   string
	subdir     string
	readOnly   bool
}

// planStage validates the request and its volume context. The context is
// untrusted (a static PV can say anything): only the keys CreateVolume
// writes are accepted, each validated like the StorageClass parameter.
func planStage(req *csi.NodeStageVolumeRequest) (*stagePlan, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, fmt.Errorf("%w: volume_id is required", ErrInvalidArgument)
	case req.GetStagingTargetPath() == "":
		return nil, fmt.Errorf("%w: staging_target_path is required", ErrInvalidArgument)
	case req.GetVolumeCapability() == nil:
		return nil, fmt.Errorf("%w: volume_capability is required", ErrInvalidArgument)
	}
	if err := checkPaths("staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	rule, _, err := access.Capability(false, req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	vc, err := parseStageContext(req.GetVolumeContext(), id.Name)
	if err != nil {
		return nil, err
	}
	masters, err := stageMasters(id, vc.Masters, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	return &stagePlan{
		volumeID: req.GetVolumeId(), id: id, stagingPath: req.GetStagingTargetPath(),
		rule: rule, mode: req.GetVolumeCapability().GetAccessMode().GetMode(), masters: masters,
		consulAddr: vc.ConsulAddr, logLevel: vc.LogLevel, subdir: vc.Subdir,
		readOnly: rule.ReadOnly || vc.ReadOnly,
	}, nil
}

// parseStageContext accepts the keys volumeContext writes; keys of the
// Kubernetes sidecars are ignored, anything else is refused.
func parseStageContext(vc map[string]string, volName string) (*VolumeParameters, error) {
	p := &VolumeParameters{}
	for _, key := range sortedKeys(vc) {
		var err error
		switch key {
		case ctxMasterAddr, ctxConsulAddr, ctxLogLevel, ctxSubdir, ctxReadOnly:
			err = p.set(key, vc[key])
		case ctxVolName:
			if vc[key] != volName {
				err = fmt.Errorf("volume context %q is %q, the volume ID names %q", key, vc[key], volName)
			}
		default:
			if !isReserved(key) {
				err = fmt.Errorf("unknown volume context key %q", key)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
	}
	return p, nil
}

// stageMasters picks the masters for the client: the context's list (in
// its order) if it is the ID's cluster, else the ID's own list, else the
// secret's masterAddr for an ID that names its masters by hash.
func stageMasters(id volumeID, fromContext []string, secrets map[string]string) ([]string, error) {
	candidates := [][]string{fromContext, id.Masters}
	if list, ok := secrets[secretMasterAddr]; ok {
		fromSecret, err := parseMasters(list)
		if err != nil {
			return nil, fmt.Errorf("%w: secret: %w", ErrInvalidArgument, err)
		}
		candidates = append(candidates, fromSecret)
	}
	for _, m := range candidates {
		if m == nil {
			continue
		}
		if clusterKey(canonicalMasters(m)) != id.Cluster {
			return nil, fmt.Errorf("%w: masterAddr %v is not the cluster of volume %q",
				ErrInvalidArgument, m, id.Name)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: volume ID %q names its masters by hash: give %s in the volume context "+
		"or the node-stage secret", ErrInvalidArgument, id.String(), secretMasterAddr)
}

// stageOwner is the owner the client mounts with: the node-stage secret's,
// else the one the master reports for the volume.
func (ns *NodeServer) stageOwner(
	ctx context.Context, plan *stagePlan, secrets map[string]string,
) (master.Owner, string, error) {
	owner, inSecret, err := ownerFromSecrets(secrets)
	if err != nil || inSecret {
		return owner, ownerFromSecret, err
	}
	c, err := ns.clusters.client(plan.masters)
	if err != nil {
		return master.Owner{}, "", err
	}
	vol, err := c.GetVol(ctx, plan.id.Name)
	if err != nil {
		return master.Owner{}, "", err
	}
	if vol.MarkedDeleted() {
		return master.Owner{}, "", fmt.Errorf("%w: volume %q is marked for deletion", ErrVolumeNotFound, vol.Name)
	}
	return vol.Owner, ownerFromMaster, nil
}
