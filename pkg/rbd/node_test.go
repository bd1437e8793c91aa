package rbd

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mountutils "k8s.io/mount-utils"

	"github.com/tkestack/tkestor-csi/pkg/common/exectest"
	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// fakeMapper maps every image to /dev/fake0 and counts calls. block, when
// set, holds Map until it is closed.
type fakeMapper struct {
	mu      sync.Mutex
	maps    int
	unmaps  int
	gone    bool
	block   chan struct{}
	entered chan struct{}
}

func (f *fakeMapper) Map(_ context.Context, req *MapRequest) (*Mapping, error) {
	if f.block != nil {
		f.entered <- struct{}{}
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maps++
	f.gone = false
	return &Mapping{Mapper: MounterFuse, Device: "/dev/fake0", Spec: req.spec(), ReadOnly: req.ReadOnly}, nil
}

func (f *fakeMapper) Unmap(context.Context, *Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmaps++
	f.gone = true
	return nil
}

func (f *fakeMapper) Check(context.Context, *Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return ErrMappingGone
	}
	return nil
}

func (f *fakeMapper) Refresh(context.Context, *Mapping, int64) (int64, error) { return 0, nil }

// fakeResolver resolves every decodable ID to the fuse mapper.
type fakeResolver struct{}

func (fakeResolver) checkID(id string) error { _, err := DecodeVolumeID(id); return err }

func (fakeResolver) resolve(_ context.Context, id string, _, _ map[string]string) (*stageSpec, error) {
	v, err := DecodeVolumeID(id)
	if err != nil {
		return nil, err
	}
	return &stageSpec{ClusterID: v.ClusterID, Monitors: []string{"127.0.0.1:6789"}, Pool: "rbd",
		Image: v.Image, User: "csi", Key: testKey, Mounter: MounterFuse}, nil
}

type nodeEnv struct {
	ns      *NodeServer
	fm      *mountutils.FakeMounter
	mapper  *fakeMapper
	exec    *exectest.Script
	dir     string
	volID   string
	staging string
}

func newNodeEnv(t *testing.T, steps ...exectest.Step) *nodeEnv {
	t.Helper()
	dir := t.TempDir()
	fm := mountutils.NewFakeMounter(nil)
	script := exectest.New(steps...)
	ns, err := newNodeServerWith(Options{NodeID: "node-1", StateDir: filepath.Join(dir, "state")},
		mount.NewFake(fm, script), script, fakeResolver{})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeMapper{}
	ns.mappers[MounterFuse] = fake
	ns.watch = nil           // no cluster in unit tests
	ns.owner = noOwnership{} // hold tests: hold_*_test.go, tests/rwo
	t.Cleanup(ns.close)
	return &nodeEnv{ns: ns, fm: fm, mapper: fake, exec: script, dir: dir,
		volID: newVolumeID(KindVolume, "c1", 3, "pvc-1").String(), staging: filepath.Join(dir, "staging")}
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode, flags ...string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{MountFlags: flags}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

const snw = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER

func (e *nodeEnv) stageReq(c *csi.VolumeCapability) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{VolumeId: e.volID, StagingTargetPath: e.staging,
		VolumeCapability: c, Secrets: map[string]string{"userID": "csi", "userKey": testKey}}
}

func (e *nodeEnv) publishReq(target string, c *csi.VolumeCapability, ro bool) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{VolumeId: e.volID, StagingTargetPath: e.staging,
		TargetPath: target, VolumeCapability: c, Readonly: ro}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
}

// blank device: blkid finds nothing, mkfs.ext4 formats it.
var formatSteps = []exectest.Step{{Cmd: "blkid", Exit: 2}, {Cmd: "mkfs.ext4"}}

func TestNodeStageValidation(t *testing.T) {
	t.Parallel()
	e := newNodeEnv(t)
	ctx := context.Background()
	good := mountCap(snw)
	tests := []struct {
		name string
		req  *csi.NodeStageVolumeRequest
	}{
		{"no volume id", &csi.NodeStageVolumeRequest{StagingTargetPath: "/x", VolumeCapability: good}},
		{"no staging path", &csi.NodeStageVolumeRequest{VolumeId: e.volID, VolumeCapability: good}},
		{"no capability", &csi.NodeStageVolumeRequest{VolumeId: e.volID, StagingTargetPath: "/x"}},
		{"no secrets", &csi.NodeStageVolumeRequest{VolumeId: e.volID, StagingTargetPath: "/x",
			VolumeCapability: good}},
		{"comma in mount flag", e.stageReq(mountCap(snw, "noatime,exec"))},
		{"bind mount flag", e.stageReq(mountCap(snw, "bind"))},
		{"rwx filesystem", e.stageReq(mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER))},
	}
	for _, tc := range tests {
		_, err := e.ns.NodeStageVolume(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	_, err := e.ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{StagingTargetPath: "/x", VolumeCapability: good})
	if st, _ := status.FromError(err); !contains(st.Message(), "volume_id") {
		t.Errorf("message %q does not name volume_id", st.Message())
	}
	_, err = e.ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "garbage", StagingTargetPath: e.staging,
		VolumeCapability: good, Secrets: map[string]string{"userID": "a", "userKey": testKey}})
	wantCode(t, err, codes.NotFound)
}

