package rbd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
)

// newUnitController is a controller whose cluster config names a monitor
// nobody listens on: tests here must finish before any connection.
func newUnitController(t *testing.T) *ControllerServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`[{"clusterID":"c","monitors":["127.0.0.1:1"]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := newControllerServer(Options{ClusterConfig: path, Mode: server.ModeController})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.close)
	return cs
}

func unitCap(mode csi.VolumeCapability_AccessMode_Mode, block bool) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}
	}
	return c
}

func TestPickSize(t *testing.T) {
	t.Parallel()
	const mb = 1 << 20
	tests := []struct {
		name            string
		required, limit int64
		min             uint64
		want            uint64
		wantErr         error
	}{
		{"default", 0, 0, 0, 1 << 30, nil},
		{"default under limit", 0, 100*mb + 5, 0, 100 * mb, nil},
		{"exact", 10 * mb, 0, 0, 10 * mb, nil},
		{"round up", 10*mb + 1, 0, 0, 11 * mb, nil},
		{"one byte", 1, 0, 0, mb, nil},
		{"within limit", 10*mb + 1, 11 * mb, 0, 11 * mb, nil},
		{"rounding passes limit", 10*mb + 1, 10*mb + 2, 0, 0, ErrOutOfRange},
		{"required over limit", 5 * mb, 4 * mb, 0, 0, ErrOutOfRange},
		{"limit under a MiB", 0, 1000, 0, 0, ErrOutOfRange},
		{"negative", -1, 0, 0, 0, ErrInvalidParam},
		{"clone takes source size", 0, 0, 7 * mb, 7 * mb, nil},
		{"clone grows", 9 * mb, 0, 7 * mb, 9 * mb, nil},
		{"clone smaller asked", 3 * mb, 0, 7 * mb, 7 * mb, nil},
		{"clone limit under source", 3 * mb, 5 * mb, 7 * mb, 0, ErrOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pickSize(tc.required, tc.limit, tc.min)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestCheckPublish(t *testing.T) {
	t.Parallel()
	snw := attachment{mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}
	snwRO := attachment{mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, readOnly: true}
	rox := attachment{mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, readOnly: true}
	rwx := attachment{mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}
	rec := func(kv ...any) map[string]string {
		m := map[string]string{metaRecord: "{}", "other": "x"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[metaAttachedPrefix+kv[i].(string)] = kv[i+1].(attachment).String()
		}
		return m
	}
	tests := []struct {
		name string
		meta map[string]string
		node string
		want attachment
		err  error
	}{
		{"first", rec(), "n1", snw, nil},
		{"same again", rec("n1", snw), "n1", snw, nil},
		{"second node rwo", rec("n1", snw), "n2", snw, ErrInUse},
		{"same node read-only", rec("n1", snw), "n1", snwRO, ErrPublishConflict},
		{"rox many", rec("n1", rox, "n2", rox), "n3", rox, nil},
		{"rwo next to rox", rec("n1", rox), "n2", snw, ErrInUse},
		{"rox next to rwo", rec("n1", snw), "n2", rox, ErrInUse},
		{"rwx block many", rec("n1", rwx), "n2", rwx, nil},
		{"garbage record is single node", map[string]string{metaAttachedPrefix + "n1": "junk"}, "n2", rox, ErrInUse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkPublish(tc.meta, tc.node, tc.want)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	if parseAttachment(snwRO.String()) != snwRO || parseAttachment(rox.String()) != rox {
		t.Fatal("attachment round trip")
	}
}

func TestPaginate(t *testing.T) {
	t.Parallel()
	var all []listed
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		all = append(all, listed{id: newVolumeID(KindVolume, "c", 1, n)})
	}
	sortListed(all)
	page, next := paginate(all, "", 2)
	if len(page) != 2 || next != all[2].id.String() {
		t.Fatalf("first page %d, next %q", len(page), next)
	}
	page, next = paginate(all, next, 2)
	if len(page) != 2 || page[0].id != all[2].id || next != all[4].id.String() {
		t.Fatal("second page")
	}
	page, next = paginate(all, next, 0)
	if len(page) != 1 || next != "" {
		t.Fatal("last page")
	}
	// A token whose entry was deleted still resumes at the next one.
	page, _ = paginate(append(append([]listed{}, all[:2]...), all[3:]...), all[2].id.String(), 0)
	if len(page) != 2 || page[0].id != all[3].id {
		t.Fatal("token of a deleted entry")
	}
}

func sortListed(all []listed) {
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[j].id.String() < all[i].id.String() {
				all[i], all[j] = all[j], all[i]
			}
		}
	}
}

// TestControllerNoBackend covers the answers that need no cluster.
func TestControllerNoBackend(t *testing.T) {
	t.Parallel()
	cs := newUnitController(t)
	ctx := context.Background()
	valid := newVolumeID(KindVolume, "c", 1, "pvc").String()
	rwo := unitCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false)
	create := func(mut func(*csi.CreateVolumeRequest)) error {
		req := &csi.CreateVolumeRequest{Name: "pvc", VolumeCapabilities: []*csi.VolumeCapability{rwo},
			Parameters: map[string]string{"clusterID": "c", "pool": "p"}}
		mut(req)
		_, err := cs.CreateVolume(ctx, req)
		return err
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"create no name", func() error { return create(func(r *csi.CreateVolumeRequest) { r.Name = "" }) },
			codes.InvalidArgument},
		{"create no caps", func() error {
			return create(func(r *csi.CreateVolumeRequest) { r.VolumeCapabilities = nil })
		}, codes.InvalidArgument},
		{"create rwx filesystem", func() error {
			return create(func(r *csi.CreateVolumeRequest) {
				r.VolumeCapabilities = []*csi.VolumeCapability{
					unitCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, false)}
			})
		}, codes.InvalidArgument},
		{"create unknown param", func() error {
			return create(func(r *csi.CreateVolumeRequest) { r.Parameters["x"] = "y" })
		}, codes.InvalidArgument},
		{"create bad fs_type", func() error {
			return create(func(r *csi.CreateVolumeRequest) {
				r.VolumeCapabilities = []*csi.VolumeCapability{{
					AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "zfs"}},
					AccessMode: rwo.AccessMode}}
			})
		}, codes.InvalidArgument},
		{"create source in other cluster", func() error {
			return create(func(r *csi.CreateVolumeRequest) {
				r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
					Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: newVolumeID(KindVolume, "d", 1, "x").String()}}}
			})
		}, codes.InvalidArgument},
		{"create bad source", func() error {
			return create(func(r *csi.CreateVolumeRequest) {
				r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
					Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "fake"}}}
			})
		}, codes.NotFound},
		{"create no secrets", func() error { return create(func(*csi.CreateVolumeRequest) {}) }, codes.InvalidArgument},
		{"delete no id", func() error { _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{}); return err },
			codes.InvalidArgument},
		{"delete garbage", func() error {
			_, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "fake-vol-id"})
			return err
		}, codes.OK},
		{"delete snapshot garbage", func() error {
			_, err := cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: valid})
			return err
		}, codes.OK},
		{"snapshot no name", func() error {
			_, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{SourceVolumeId: valid})
			return err
		}, codes.InvalidArgument},
		{"snapshot no source", func() error {
			_, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s"})
			return err
		}, codes.InvalidArgument},
		{"snapshot bad source", func() error {
			_, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: "fake"})
			return err
		}, codes.NotFound},
		{"snapshot unknown param", func() error {
			_, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: valid,
				Parameters: map[string]string{"imageFeatures": "layering"}})
			return err
		}, codes.InvalidArgument},
		{"expand no range", func() error {
			_, err := cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: valid})
			return err
		}, codes.InvalidArgument},
		{"expand garbage", func() error {
			_, err := cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "x",
				CapacityRange: &csi.CapacityRange{RequiredBytes: 1}})
			return err
		}, codes.NotFound},
		{"validate garbage", func() error {
			_, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: "x",
				VolumeCapabilities: []*csi.VolumeCapability{rwo}})
			return err
		}, codes.NotFound},
		{"validate no caps", func() error {
			_, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: valid})
			return err
		}, codes.InvalidArgument},
		{"publish no node", func() error {
			_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: valid,
				VolumeCapability: rwo})
			return err
		}, codes.InvalidArgument},
		{"publish no cap", func() error {
			_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: valid, NodeId: "n"})
			return err
		}, codes.InvalidArgument},
		{"publish garbage", func() error {
			_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: "x", NodeId: "n",
				VolumeCapability: rwo})
			return err
		}, codes.NotFound},
		{"unpublish garbage", func() error {
			_, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: "x", NodeId: "n"})
			return err
		}, codes.OK},
		{"list bad token", func() error {
			_, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "nope"})
			return err
		}, codes.Aborted},
		{"list snapshots bad token", func() error {
			_, err := cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: valid})
			return err
		}, codes.Aborted},
		{"list without controller credentials", func() error {
			_, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{})
			return err
		}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call()); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestControllerInFlightAborted: a call for a name or image another call
// holds is refused at once, before touching the backend.
func TestControllerInFlightAborted(t *testing.T) {
	t.Parallel()
	cs := newUnitController(t)
	ctx := context.Background()
	rwo := unitCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false)
	if !cs.locks.TryAcquire("create/pvc") {
		t.Fatal("lock taken")
	}
	_, err := cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		Parameters: map[string]string{"clusterID": "c", "pool": "p"}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("create: %v", err)
	}
	cs.locks.Release("create/pvc")

	id := newVolumeID(KindVolume, "c", 1, "pvc")
	key := imageRef{id: id}.lockKey()
	if !cs.locks.TryAcquire(key) {
		t.Fatal("lock taken")
	}
	defer cs.locks.Release(key)
	_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id.String()})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("delete: %v", err)
	}
	_, err = cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id.String(),
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("expand: %v", err)
	}
}

func TestControllerGetCapabilities(t *testing.T) {
	t.Parallel()
	cs := newUnitController(t)
	resp, err := cs.ControllerGetCapabilities(context.Background(), &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[csi.ControllerServiceCapability_RPC_Type]bool{}
	for _, c := range resp.GetCapabilities() {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME, csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT, csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME, csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	} {
		if !got[want] {
			t.Errorf("missing %s", want)
		}
	}
	if err := cs.ready(context.Background()); err != nil {
		t.Fatalf("ready without controller credentials: %v", err)
	}
}
