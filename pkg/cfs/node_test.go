package cfs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

func TestNodeLifecycle(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-life", nil)
	staging, target1, target2 := paths(t)
	ctx := context.Background()
	c := rwx()

	for i := 0; i < 2; i++ { // the second stage finds it staged
		if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, c)); err != nil {
			t.Fatalf("stage #%d: %v", i, err)
		}
	}
	e, err := ns.mounter.Lookup(staging)
	if err != nil || e == nil || e.Source != "cubefs-tkestor-pvc-life" || e.FsType != "fuse.cubefs" {
		t.Fatalf("staging mount = %+v, %v", e, err)
	}
	rec, _ := ns.loadRecord(vol.VolumeId)
	checkClientConfig(t, rec.ConfigFile, staging)
	checkMode(t, ns.records.Path(vol.VolumeId), 0o600)

	for i := 0; i < 2; i++ {
		if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target1, c, false)); err != nil {
			t.Fatalf("publish #%d: %v", i, err)
		}
	}
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target2, c, true)); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(target1, "hello"), "world")
	if got := mustRead(t, filepath.Join(target2, "hello")); got != "world" {
		t.Errorf("read through the second target = %q", got)
	}
	if err := os.WriteFile(filepath.Join(target2, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write to the read-only target = %v, want EROFS", err)
	}
	_, err = ns.NodePublishVolume(ctx, publishReq(vol, staging, target2, c, false))
	wantCode(t, err, codes.AlreadyExists)

	stats, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol.VolumeId, VolumePath: target1})
	if err != nil || len(stats.Usage) != 2 || stats.Usage[0].Total != gi {
		t.Fatalf("stats = %v, %v; want a 1 GiB total", stats, err)
	}
	health, err := ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{
		VolumeId: vol.VolumeId, VolumePublishPath: target1})
	if err != nil || len(health.VolumeHealth.HealthStatuses) != 0 {
		t.Fatalf("health = %v, %v", health, err)
	}

	// Unstage waits for the pods to go.
	_, err = ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol.VolumeId, StagingTargetPath: staging})
	wantCode(t, err, codes.FailedPrecondition)
	unstage(t, ns, vol, staging, target1, target2, target1)
	unstage(t, ns, vol, staging)
	for _, p := range []string{target1, target2, rec.ConfigFile, ns.records.Path(vol.VolumeId)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	if e, _ := ns.mounter.Lookup(staging); e != nil {
		t.Errorf("staging still mounted: %+v", e)
	}
	if pids := clientPIDs(rec.ConfigFile); len(pids) != 0 {
		t.Errorf("client still running: %v", pids)
	}
}

// checkClientConfig asserts the allow-listed keys and mode 0600.
func checkClientConfig(t *testing.T, path, staging string) {
	t.Helper()
	checkMode(t, path, 0o600)
	var m map[string]string
	if err := json.Unmarshal([]byte(mustRead(t, path)), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "logDir,logLevel,masterAddr,mountPoint,owner,rdonly,volName"
	if strings.Join(keys, ",") != want || m["mountPoint"] != staging || m["owner"] != testOwner {
		t.Errorf("client config = %v", m)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
	}
}

func TestNodePublishNeedsLiveStaging(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-nostage", nil)
	staging, target, _ := paths(t)
	ctx := context.Background()

	// Never bind an empty directory.
	_, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target, rwx(), false))
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwx())); err != nil {
		t.Fatal(err)
	}
	// Unmounted behind our back: still no bind of the bare directory.
	if err := unix.Unmount(staging, 0); err != nil {
		t.Fatal(err)
	}
	_, err = ns.NodePublishVolume(ctx, publishReq(vol, staging, target, rwx(), false))
	wantCode(t, err, codes.FailedPrecondition)
	other := filepath.Join(filepath.Dir(staging), "elsewhere")
	_, err = ns.NodePublishVolume(ctx, publishReq(vol, other, target, rwx(), false))
	wantCode(t, err, codes.FailedPrecondition)
	unstage(t, ns, vol, staging)
}

func TestNodeSingleWriterSecondTarget(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-rwop", nil)
	staging, target1, target2 := paths(t)
	ctx := context.Background()
	rwop := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwop)); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target1, rwop, false)); err != nil {
		t.Fatal(err)
	}
	_, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target2, rwop, false))
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target1, rwop, false)); err != nil {
		t.Fatalf("same target again: %v", err)
	}
	unstage(t, ns, vol, staging, target1)
}

func TestNodeStageFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	state := t.TempDir()
	ns := env.node(t, "node-a", state)
	vol := env.volume(t, "pvc-fail", nil)
	ctx := context.Background()

	wrongOwner := func(staging string) *csi.NodeStageVolumeRequest {
		r := stageReq(vol, staging, rwx())
		r.Secrets = map[string]string{"owner": "intruder"}
		return r
	}
	gone := &csi.Volume{VolumeId: newVolumeID("tkestor-gone", []string{env.addr}).String(),
		VolumeContext: map[string]string{"masterAddr": env.addr}}
	tests := []struct {
		name string
		req  func(staging string) *csi.NodeStageVolumeRequest
		want codes.Code
	}{
		{"owner mismatch", wrongOwner, codes.PermissionDenied},
		{"missing volume", func(s string) *csi.NodeStageVolumeRequest { return stageReq(gone, s, rwx()) }, codes.NotFound},
		{"block", func(s string) *csi.NodeStageVolumeRequest {
			r := stageReq(vol, s, rwx())
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
			return r
		}, codes.InvalidArgument},
		{"foreign context key", func(s string) *csi.NodeStageVolumeRequest {
			r := stageReq(vol, s, rwx())
			r.VolumeContext = map[string]string{"masterAddr": env.addr, "owner": "x"}
			return r
		}, codes.InvalidArgument},
		{"context names another cluster", func(s string) *csi.NodeStageVolumeRequest {
			r := stageReq(vol, s, rwx())
			r.VolumeContext = map[string]string{"masterAddr": "10.9.9.9:17010"}
			return r
		}, codes.InvalidArgument},
		{"garbage ID", func(s string) *csi.NodeStageVolumeRequest {
			return stageReq(&csi.Volume{VolumeId: "fake-vol-id"}, s, rwx())
		}, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			staging, _, _ := paths(t)
			_, err := ns.NodeStageVolume(ctx, tt.req(staging))
			wantCode(t, err, tt.want)
			if e, _ := ns.mounter.Lookup(staging); e != nil {
				t.Errorf("left mounted: %+v", e)
			}
		})
	}
	left, _ := os.ReadDir(filepath.Join(state, "cfs", "volumes"))
	recs, _ := ns.records.List()
	if len(left) != 0 || len(recs) != 0 {
		t.Errorf("left behind: %d volume dirs, records %v", len(left), recs)
	}
}

func TestNodeStatsAndHealth(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-stats", nil)
	staging, target, _ := paths(t)
	ctx := context.Background()
	stats := func(id, path string) error {
		_, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: path})
		return err
	}
	wantCode(t, stats(vol.VolumeId, "some/path"), codes.NotFound)
	wantCode(t, stats(vol.VolumeId, staging), codes.NotFound) // a directory, not a mount
	wantCode(t, stats("fake-vol-id", staging), codes.NotFound)
	wantCode(t, stats("", staging), codes.InvalidArgument)

	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwx())); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target, rwx(), false)); err != nil {
		t.Fatal(err)
	}
	killClient(t, ns, vol.VolumeId)
	wantCode(t, stats(vol.VolumeId, target), codes.Unavailable)
	h, err := ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: vol.VolumeId,
		VolumePublishPath: target})
	if err != nil || len(h.VolumeHealth.HealthStatuses) != 1 ||
		h.VolumeHealth.HealthStatuses[0].Status != csi.VolumeHealthErrorType_INACCESSIBLE ||
		!strings.Contains(h.VolumeHealth.HealthStatuses[0].Message, "transport endpoint is not connected") {
		t.Fatalf("health = %v, %v", h, err)
	}
	unstage(t, ns, vol, staging, target)
}

func TestNodeSubdir(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	params := env.params()
	params["subdir"] = "shared/team-a"
	vol := env.volume(t, "pvc-sub", params)
	staging, target, _ := paths(t)
	ctx := context.Background()
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwx())); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target, rwx(), false)); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(target, "f"), "in subdir")
	backing := filepath.Join(env.dataRoot, "tkestor-pvc-sub", "shared", "team-a", "f")
	if got := mustRead(t, backing); got != "in subdir" {
		t.Errorf("backing file = %q", got)
	}
	unstage(t, ns, vol, staging, target)

	// A link planted where the subdir should be is not followed.
	volRoot := filepath.Join(env.dataRoot, "tkestor-pvc-sub")
	if err := os.RemoveAll(filepath.Join(volRoot, "shared")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(volRoot, "shared")); err != nil {
		t.Fatal(err)
	}
	_, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwx()))
	wantCode(t, err, codes.FailedPrecondition)
	if e, _ := ns.mounter.Lookup(staging); e != nil {
		t.Errorf("left mounted: %+v", e)
	}
}

func TestNodeReadOnlyStaging(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-rox", nil)
	staging, target, _ := paths(t)
	ctx := context.Background()
	rox := mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rox)); err != nil {
		t.Fatal(err)
	}
	rec, _ := ns.loadRecord(vol.VolumeId)
	var conf map[string]string
	if err := json.Unmarshal([]byte(mustRead(t, rec.ConfigFile)), &conf); err != nil || conf["rdonly"] != "true" {
		t.Fatalf("client config rdonly = %q, %v", conf["rdonly"], err)
	}
	// Staged read-only for one mode, then asked read-write: a conflict.
	_, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwx()))
	wantCode(t, err, codes.AlreadyExists)
	// The pod asked for read-write, the mode says read-only: read-only.
	if _, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target, rox, false)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write = %v, want EROFS", err)
	}
	unstage(t, ns, vol, staging, target)
}

// A bind of the staging mount that the record does not know (a lost
// state directory) still keeps Unstage from killing the client under it,
// and counts as the one target of a single-writer volume.
func TestNodeUnrecordedBind(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-unrec", nil)
	staging, target1, target2 := paths(t)
	ctx := context.Background()
	rwop := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwop)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(target1, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(staging, target1, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	_, err := ns.NodePublishVolume(ctx, publishReq(vol, staging, target2, rwop, false))
	wantCode(t, err, codes.FailedPrecondition)
	_, err = ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol.VolumeId, StagingTargetPath: staging})
	wantCode(t, err, codes.FailedPrecondition)
	if err := unix.Unmount(target1, 0); err != nil {
		t.Fatal(err)
	}
	unstage(t, ns, vol, staging)
}
