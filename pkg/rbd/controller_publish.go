package rbd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// ControllerPublish refuses a node that never registered in the volume's
// pool (NotFound, registry.go), then records the attachment as image metadata
// "tkestor.csi/attached.<nodeID>" = "<access mode>,<rw|ro>". A second node
// for a single-node mode (or a single-node publish next to any other node)
// is FailedPrecondition; the same node with other arguments is
// AlreadyExists. The node side enforces the same rules again at stage time
// with the hold lock on the image (hold.go); this record is what the CO's attach
// bookkeeping adds on top, and DeleteVolume refuses while one exists.

// attachment is one recorded publish.
type attachment struct {
	mode     csi.VolumeCapability_AccessMode_Mode
	readOnly bool
}

func (a attachment) String() string {
	rw := "rw"
	if a.readOnly {
		rw = "ro"
	}
	return a.mode.String() + "," + rw
}

func (a attachment) singleNode() bool {
	rule, err := access.Mode(access.RBDBlock, a.mode)
	return err != nil || rule.SingleNode
}

// parseAttachment reads a recorded value; garbage counts as single-node.
func parseAttachment(value string) attachment {
	mode, rw, _ := strings.Cut(value, ",")
	m, ok := csi.VolumeCapability_AccessMode_Mode_value[mode]
	if !ok {
		return attachment{mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, readOnly: rw == "ro"}
	}
	return attachment{mode: csi.VolumeCapability_AccessMode_Mode(m), readOnly: rw == "ro"}
}

// attachedNodes lists the nodes recorded in an image's metadata.
func attachedNodes(meta map[string]string) []string {
	var nodes []string
	for key := range meta {
		if node, ok := strings.CutPrefix(key, metaAttachedPrefix); ok {
			nodes = append(nodes, node)
		}
	}
	sort.Strings(nodes)
	return nodes
}

// ControllerPublishVolume records that node may use the volume.
func (cs *ControllerServer) ControllerPublishVolume(
	ctx context.Context, req *csi.ControllerPublishVolumeRequest,
) (*csi.ControllerPublishVolumeResponse, error) {
	want, id, err := validatePublish(req)
	if err != nil {
		return nil, toStatus(err)
	}

	key := imageRef{id: id}.lockKey()
	if err := cs.tryLock("ControllerPublishVolume "+id.String(), key); err != nil {
		return nil, toStatus(err)
	}
	defer cs.locks.Release(key)

	err = cs.withImage(ctx, id, req.GetSecrets(), "ControllerPublishVolume", func(ref imageRef, info imageInfo) error {
		if info.state != stateCommitted {
			return notFoundErr(ref)
		}
		if err := checkNodeRegistered(ref, req.GetNodeId()); err != nil {
			return err
		}
		if err := checkPublish(info.metadata, req.GetNodeId(), want); err != nil {
			return err
		}
		return setMetadata(ref, metaAttachedPrefix+req.GetNodeId(), want.String())
	})
	if err != nil {
		return nil, toStatus(err)
	}
	klog.FromContext(ctx).V(2).Info("Published", "volumeID", id.String(), "nodeID", req.GetNodeId(), "mode", want)
	return &csi.ControllerPublishVolumeResponse{}, nil
}

func validatePublish(req *csi.ControllerPublishVolumeRequest) (attachment, VolumeID, error) {
	switch {
	case req.GetVolumeId() == "":
		return attachment{}, VolumeID{}, missing("volume_id")
	case req.GetNodeId() == "":
		return attachment{}, VolumeID{}, missing("node_id")
	case req.GetVolumeCapability() == nil:
		return attachment{}, VolumeID{}, missing("volume_capability")
	}
	rule, _, err := access.Capability(true, req.GetVolumeCapability())
	if err != nil {
		return attachment{}, VolumeID{}, err
	}
	id, err := DecodeVolumeID(req.GetVolumeId())
	if err != nil {
		return attachment{}, VolumeID{}, err
	}
	mode := req.GetVolumeCapability().GetAccessMode().GetMode()
	return attachment{mode: mode, readOnly: req.GetReadonly() || rule.ReadOnly}, id, nil
}

// checkPublish applies the multi-attach rules to the recorded attachments.
func checkPublish(meta map[string]string, node string, want attachment) error {
	for _, other := range attachedNodes(meta) {
		have := parseAttachment(meta[metaAttachedPrefix+other])
		switch {
		case other == node && have == want:
			return nil
		case other == node:
			return fmt.Errorf("%w: volume is published to node %q as %s, requested %s",
				ErrPublishConflict, node, have, want)
		case want.singleNode() || have.singleNode():
			return fmt.Errorf("%w: volume is published to node %q as %s; %s allows one node",
				ErrInUse, other, have, modeName(want, have))
		}
	}
	return nil
}

func modeName(want, have attachment) string {
	if want.singleNode() {
		return want.mode.String()
	}
	return have.mode.String()
}

// ControllerUnpublishVolume drops the record; anything missing is success.
func (cs *ControllerServer) ControllerUnpublishVolume(
	ctx context.Context, req *csi.ControllerUnpublishVolumeRequest,
) (*csi.ControllerUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, toStatus(missing("volume_id"))
	}
	id, err := DecodeVolumeID(req.GetVolumeId())
	if err != nil {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}

	key := imageRef{id: id}.lockKey()
	if err := cs.tryLock("ControllerUnpublishVolume "+id.String(), key); err != nil {
		return nil, toStatus(err)
	}
	defer cs.locks.Release(key)

	err = cs.withImage(ctx, id, req.GetSecrets(), "ControllerUnpublishVolume", func(ref imageRef, info imageInfo) error {
		return removeAttachments(ref, info, req.GetNodeId())
	})
	if err != nil && !errors.Is(err, ErrVolumeNotFound) {
		return nil, toStatus(err)
	}
	klog.FromContext(ctx).V(2).Info("Unpublished", "volumeID", id.String(), "nodeID", req.GetNodeId())
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// removeAttachments drops node's record, or every record when node is "".
func removeAttachments(ref imageRef, info imageInfo, node string) error {
	if info.state == stateMissing {
		return nil
	}
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	for _, other := range attachedNodes(info.metadata) {
		if node != "" && other != node {
			continue
		}
		if err := img.RemoveMetadata(metaAttachedPrefix + other); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove attachment of node %q: %w", other, err)
		}
	}
	return nil
}

// withImage opens a session, resolves id, takes its backend lease and
// runs fn with what inspect found.
func (cs *ControllerServer) withImage(
	ctx context.Context, id VolumeID, secrets map[string]string, opName string,
	fn func(ref imageRef, info imageInfo) error,
) (err error) {
	defer cs.observe(opName, time.Now(), &err)
	s, err := cs.openSession(ctx, id.ClusterID, secrets)
	if err != nil {
		return err
	}
	defer s.close()
	ref, err := s.resolve(id)
	if err != nil {
		return err
	}
	ls, err := cs.lease(s, opName, ref)
	if err != nil {
		return err
	}
	defer ls.release()
	info, err := inspect(ref)
	if err != nil {
		return err
	}
	if err := ls.check(); err != nil {
		return err
	}
	return fn(ref, info)
}
