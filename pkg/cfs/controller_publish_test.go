package cfs

import (
	"context"
	"fmt"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

func TestControllerPublish(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeAll) // the plugin's node is node-a
	ctx := context.Background()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-pub", tc.params(), gi))
	if err != nil {
		t.Fatal(err)
	}
	id := vol.Volume.VolumeId
	rwo := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	pub := func(vid, node string, ro bool) error {
		_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: vid, NodeId: node, VolumeCapability: rwo, Readonly: ro})
		return err
	}

	if err := pub(id, "node-a", false); err != nil {
		t.Fatal(err)
	}
	if err := pub(id, "node-a", false); err != nil {
		t.Fatalf("same publish again: %v", err)
	}
	wantCode(t, pub(id, "node-a", true), codes.AlreadyExists)
	wantCode(t, pub(id, "node-b", false), codes.NotFound)
	wantCode(t, pub("fake-vol-id", "node-a", false), codes.NotFound)
	wantCode(t, pub(newVolumeID("tkestor-gone", []string{tc.addr}).String(), "node-a", false), codes.NotFound)
	wantCode(t, pub("", "node-a", false), codes.InvalidArgument)
	wantCode(t, pub(id, "", false), codes.InvalidArgument)

	if _, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
		VolumeId: id, NodeId: "node-a"}); err != nil {
		t.Fatal(err)
	}
	if err := pub(id, "node-a", true); err != nil {
		t.Fatalf("publish after unpublish: %v", err)
	}
	if _, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
		VolumeId: "fake-vol-id", NodeId: "node-a"}); err != nil {
		t.Fatalf("unpublish of a garbage ID: %v", err)
	}

	// A controller-only plugin cannot know the nodes and accepts any.
	only := newTestController(t, server.ModeController)
	if _, err := only.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: id, NodeId: "node-b", VolumeCapability: rwo}); err != nil {
		t.Fatalf("controller mode: %v", err)
	}
}

func TestValidateVolumeCapabilities(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-val", tc.params(), gi))
	if err != nil {
		t.Fatal(err)
	}
	validate := func(id string, caps ...*csi.VolumeCapability) (*csi.ValidateVolumeCapabilitiesResponse, error) {
		return cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
			VolumeId: id, VolumeCapabilities: caps, VolumeContext: vol.Volume.VolumeContext})
	}
	resp, err := validate(vol.Volume.VolumeId, rwx())
	if err != nil || resp.Confirmed == nil {
		t.Fatalf("validate = %v, %v", resp, err)
	}
	block := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	if resp, err := validate(vol.Volume.VolumeId, block); err != nil || resp.Confirmed != nil || resp.Message == "" {
		t.Fatalf("block = %v, %v; want unconfirmed", resp, err)
	}
	_, err = validate("fake-vol-id", rwx())
	wantCode(t, err, codes.NotFound)
	_, err = validate(newVolumeID("tkestor-gone", []string{tc.addr}).String(), rwx())
	wantCode(t, err, codes.NotFound)
	_, err = validate(vol.Volume.VolumeId)
	wantCode(t, err, codes.InvalidArgument)
}

func TestListVolumes(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{PurgeAfter: 1 << 40})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()

	empty, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil || len(empty.Entries) != 0 {
		t.Fatalf("before any request = %v, %v", empty, err)
	}
	ids := map[string]bool{}
	for i := 0; i < 5; i++ {
		v, err := cs.CreateVolume(ctx, createReq(fmt.Sprintf("pvc-l%d", i), tc.params(), gi))
		if err != nil {
			t.Fatal(err)
		}
		ids[v.Volume.VolumeId] = true
	}
	// Not ours (no prefix), and ours but deleted: neither is listed.
	other := createReq("x", tc.params(), gi)
	if _, err := cs.CreateVolume(ctx, other); err != nil {
		t.Fatal(err)
	}
	victim := newVolumeID(backendName("pvc-l4"), []string{tc.addr}).String()
	if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: victim}); err != nil {
		t.Fatal(err)
	}
	delete(ids, victim)
	ids[newVolumeID(backendName("x"), []string{tc.addr}).String()] = true

	var got []string
	token := ""
	for pages := 0; ; pages++ {
		resp, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Entries {
			got = append(got, e.Volume.VolumeId)
			if e.Volume.CapacityBytes != gi {
				t.Errorf("%s: capacity %d", e.Volume.VolumeId, e.Volume.CapacityBytes)
			}
		}
		if token = resp.NextToken; token == "" || pages > 10 {
			break
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("listed %v, want %v", got, ids)
	}
	for _, id := range got {
		if !ids[id] {
			t.Errorf("unexpected %s", id)
		}
	}

	_, err = cs.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "invalid-token"})
	wantCode(t, err, codes.Aborted)
}

func TestGetCapacity(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{CapacityGiB: 50})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	resp, err := cs.GetCapacity(ctx, &csi.GetCapacityRequest{})
	if err != nil || resp.AvailableCapacity != 0 {
		t.Fatalf("no cluster known = %v, %v", resp, err)
	}
	resp, err = cs.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: tc.params()})
	if err != nil || resp.AvailableCapacity != 50*gi {
		t.Fatalf("with parameters = %v, %v", resp, err)
	}
	resp, err = cs.GetCapacity(ctx, &csi.GetCapacityRequest{})
	if err != nil || resp.AvailableCapacity != 50*gi {
		t.Fatalf("known cluster = %v, %v", resp, err)
	}
	_, err = cs.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: map[string]string{"bogus": "1"}})
	wantCode(t, err, codes.InvalidArgument)
}

func TestConfiguredMastersAndReady(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs, err := newControllerServer(Options{Masters: []string{tc.addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close()
	if err := cs.ready(context.Background()); err != nil {
		t.Errorf("ready = %v", err)
	}
	if _, err := newControllerServer(Options{Masters: []string{"not an address"}}); err == nil {
		t.Error("bad configured masters accepted")
	}
	tc.srv.Close()
	if err := cs.ready(context.Background()); err == nil {
		t.Error("ready with the master gone")
	}
}
