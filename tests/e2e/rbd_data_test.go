package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// nodeCalls are the kubelet's calls for one volume on one node.
type nodeCalls struct {
	t       *testing.T
	c       *csiclient.Client
	volume  *csi.Volume
	cap     *csi.VolumeCapability
	secrets map[string]string
	staging string
	target  string
}

func (n *nodeCalls) stagePublish(readOnly bool) {
	n.t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(n.staging, 0o750); err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.c.Node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: n.volume.GetVolumeId(), StagingTargetPath: n.staging, VolumeCapability: n.cap,
		VolumeContext: n.volume.GetVolumeContext(), Secrets: n.secrets,
	}); err != nil {
		n.t.Fatalf("NodeStageVolume: %v", err)
	}
	if _, err := n.c.Node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: n.volume.GetVolumeId(), StagingTargetPath: n.staging, TargetPath: n.target,
		VolumeCapability: n.cap, VolumeContext: n.volume.GetVolumeContext(), Readonly: readOnly,
		Secrets: n.secrets,
	}); err != nil {
		n.t.Fatalf("NodePublishVolume: %v", err)
	}
}

func (n *nodeCalls) unpublishUnstage() {
	n.t.Helper()
	ctx := context.Background()
	if _, err := n.c.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
		VolumeId: n.volume.GetVolumeId(), TargetPath: n.target}); err != nil {
		n.t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := n.c.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
		VolumeId: n.volume.GetVolumeId(), StagingTargetPath: n.staging}); err != nil {
		n.t.Fatalf("NodeUnstageVolume: %v", err)
	}
}

// TestRBDBlockBytesOnImage writes a random pattern through the published
// raw block device and reads the same bytes straight from the RBD image
// with `rbd export`, after the node let go of it.
func TestRBDBlockBytesOnImage(t *testing.T) {
	env := needCeph(t)
	dir := t.TempDir()
	before := env.inventory(t)
	p := startPlugin(t, dir, "node-a", nil, env.rbdArgs(t, dir, "all", "node-a")...)
	ctx := context.Background()
	blockCap := csiclient.BlockCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	vol, err := p.client.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: fmt.Sprintf("e2e-block-%d", time.Now().UnixNano()), CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{blockCap}, Parameters: env.params(), Secrets: env.secrets(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &nodeCalls{t: t, c: p.client, volume: vol.GetVolume(), cap: blockCap, secrets: env.secrets(t),
		staging: filepath.Join(dir, "staging"), target: filepath.Join(dir, "pod", "dev")}
	n.stagePublish(false)

	pattern := make([]byte, 1<<20)
	if _, err := rand.Read(pattern); err != nil {
		t.Fatal(err)
	}
	writeDevice(t, n.target, 4<<20, pattern)
	n.unpublishUnstage()

	image := imageOf(t, env, vol.GetVolume().GetVolumeId(), before)
	exported := filepath.Join(dir, "export.img")
	env.run(t, "rbd", "export", env.pool+"/"+image, exported)
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if got := data[4<<20 : 5<<20]; !bytes.Equal(got, pattern) {
		t.Fatalf("bytes on the image at 4 MiB differ from what the pod wrote")
	}
	if _, err := p.client.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{
		VolumeId: vol.GetVolume().GetVolumeId(), Secrets: env.secrets(t)}); err != nil {
		t.Fatal(err)
	}
	assertSameInventory(t, env, before)
}

func writeDevice(t *testing.T, path string, offset int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, offset); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// imageOf finds the one image the test created.
func imageOf(t *testing.T, env cephEnv, volID string, before poolObjects) string {
	t.Helper()
	images := diff(env.inventory(t).Images, before.Images)
	if len(images) != 1 {
		t.Fatalf("want exactly one new image for %s, pool has %v", volID, images)
	}
	return images[0]
}

// TestRBDFilesystemMovesBetweenNodes writes a file on node A, unstages,
// stages on node B (another plugin process) and reads it: the data lives on
// the image, not on a node's disk. Then expands online on B and checks df.
func TestRBDFilesystemMovesBetweenNodes(t *testing.T) {
	env := needCeph(t)
	dir := t.TempDir()
	before := env.inventory(t)
	a := startPlugin(t, dir, "node-a", nil, env.rbdArgs(t, dir, "all", "node-a")...)
	b := startPlugin(t, dir, "node-b", nil, env.rbdArgs(t, dir, "node", "node-b")...)
	ctx := context.Background()
	// xfs: ext4 grows online only with CAP_SYS_RESOURCE, which CI lacks.
	params := env.params()
	params["csi.storage.k8s.io/fstype"] = "xfs"
	rwoXFS := csiclient.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "xfs")
	vol, err := a.client.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: fmt.Sprintf("e2e-fs-%d", time.Now().UnixNano()), CapacityRange: &csi.CapacityRange{RequiredBytes: gib},
		VolumeCapabilities: []*csi.VolumeCapability{rwoXFS}, Parameters: params, Secrets: env.secrets(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	onA := &nodeCalls{t: t, c: a.client, volume: vol.GetVolume(), cap: rwoXFS, secrets: env.secrets(t),
		staging: filepath.Join(dir, "a", "staging"), target: filepath.Join(dir, "a", "pod")}
	onA.stagePublish(false)
	want := []byte("moved between nodes\n")
	if err := os.WriteFile(filepath.Join(onA.target, "data.txt"), want, 0o600); err != nil {
		t.Fatal(err)
	}
	onA.unpublishUnstage()

	onB := &nodeCalls{t: t, c: b.client, volume: vol.GetVolume(), cap: rwoXFS, secrets: env.secrets(t),
		staging: filepath.Join(dir, "b", "staging"), target: filepath.Join(dir, "b", "pod")}
	onB.stagePublish(false)
	got, err := os.ReadFile(filepath.Join(onB.target, "data.txt"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("node B read %q, %v; want %q", got, err, want)
	}
	expandOnline(t, a.client, onB, 2*gib)
	onB.unpublishUnstage()

	if _, err := a.client.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{
		VolumeId: vol.GetVolume().GetVolumeId(), Secrets: env.secrets(t)}); err != nil {
		t.Fatal(err)
	}
	assertSameInventory(t, env, before)
}

func expandOnline(t *testing.T, ctrl *csiclient.Client, n *nodeCalls, size int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := ctrl.Controller.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId: n.volume.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: size},
		VolumeCapability: n.cap, Secrets: n.secrets}); err != nil {
		t.Fatalf("ControllerExpandVolume: %v", err)
	}
	if _, err := n.c.Node.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{
		VolumeId: n.volume.GetVolumeId(), VolumePath: n.target, StagingTargetPath: n.staging,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: n.cap}); err != nil {
		t.Fatalf("NodeExpandVolume: %v", err)
	}
	out, err := exec.Command("df", "--output=size", "-B1", n.target).Output()
	if err != nil {
		t.Fatal(err)
	}
	var fsSize int64
	if _, err := fmt.Sscanf(string(bytes.Split(out, []byte("\n"))[1]), "%d", &fsSize); err != nil {
		t.Fatalf("df output %q: %v", out, err)
	}
	// ext4 keeps some blocks for metadata: 90% of the new size is plenty to
	// tell a grown filesystem (about 2 GiB) from the old one (about 1 GiB).
	if fsSize < size*9/10 {
		t.Fatalf("filesystem is %d bytes after expanding to %d", fsSize, size)
	}
}