func TestNodeStageUnstageFilesystem(t *testing.T) {
	t.Parallel()
	e := newNodeEnv(t, formatSteps...)
	ctx := context.Background()

	for i := 0; i < 2; i++ {
		if _, err := e.ns.NodeStageVolume(ctx, e.stageReq(mountCap(snw))); err != nil {
			t.Fatalf("stage #%d: %v", i, err)
		}
	}
	if e.mapper.maps != 1 {
		t.Errorf("mapped %d times, want 1", e.mapper.maps)
	}
	if ok, _ := e.ns.mounter.MountedFrom(e.staging, "/dev/fake0"); !ok {
		t.Error("staging path not mounted from the device")
	}
	rec, _ := e.ns.loadRecord(e.volID)
	if rec == nil || !rec.Staged || rec.device() != "/dev/fake0" || rec.FsType != "ext4" {
		t.Fatalf("record = %+v", rec)
	}
	b, _ := os.ReadFile(e.ns.records.Path(e.volID))
	if contains(string(b), testKey) {
		t.Error("record holds the key")
	}
	// Asking again with another mode is a conflict, not a silent OK.
	_, err := e.ns.NodeStageVolume(ctx, e.stageReq(mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)))
	wantCode(t, err, codes.AlreadyExists)

	for i := 0; i < 2; i++ {
		if _, err := e.ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
			VolumeId: e.volID, StagingTargetPath: e.staging}); err != nil {
			t.Fatalf("unstage #%d: %v", i, err)
		}
	}
	if e.mapper.unmaps != 1 {
		t.Errorf("unmapped %d times, want 1", e.mapper.unmaps)
	}
	if rec, _ := e.ns.loadRecord(e.volID); rec != nil {
		t.Errorf("record left: %+v", rec)
	}
	if mps, _ := e.fm.List(); len(mps) != 0 {
		t.Errorf("mounts left: %+v", mps)
	}
	if p := e.exec.Problems(); len(p) > 0 {
		t.Error(p)
	}
}

func TestNodeStageUndoOnMkfsFailure(t *testing.T) {
	t.Parallel()
	e := newNodeEnv(t, exectest.Step{Cmd: "blkid", Exit: 2}, exectest.Step{Cmd: "mkfs.ext4", Exit: 1})
	_, err := e.ns.NodeStageVolume(context.Background(), e.stageReq(mountCap(snw)))
	wantCode(t, err, codes.Internal)
	if e.mapper.maps != 1 || e.mapper.unmaps != 1 {
		t.Errorf("maps=%d unmaps=%d, want 1 and 1", e.mapper.maps, e.mapper.unmaps)
	}
	if rec, _ := e.ns.loadRecord(e.volID); rec != nil {
		t.Errorf("record left after a failed stage: %+v", rec)
	}
	if mps, _ := e.fm.List(); len(mps) != 0 {
		t.Errorf("mounts left: %+v", mps)
	}
}

