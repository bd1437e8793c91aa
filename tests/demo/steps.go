package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

const (
	gib      = int64(1) << 30
	fileName = "hello.txt"
	message  = "written by the tkestor-csi demo\n"
)

type demo struct {
	cfg     config
	c       *csiclient.Client
	params  map[string]string
	secrets map[string]string
	step    int
}

// say prints one numbered step.
func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n==> %2d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) capability() *csi.VolumeCapability {
	return csiclient.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "")
}

// lifecycle is the demo: one volume from birth to deletion.
func (d *demo) lifecycle(ctx context.Context) error {
	vol, err := d.create(ctx, "demo-volume", 1*gib, nil)
	if err != nil {
		return err
	}
	paths, err := d.attach(ctx, vol, "volume")
	if err != nil {
		return err
	}
	if err := d.writeAndRead(paths.target); err != nil {
		return err
	}
	if err := d.expand(ctx, vol, paths, 2*gib); err != nil {
		return err
	}
	if d.cfg.driver == "rbd" {
		if err := d.snapshotAndRestore(ctx, vol); err != nil {
			return err
		}
	}
	if err := d.detach(ctx, vol, paths); err != nil {
		return err
	}
	d.say("DeleteVolume %s", vol.GetVolumeId())
	_, err = d.c.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{
		VolumeId: vol.GetVolumeId(), Secrets: d.secrets})
	return err
}

func (d *demo) create(
	ctx context.Context, name string, size int64, source *csi.VolumeContentSource,
) (*csi.Volume, error) {
	d.say("CreateVolume name=%s size=%d GiB", name, size/gib)
	resp, err := d.c.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:                name,
		CapacityRange:       &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities:  []*csi.VolumeCapability{d.capability()},
		Parameters:          d.params,
		Secrets:             d.secrets,
		VolumeContentSource: source,
	})
	if err != nil {
		return nil, err
	}
	vol := resp.GetVolume()
	fmt.Printf("    volume_id=%s capacity=%d bytes\n", vol.GetVolumeId(), vol.GetCapacityBytes())
	return vol, nil
}

type volPaths struct {
	staging, target string
	publishContext  map[string]string
}

// attach does what the attach/detach controller and the kubelet do before a
// pod starts: ControllerPublish, NodeStage, NodePublish.
func (d *demo) attach(ctx context.Context, vol *csi.Volume, tag string) (volPaths, error) {
	p := volPaths{
		staging: filepath.Join(d.cfg.workDir, tag, "globalmount"),
		target:  filepath.Join(d.cfg.workDir, tag, "pod", "mount"),
	}
	d.say("ControllerPublishVolume to node %s", d.cfg.nodeID)
	pub, err := d.c.Controller.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), NodeId: d.cfg.nodeID, VolumeCapability: d.capability(),
		VolumeContext: vol.GetVolumeContext(), Secrets: d.secrets,
	})
	if err != nil {
		return p, err
	}
	p.publishContext = pub.GetPublishContext()
	if err := os.MkdirAll(p.staging, 0o750); err != nil {
		return p, err
	}
	d.say("NodeStageVolume at %s", p.staging)
	if _, err := d.c.Node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: p.staging, VolumeCapability: d.capability(),
		PublishContext: p.publishContext, VolumeContext: vol.GetVolumeContext(), Secrets: d.secrets,
	}); err != nil {
		return p, err
	}
	showMount(p.staging)
	d.say("NodePublishVolume to the pod path %s", p.target)
	if _, err := d.c.Node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: p.staging, TargetPath: p.target,
		VolumeCapability: d.capability(), PublishContext: p.publishContext,
		VolumeContext: vol.GetVolumeContext(), Secrets: d.secrets,
	}); err != nil {
		return p, err
	}
	showMount(p.target)
	return p, nil
}

func (d *demo) writeAndRead(target string) error {
	path := filepath.Join(target, fileName)
	d.say("Write %s in the pod path, sync, read it back", fileName)
	if err := os.WriteFile(path, []byte(message), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("sync", "-f", path).CombinedOutput(); err != nil {
		return fmt.Errorf("sync: %v: %s", err, out)
	}
	return readBack(path)
}

func readBack(path string) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, []byte(message)) {
		return fmt.Errorf("read %q from %s, want %q", got, path, message)
	}
	fmt.Printf("    read back: %s", got)
	return nil
}

func (d *demo) expand(ctx context.Context, vol *csi.Volume, p volPaths, size int64) error {
	df(p.target)
	d.say("ControllerExpandVolume to %d GiB while mounted", size/gib)
	resp, err := d.c.Controller.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId: vol.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: size},
		VolumeCapability: d.capability(), Secrets: d.secrets,
	})
	if err != nil {
		return err
	}
	if resp.GetNodeExpansionRequired() {
		d.say("NodeExpandVolume (online filesystem resize)")
		if _, err := d.c.Node.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{
			VolumeId: vol.GetVolumeId(), VolumePath: p.target, StagingTargetPath: p.staging,
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: d.capability(),
			Secrets: d.secrets,
		}); err != nil {
			return err
		}
	}
	waitForSize(p.target, size)
	df(p.target)
	return nil
}

// waitForSize gives a FUSE client a few seconds to show the new capacity:
// it refreshes what statfs reports on a timer, not on expand.
func waitForSize(path string, size int64) {
	for i := 0; i < 50; i++ {
		var st syscall.Statfs_t
		if syscall.Statfs(path, &st) == nil && int64(st.Blocks)*st.Bsize >= size*9/10 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *demo) detach(ctx context.Context, vol *csi.Volume, p volPaths) error {
	d.say("NodeUnpublishVolume %s", p.target)
	if _, err := d.c.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), TargetPath: p.target}); err != nil {
		return err
	}
	d.say("NodeUnstageVolume %s", p.staging)
	if _, err := d.c.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: p.staging}); err != nil {
		return err
	}
	d.say("ControllerUnpublishVolume from node %s", d.cfg.nodeID)
	_, err := d.c.Controller.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), NodeId: d.cfg.nodeID, Secrets: d.secrets})
	return err
}

func showMount(path string) {
	out, _ := exec.Command("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "--target", path).Output()
	fmt.Printf("    mounted: %s", out)
}

func df(path string) {
	out, _ := exec.Command("df", "-h", path).Output()
	fmt.Printf("    df -h:\n      %s", strings.ReplaceAll(string(out), "\n", "\n      "))
	fmt.Println()
}
