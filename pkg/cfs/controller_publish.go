package cfs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// ControllerPublish has nothing to attach: a ChubaoFS volume is mounted by
// the node's FUSE client. Publishing is advertised so that Kubernetes keeps
// VolumeAttachment objects (the durable record of which node uses which
// volume) and its attach/detach controller refuses a second node for a
// ReadWriteOnce volume. The driver's own single-node guard is the claim
// NodeStage takes, not anything here.
//
// publishTable remembers, in memory only, what this process published,
// to answer a repeated publish to the same node with different options
// with AlreadyExists. It is not durable and is never used to refuse a
// second node: after a restart or a leader change it starts empty, and a
// stale entry must not block a volume.
type publishTable struct {
	mu      sync.Mutex
	entries map[string]map[string]publishEntry // volume lock key -> node -> entry
}

type publishEntry struct {
	readOnly bool
	mode     csi.VolumeCapability_AccessMode_Mode
}

func newPublishTable() *publishTable {
	return &publishTable{entries: map[string]map[string]publishEntry{}}
}

// record notes a publish; a different one to the same node is a conflict.
func (t *publishTable) record(vol, node string, e publishEntry) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	nodes := t.entries[vol]
	if nodes == nil {
		nodes = map[string]publishEntry{}
		t.entries[vol] = nodes
	}
	if old, ok := nodes[node]; ok && old != e {
		return fmt.Errorf("%w: already published to node %q with other options", ErrNameConflict, node)
	}
	nodes[node] = e
	return nil
}

// remove forgets one node's publish, or every node's when node is empty.
func (t *publishTable) remove(vol, node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if node == "" {
		delete(t.entries, vol)
		return
	}
	delete(t.entries[vol], node)
	if len(t.entries[vol]) == 0 {
		delete(t.entries, vol)
	}
}

// forget drops a deleted volume.
func (t *publishTable) forget(vol string) { t.remove(vol, "") }

// ControllerPublishVolume checks that the volume exists on the master and
// the capability is supported, and answers. In "all" mode the plugin's own
// node is the only node there is, so another node ID is NotFound; the
// controller of a cluster cannot know its nodes and accepts any ID.
func (cs *ControllerServer) ControllerPublishVolume(
	ctx context.Context, req *csi.ControllerPublishVolumeRequest,
) (*csi.ControllerPublishVolumeResponse, error) {
	id, entry, err := cs.validatePublish(req)
	if err != nil {
		return nil, toStatus(err)
	}
	unlock, err := cs.lock(id.lockKey())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()

	if err := cs.checkLive(ctx, id, req.GetSecrets(), req.GetVolumeContext()); err != nil {
		return nil, toStatus(err)
	}
	if err := cs.published.record(id.lockKey(), req.GetNodeId(), entry); err != nil {
		return nil, toStatus(err)
	}
	return &csi.ControllerPublishVolumeResponse{}, nil
}

// validatePublish checks the request fields.
func (cs *ControllerServer) validatePublish(req *csi.ControllerPublishVolumeRequest) (volumeID, publishEntry, error) {
	switch {
	case req.GetVolumeId() == "":
		return volumeID{}, publishEntry{}, fmt.Errorf("%w: volume_id is required", ErrInvalidArgument)
	case req.GetNodeId() == "":
		return volumeID{}, publishEntry{}, fmt.Errorf("%w: node_id is required", ErrInvalidArgument)
	case req.GetVolumeCapability() == nil:
		return volumeID{}, publishEntry{}, fmt.Errorf("%w: volume_capability is required", ErrInvalidArgument)
	}
	if _, _, err := access.Capability(false, req.GetVolumeCapability()); err != nil {
		return volumeID{}, publishEntry{}, err
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return volumeID{}, publishEntry{}, fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	if cs.opts.Mode.Node() && req.GetNodeId() != cs.opts.NodeID {
		return volumeID{}, publishEntry{}, fmt.Errorf("%w: node %q is not this plugin's node", ErrVolumeNotFound,
			req.GetNodeId())
	}
	entry := publishEntry{readOnly: req.GetReadonly(), mode: req.GetVolumeCapability().GetAccessMode().GetMode()}
	return id, entry, nil
}

// checkLive asks the master that the volume exists and is not being
// deleted (a volume marked for deletion cannot be mounted any more).
func (cs *ControllerServer) checkLive(
	ctx context.Context, id volumeID, secrets, volCtx map[string]string,
) error {
	c, err := cs.clusters.forID(id, withContextMasters(secrets, volCtx))
	if err != nil {
		return err
	}
	vol, err := c.GetVol(ctx, id.Name)
	if err != nil {
		return err
	}
	if vol.MarkedDeleted() {
		return fmt.Errorf("%w: volume %q is marked for deletion", ErrVolumeNotFound, id.Name)
	}
	return nil
}

// withContextMasters lets a hashed ID be resolved from the volume
// context's masterAddr when the secret has none.
func withContextMasters(secrets, volCtx map[string]string) map[string]string {
	if _, ok := secrets[secretMasterAddr]; ok || volCtx[ctxMasterAddr] == "" {
		return secrets
	}
	merged := map[string]string{secretMasterAddr: volCtx[ctxMasterAddr]}
	for k, v := range secrets {
		merged[k] = v
	}
	return merged
}

// ControllerUnpublishVolume forgets the publish; there is nothing to detach.
func (cs *ControllerServer) ControllerUnpublishVolume(
	_ context.Context, req *csi.ControllerUnpublishVolumeRequest,
) (*csi.ControllerUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(fmt.Errorf("%w: volume_id is required", ErrInvalidArgument))
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	unlock, err := cs.lock(id.lockKey())
	if err != nil {
		return nil, toStatus(err)
	}
	defer unlock()
	cs.published.remove(id.lockKey(), req.GetNodeId())
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms capabilities and parameters the
// driver supports for an existing volume.
func (cs *ControllerServer) ValidateVolumeCapabilities(
	ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest,
) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" || len(req.GetVolumeCapabilities()) == 0 {
		return nil, toStatus(fmt.Errorf("%w: volume_id and volume_capabilities are required", ErrInvalidArgument))
	}
	id, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("%w: %w", ErrVolumeNotFound, err))
	}
	err = cs.checkLive(ctx, id, req.GetSecrets(), req.GetVolumeContext())
	if errors.Is(err, master.ErrVolNotFound) {
		err = fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	if err != nil {
		return nil, toStatus(err)
	}

	return access.Confirm(false, req, parseOnly), nil
}