func TestNodeStageConcurrentAborted(t *testing.T) {
	t.Parallel()
	e := newNodeEnv(t, formatSteps...)
	e.mapper.block, e.mapper.entered = make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := e.ns.NodeStageVolume(context.Background(), e.stageReq(mountCap(snw)))
		done <- err
	}()
	<-e.mapper.entered
	for _, call := range []func() error{
		func() error {
			_, err := e.ns.NodeStageVolume(context.Background(), e.stageReq(mountCap(snw)))
			return err
		},
		func() error {
			_, err := e.ns.NodeUnstageVolume(context.Background(),
				&csi.NodeUnstageVolumeRequest{VolumeId: e.volID, StagingTargetPath: e.staging})
			return err
		},
		func() error {
			_, err := e.ns.NodePublishVolume(context.Background(),
				e.publishReq(filepath.Join(e.dir, "t"), mountCap(snw), false))
			return err
		},
	} {
		wantCode(t, call(), codes.Aborted)
	}
	close(e.mapper.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNodePublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rwop := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)

	t.Run("not staged", func(t *testing.T) {
		t.Parallel()
		e := newNodeEnv(t)
		target := filepath.Join(e.dir, "target")
		_, err := e.ns.NodePublishVolume(ctx, e.publishReq(target, mountCap(snw), false))
		wantCode(t, err, codes.FailedPrecondition)
		req := e.publishReq(target, mountCap(snw), false)
		req.VolumeId = "fake-vol-id"
		_, err = e.ns.NodePublishVolume(ctx, req)
		wantCode(t, err, codes.NotFound)
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Error("target created for an unstaged volume")
		}
	})

	t.Run("staging mount gone", func(t *testing.T) {
		t.Parallel()
		e := newNodeEnv(t, formatSteps...)
		if _, err := e.ns.NodeStageVolume(ctx, e.stageReq(mountCap(snw))); err != nil {
			t.Fatal(err)
		}
		_ = e.fm.Unmount(e.staging) // e.g. a reboot took it away
		target := filepath.Join(e.dir, "target")
		_, err := e.ns.NodePublishVolume(ctx, e.publishReq(target, mountCap(snw), false))
		wantCode(t, err, codes.FailedPrecondition)
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Error("target created over a dead staging path")
		}
		e.mapper.gone = true // and a dead mapper also refuses
		_, err = e.ns.NodePublishVolume(ctx, e.publishReq(target, mountCap(snw), false))
		wantCode(t, err, codes.FailedPrecondition)
	})

	t.Run("publish, conflicts, rwop, unpublish", func(t *testing.T) {
		t.Parallel()
		e := newNodeEnv(t, formatSteps...)
		if _, err := e.ns.NodeStageVolume(ctx, e.stageReq(rwop)); err != nil {
			t.Fatal(err)
		}
		t1, t2 := filepath.Join(e.dir, "t1"), filepath.Join(e.dir, "t2")
		for i := 0; i < 2; i++ {
			if _, err := e.ns.NodePublishVolume(ctx, e.publishReq(t1, rwop, false)); err != nil {
				t.Fatalf("publish #%d: %v", i, err)
			}
		}
		if ok, _ := e.ns.mounter.MountedFrom(t1, "/dev/fake0"); !ok {
			t.Error("target not a mount of the device")
		}
		_, err := e.ns.NodePublishVolume(ctx, e.publishReq(t1, rwop, true))
		wantCode(t, err, codes.AlreadyExists)
		_, err = e.ns.NodePublishVolume(ctx, e.publishReq(t2, rwop, false))
		wantCode(t, err, codes.FailedPrecondition)

		other := filepath.Join(e.dir, "other")
		_ = os.MkdirAll(other, 0o750)
		_ = e.fm.Mount("/dev/sdz", other, "ext4", nil)
		_, err = e.ns.NodePublishVolume(ctx, e.publishReq(other, mountCap(snw), false))
		wantCode(t, err, codes.AlreadyExists)

		_, err = e.ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: e.volID, StagingTargetPath: e.staging})
		wantCode(t, err, codes.FailedPrecondition)

		for i := 0; i < 2; i++ {
			if _, err := e.ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
				VolumeId: e.volID, TargetPath: t1}); err != nil {
				t.Fatalf("unpublish #%d: %v", i, err)
			}
		}
		if _, err := os.Stat(t1); !os.IsNotExist(err) {
			t.Error("target left after unpublish")
		}
		// The single target is free again.
		if _, err := e.ns.NodePublishVolume(ctx, e.publishReq(t2, rwop, true)); err != nil {
			t.Fatal(err)
		}
		if en, _ := e.ns.mounter.Lookup(t2); en == nil || !en.ReadOnly() {
			t.Errorf("read-only publish entry = %+v", en)
		}
	})
}

func TestNodeStatsAndHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newNodeEnv(t, formatSteps...)
	_, err := e.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: e.volID, VolumePath: e.staging})
	wantCode(t, err, codes.NotFound)
	_, err = e.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "fake-vol-id", VolumePath: "/x"})
	wantCode(t, err, codes.NotFound)
	_, err = e.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: e.volID})
	wantCode(t, err, codes.InvalidArgument)

	if _, err := e.ns.NodeStageVolume(ctx, e.stageReq(mountCap(snw))); err != nil {
		t.Fatal(err)
	}
	_, err = e.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{
		VolumeId: e.volID, VolumePath: filepath.Join(e.dir, "nowhere")})
	wantCode(t, err, codes.NotFound)

	h, err := e.ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: e.volID})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Fatalf("health of a good volume = %v, %v", h, err)
	}
	e.mapper.gone = true
	h, err = e.ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: e.volID})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 1 ||
		h.GetVolumeHealth().GetHealthStatuses()[0].GetReason() != "MappingGone" {
		t.Fatalf("health of a dead mapping = %v, %v", h, err)
	}
	_, err = e.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: e.volID, VolumePath: e.staging})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestNodeCapabilitiesAndInfo(t *testing.T) {
	t.Parallel()
	e := newNodeEnv(t)
	info, err := e.ns.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "node-1" {
		t.Fatalf("NodeGetInfo = %v, %v", info, err)
	}
	caps, _ := e.ns.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	got := map[csi.NodeServiceCapability_RPC_Type]bool{}
	for _, c := range caps.GetCapabilities() {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME, csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH, csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		if !got[want] {
			t.Errorf("capability %v not advertised", want)
		}
	}
}
