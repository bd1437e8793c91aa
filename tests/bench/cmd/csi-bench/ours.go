package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// ours drives a CSI plugin the way Kubernetes' sidecars and the kubelet do.
type ours struct {
	ctrl, node *csiclient.Client
	o          *Options
	capability *csi.VolumeCapability
	// Learned once from the plugin before the run.
	nodeID  string
	publish bool // controller has PUBLISH_UNPUBLISH_VOLUME
	stage   bool // node has STAGE_UNSTAGE_VOLUME
	workDir string
}

func newOurs(ctrl, node *csiclient.Client, o *Options) *ours {
	return &ours{
		ctrl:       ctrl,
		node:       node,
		o:          o,
		capability: csiclient.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, o.FsType),
		workDir:    filepath.Join(o.WorkDir, "ours"),
	}
}

func (s *ours) name() string { return sideOurs }

// discover asks the plugins what they need: the node ID for
// ControllerPublish, and whether publish and stage are used at all.
func (s *ours) discover(ctx context.Context, needNode bool) error {
	cc, err := s.ctrl.Controller.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("ControllerGetCapabilities: %w", err)
	}
	for _, c := range cc.GetCapabilities() {
		if c.GetRpc().GetType() == csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME {
			s.publish = true
		}
	}
	if !needNode {
		return nil
	}
	info, err := s.node.Node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetInfo: %w", err)
	}
	s.nodeID = info.GetNodeId()
	nc, err := s.node.Node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetCapabilities: %w", err)
	}
	for _, c := range nc.GetCapabilities() {
		if c.GetRpc().GetType() == csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME {
			s.stage = true
		}
	}
	return nil
}

func (s *ours) createVolume(ctx context.Context, name string) (*volume, error) {
	resp, err := s.ctrl.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: s.o.Size},
		VolumeCapabilities: []*csi.VolumeCapability{s.capability},
		Parameters:         s.o.Params,
		Secrets:            s.o.Secrets,
	})
	if err != nil {
		return nil, err
	}
	v := resp.GetVolume()
	return &volume{name: name, id: v.GetVolumeId(), volCtx: v.GetVolumeContext()}, nil
}

func (s *ours) deleteVolume(ctx context.Context, v *volume) error {
	_, err := s.ctrl.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{
		VolumeId: v.id,
		Secrets:  s.o.Secrets,
	})
	return err
}

func (s *ours) createSnapshot(ctx context.Context, v *volume, name string) (*snapshot, error) {
	resp, err := s.ctrl.Controller.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{
		SourceVolumeId: v.id,
		Name:           name,
		Parameters:     withoutPrefix(s.o.SnapParams, provisionerPrefix),
		Secrets:        s.o.Secrets,
	})
	if err != nil {
		return nil, err
	}
	return &snapshot{name: name, id: resp.GetSnapshot().GetSnapshotId(), source: v}, nil
}

func (s *ours) deleteSnapshot(ctx context.Context, sn *snapshot) error {
	_, err := s.ctrl.Controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{
		SnapshotId: sn.id,
		Secrets:    s.o.Secrets,
	})
	return err
}

func (s *ours) attachTimed() bool { return s.publish }

// attach is the attach/detach controller's ControllerPublish, when the
// plugin asks for it, and the directories the kubelet creates: the staging
// path itself and the parent of the target path.
func (s *ours) attach(ctx context.Context, v *volume) (*staged, error) {
	st := &staged{
		vol:         v,
		stagingPath: filepath.Join(s.workDir, v.name, "globalmount"),
		targetPath:  filepath.Join(s.workDir, v.name, "pod", "mount"),
	}
	if err := os.MkdirAll(st.stagingPath, 0o750); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(st.targetPath), 0o750); err != nil {
		return nil, err
	}
	if !s.publish {
		return st, nil
	}
	resp, err := s.ctrl.Controller.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId:         v.id,
		NodeId:           s.nodeID,
		VolumeCapability: s.capability,
		VolumeContext:    v.volCtx,
		Secrets:          s.o.Secrets,
	})
	if err != nil {
		return nil, err
	}
	st.publishContext = resp.GetPublishContext()
	return st, nil
}

func (s *ours) detach(ctx context.Context, st *staged) error {
	defer os.RemoveAll(filepath.Join(s.workDir, st.vol.name)) //nolint:errcheck // best effort
	if !s.publish {
		return nil
	}
	_, err := s.ctrl.Controller.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
		VolumeId: st.vol.id,
		NodeId:   s.nodeID,
		Secrets:  s.o.Secrets,
	})
	return err
}

// stagePublish is the kubelet's NodeStage then NodePublish.
func (s *ours) stagePublish(ctx context.Context, st *staged) (steps, error) {
	took := steps{}
	staging := ""
	if s.stage {
		staging = st.stagingPath
		start := time.Now()
		_, err := s.node.Node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
			VolumeId:          st.vol.id,
			PublishContext:    st.publishContext,
			StagingTargetPath: staging,
			VolumeCapability:  s.capability,
			Secrets:           s.o.Secrets,
			VolumeContext:     st.vol.volCtx,
		})
		took[stepNodeStage] = time.Since(start)
		if err != nil {
			return took, err
		}
	}
	start := time.Now()
	_, err := s.node.Node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId:          st.vol.id,
		PublishContext:    st.publishContext,
		StagingTargetPath: staging,
		TargetPath:        st.targetPath,
		VolumeCapability:  s.capability,
		Secrets:           s.o.Secrets,
		VolumeContext:     st.vol.volCtx,
	})
	took[stepNodePublish] = time.Since(start)
	return took, err
}

// unpublishUnstage is the kubelet's NodeUnpublish then NodeUnstage.
func (s *ours) unpublishUnstage(ctx context.Context, st *staged) (steps, error) {
	took := steps{}
	start := time.Now()
	_, err := s.node.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
		VolumeId:   st.vol.id,
		TargetPath: st.targetPath,
	})
	took[stepNodeUnpublish] = time.Since(start)
	if err != nil || !s.stage {
		return took, err
	}
	start = time.Now()
	_, err = s.node.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
		VolumeId:          st.vol.id,
		StagingTargetPath: st.stagingPath,
	})
	took[stepNodeUnstage] = time.Since(start)
	return took, err
}
