package rbd

// Integration tests of the controller against the real test cluster
// (tests/ceph/cluster.sh). Skipped unless the cluster's environment is set:
//
//	eval "$(tests/ceph/cluster.sh env)"; go test -tags pacific ./pkg/rbd/

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
)

const itMiB = int64(1 << 20)

// itEnv is the test cluster as the tests see it.
type itEnv struct {
	t         *testing.T
	clusterID string
	pool      string
	pool2     string
	secrets   map[string]string
	conn      *rados.Conn // the test's own client, for writing data and checking leftovers
	prefix    string      // unique per run: request names start with it
	opts      Options

	mu     sync.Mutex
	images map[string]map[string]bool // pool → image names this run made
	ids    map[string]map[string]bool // pool → image IDs seen
}

func newITEnv(t *testing.T) *itEnv {
	t.Helper()
	cfg, user, keyFile := os.Getenv("TKESTOR_CSI_CONFIG"), os.Getenv("TKESTOR_CSI_USER"), os.Getenv("TKESTOR_CSI_KEY_FILE")
	clusterID, pool := os.Getenv("TKESTOR_CLUSTER_ID"), os.Getenv("TKESTOR_POOL")
	if cfg == "" || user == "" || keyFile == "" || clusterID == "" || pool == "" {
		t.Skip("Ceph test cluster not configured (eval \"$(tests/ceph/cluster.sh env)\")")
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("read key file: %v", err)
	}
	secretDir := t.TempDir()
	for name, value := range map[string]string{secretUserID: user, secretUserKey: string(key)} {
		if err := os.WriteFile(filepath.Join(secretDir, name), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := &itEnv{
		t: t, clusterID: clusterID, pool: pool, pool2: "rbd2",
		secrets: map[string]string{secretUserID: user, secretUserKey: strings.TrimSpace(string(key))},
		prefix:  "it-" + itRandHex(4) + "-",
		opts: Options{
			DriverName: "rbd.csi.tkestor.io", Mode: server.ModeController,
			ClusterConfig: cfg, ControllerSecretDir: secretDir,
		},
		images: map[string]map[string]bool{},
		ids:    map[string]map[string]bool{},
	}
	clusters, err := newClusterConfig(cfg).all()
	if err != nil {
		t.Fatal(err)
	}
	cache := newConnCache(ConnOptions{})
	t.Cleanup(cache.close)
	creds, err := CredentialsFromSecrets(e.secrets)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := cache.get(context.Background(), clusters[0].Monitors, creds)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	e.conn = conn
	return e
}

func itRandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// controller starts a controller; each is its own RADOS client, like a
// separate process.
func (e *itEnv) controller() *ControllerServer {
	e.t.Helper()
	cs, err := newControllerServer(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cs.close)
	return cs
}

func (e *itEnv) params(extra ...string) map[string]string {
	p := map[string]string{paramClusterID: e.clusterID, paramPool: e.pool}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

func itMount(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func itBlock(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

var itRWO = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER //nolint:gochecknoglobals // test constant

func (e *itEnv) volReq(name string, size int64, params map[string]string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               e.prefix + name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{itMount(itRWO)},
		Parameters:         params,
		Secrets:            e.secrets,
	}
}

// track remembers an image this run made (by ID), to check for leftovers.
func (e *itEnv) track(id string) {
	e.t.Helper()
	var v VolumeID
	var err error
	if v, err = DecodeVolumeID(id); err != nil {
		if v, err = DecodeSnapshotID(id); err != nil {
			e.t.Fatalf("track %q: %v", id, err)
		}
	}
	pool, err := e.conn.GetPoolByID(v.PoolID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.images[pool] == nil {
		e.images[pool], e.ids[pool] = map[string]bool{}, map[string]bool{}
	}
	e.images[pool][v.Image] = true
	if imgID, err := e.imageID(pool, v.Image); err == nil {
		e.ids[pool][imgID] = true
	}
}

func (e *itEnv) ioctx(pool string) *rados.IOContext {
	e.t.Helper()
	io, err := e.conn.OpenIOContext(pool)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(io.Destroy)
	return io
}

func (e *itEnv) imageID(pool, image string) (string, error) {
	io, err := e.conn.OpenIOContext(pool)
	if err != nil {
		return "", err
	}
	defer io.Destroy()
	img, err := librbd.OpenImageReadOnly(io, image, librbd.NoSnapshot)
	if err != nil {
		return "", err
	}
	defer img.Close()
	return img.GetId()
}

// itPattern is deterministic test data for a volume.
func itPattern(seed string, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, []byte(seed+"|")...)
	}
	return out[:n]
}

// writeImage writes data at offset through librbd, as a mapped client would.
func (e *itEnv) writeImage(volID string, off int64, data []byte) {
	e.t.Helper()
	img := e.openByID(volID)
	defer img.Close()
	if _, err := img.WriteAt(data, off); err != nil {
		e.t.Fatalf("write %s: %v", volID, err)
	}
	if err := img.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *itEnv) readImage(volID string, off int64, n int) []byte {
	e.t.Helper()
	img := e.openByID(volID)
	defer img.Close()
	buf := make([]byte, n)
	if _, err := img.ReadAt(buf, off); err != nil {
		e.t.Fatalf("read %s: %v", volID, err)
	}
	return buf
}

func (e *itEnv) openByID(volID string) *librbd.Image {
	e.t.Helper()
	v, err := DecodeVolumeID(volID)
	if err != nil {
		e.t.Fatal(err)
	}
	pool, err := e.conn.GetPoolByID(v.PoolID)
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := librbd.OpenImage(e.ioctx(pool), v.Image, librbd.NoSnapshot)
	if err != nil {
		e.t.Fatalf("open %s: %v", v.Image, err)
	}
	return img
}

func itCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got code %s (%v), want %s", got, err, want)
	}
}

// result carries a call's value and error so one line can assert both.
type result[T any] struct {
	v   T
	err error
}

func try[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("unexpected error: %v", r.err)
	}
	return r.v
}

// assertClean checks that nothing this run made is left in any pool: no
// image (rbd ls), no trash entry of any source (rbd trash ls -a), and no
// RADOS object (rados ls) naming one of its images, image IDs or locks.
func (e *itEnv) assertClean() {
	e.t.Helper()
	for _, pool := range []string{e.pool, e.pool2} {
		io := e.ioctx(pool)
		names := try(librbd.GetImageNames(io)).must(e.t)
		for _, n := range names {
			if e.images[pool][n] {
				e.t.Errorf("pool %s: image %s left behind", pool, n)
			}
		}
		trash := try(librbd.GetTrashList(io)).must(e.t)
		for _, tr := range trash {
			if e.images[pool][tr.Name] || e.ids[pool][tr.Id] {
				e.t.Errorf("pool %s: trash entry %s (%s) left behind", pool, tr.Name, tr.Id)
			}
		}
		err := io.ListObjects(func(oid string) {
			for img := range e.images[pool] {
				if strings.Contains(oid, img) {
					e.t.Errorf("pool %s: object %s left behind", pool, oid)
				}
			}
			for id := range e.ids[pool] {
				if strings.Contains(oid, id) {
					e.t.Errorf("pool %s: object %s (image id %s) left behind", pool, oid, id)
				}
			}
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *itEnv) trashed(pool, image string) bool {
	for _, tr := range try(librbd.GetTrashList(e.ioctx(pool))).must(e.t) {
		if tr.Name == image {
			return true
		}
	}
	return false
}

func TestIntegrationController(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	ctx := context.Background()
	defer e.assertClean()
	if err := cs.ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}

	// Create: rounding, idempotent retry, AlreadyExists, argument errors.
	reqA := e.volReq("a", 10*itMiB+1, e.params())
	volA := try(cs.CreateVolume(ctx, reqA)).must(t).GetVolume()
	e.track(volA.GetVolumeId())
	if volA.GetCapacityBytes() != 11*itMiB {
		t.Fatalf("capacity %d, want %d (rounded up to MiB)", volA.GetCapacityBytes(), 11*itMiB)
	}
	if vc := volA.GetVolumeContext(); vc[VolCtxPool] != e.pool || vc[VolCtxMounter] != MounterKRBD ||
		vc[VolCtxFsType] != FsExt4 || vc[VolCtxClusterID] != e.clusterID {
		t.Fatalf("volume context %v", vc)
	}
	again := try(cs.CreateVolume(ctx, reqA)).must(t).GetVolume()
	if again.GetVolumeId() != volA.GetVolumeId() || again.GetCapacityBytes() != volA.GetCapacityBytes() {
		t.Fatalf("retry gave %v, want %v", again, volA)
	}
	bigger := e.volReq("a", 20*itMiB, e.params())
	_, err := cs.CreateVolume(ctx, bigger)
	itCode(t, err, codes.AlreadyExists)
	t.Run("argument errors", func(t *testing.T) { itCreateArgs(t, e, cs) })

	data := itPattern("volume-a", int(4*itMiB))
	e.writeImage(volA.GetVolumeId(), 3*itMiB, data)

	// Snapshot of A, idempotent; same name with another source is AlreadyExists.
	snapReq := &csi.CreateSnapshotRequest{
		Name: e.prefix + "snap1", SourceVolumeId: volA.GetVolumeId(), Secrets: e.secrets,
		Parameters: map[string]string{paramClusterID: e.clusterID, csiPrefix + "snapshotter-secret-name": "x"},
	}
	snap1 := try(cs.CreateSnapshot(ctx, snapReq)).must(t).GetSnapshot()
	e.track(snap1.GetSnapshotId())
	snapAgain := try(cs.CreateSnapshot(ctx, snapReq)).must(t).GetSnapshot()
	if snapAgain.GetSnapshotId() != snap1.GetSnapshotId() || !snapAgain.GetCreationTime().AsTime().Equal(snap1.GetCreationTime().AsTime()) {
		t.Fatalf("snapshot retry gave %v, want %v", snapAgain, snap1)
	}
	if snap1.GetSizeBytes() != 11*itMiB || !snap1.GetReadyToUse() || snap1.GetSourceVolumeId() != volA.GetVolumeId() {
		t.Fatalf("snapshot %v", snap1)
	}
	volB := try(cs.CreateVolume(ctx, e.volReq("b", 8*itMiB, e.params()))).must(t).GetVolume()
	e.track(volB.GetVolumeId())
	otherSrc := &csi.CreateSnapshotRequest{Name: snapReq.Name, SourceVolumeId: volB.GetVolumeId(), Secrets: e.secrets}
	_, err = cs.CreateSnapshot(ctx, otherSrc)
	itCode(t, err, codes.AlreadyExists)

	// Data written after the snapshot must not show in restores.
	e.writeImage(volA.GetVolumeId(), 3*itMiB, itPattern("overwritten", int(itMiB)))

	// Clone from volume A (sees the overwrite) into the second pool.
	cloneReq := e.volReq("clone-a", 0, e.params(paramPool, e.pool2))
	cloneReq.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: volA.GetVolumeId()},
	}}
	clone := try(cs.CreateVolume(ctx, cloneReq)).must(t).GetVolume()
	e.track(clone.GetVolumeId())
	if clone.GetCapacityBytes() != 11*itMiB {
		t.Fatalf("clone capacity %d, want the source's %d", clone.GetCapacityBytes(), 11*itMiB)
	}
	if got := e.readImage(clone.GetVolumeId(), 3*itMiB, int(itMiB)); !bytes.Equal(got, itPattern("overwritten", int(itMiB))) {
		t.Fatal("clone from volume does not show the source's current data")
	}
	cloneAgain := try(cs.CreateVolume(ctx, cloneReq)).must(t).GetVolume()
	if cloneAgain.GetVolumeId() != clone.GetVolumeId() {
		t.Fatal("clone retry gave another volume")
	}
	itNoUserSnaps(t, e, e.pool, volA.GetVolumeId())

	// Delete the source while a snapshot and a clone depend on it.
	try(cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volA.GetVolumeId(), Secrets: e.secrets})).must(t)
	vA, _ := DecodeVolumeID(volA.GetVolumeId())
	if !e.trashed(e.pool, vA.Image) {
		t.Fatal("deleted source with children is not in the trash")
	}
	try(cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volA.GetVolumeId(), Secrets: e.secrets})).must(t)

	// Restore from the snapshot after its source is gone: the data as it was.
	restoreReq := e.volReq("restore1", 16*itMiB, e.params())
	restoreReq.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap1.GetSnapshotId()},
	}}
	restore := try(cs.CreateVolume(ctx, restoreReq)).must(t).GetVolume()
	e.track(restore.GetVolumeId())
	if restore.GetCapacityBytes() != 16*itMiB {
		t.Fatalf("restore capacity %d, want 16 MiB", restore.GetCapacityBytes())
	}
	if got := e.readImage(restore.GetVolumeId(), 3*itMiB, len(data)); !bytes.Equal(got, data) {
		t.Fatal("restored data differs from what was written before the snapshot")
	}
	if tail := e.readImage(restore.GetVolumeId(), 12*itMiB, 4096); !bytes.Equal(tail, make([]byte, 4096)) {
		t.Fatal("grown part of the restore is not zero")
	}

	t.Run("expand", func(t *testing.T) { itExpand(t, e, cs, restore.GetVolumeId()) })
	t.Run("publish", func(t *testing.T) { itPublish(t, e, cs, restore.GetVolumeId()) })
	t.Run("validate", func(t *testing.T) { itValidate(t, e, cs, restore.GetVolumeId()) })
	t.Run("list", func(t *testing.T) {
		itList(t, e, cs, []string{volB.GetVolumeId(), clone.GetVolumeId(), restore.GetVolumeId()},
			snap1.GetSnapshotId(), volA.GetVolumeId())
	})
	t.Run("capacity", func(t *testing.T) { itCapacity(t, e, cs) })
	t.Run("watchers", func(t *testing.T) { itWatchers(t, e, cs, volB.GetVolumeId()) })

	// Delete the snapshot while a restore lives; the restore keeps its data.
	try(cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap1.GetSnapshotId(), Secrets: e.secrets})).must(t)
	try(cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap1.GetSnapshotId(), Secrets: e.secrets})).must(t)
	if got := e.readImage(restore.GetVolumeId(), 3*itMiB, len(data)); !bytes.Equal(got, data) {
		t.Fatal("restore lost its data when the snapshot was deleted")
	}

	// Delete the rest, each twice; a malformed ID is fine too.
	for _, id := range []string{restore.GetVolumeId(), clone.GetVolumeId(), volB.GetVolumeId(), "garbage-id"} {
		for i := 0; i < 2; i++ {
			try(cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: e.secrets})).must(t)
		}
	}
}

func itNoUserSnaps(t *testing.T, e *itEnv, pool, volID string) {
	t.Helper()
	img := e.openByID(volID)
	defer img.Close()
	for _, s := range try(img.GetSnapshotNames()).must(t) {
		ns := try(img.GetSnapNamespaceType(s.Id)).must(t)
		if ns == librbd.SnapNamespaceTypeUser {
			t.Fatalf("pool %s: temporary snapshot %s left on the source", pool, s.Name)
		}
	}
}

func itCreateArgs(t *testing.T, e *itEnv, cs *ControllerServer) {
	ctx := context.Background()
	noName := e.volReq("x", itMiB, e.params())
	noName.Name = ""
	_, err := cs.CreateVolume(ctx, noName)
	itCode(t, err, codes.InvalidArgument)

	noCaps := e.volReq("x", itMiB, e.params())
	noCaps.VolumeCapabilities = nil
	_, err = cs.CreateVolume(ctx, noCaps)
	itCode(t, err, codes.InvalidArgument)

	rwx := e.volReq("x", itMiB, e.params())
	rwx.VolumeCapabilities = []*csi.VolumeCapability{itMount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
	_, err = cs.CreateVolume(ctx, rwx)
	itCode(t, err, codes.InvalidArgument)

	_, err = cs.CreateVolume(ctx, e.volReq("x", itMiB, e.params("bogusKey", "1")))
	itCode(t, err, codes.InvalidArgument)

	_, err = cs.CreateVolume(ctx, e.volReq("x", itMiB, e.params(paramPool, "no-such-pool")))
	itCode(t, err, codes.InvalidArgument)

	missingSnap := e.volReq("x", itMiB, e.params())
	missingSnap.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "fake-snapshot"},
	}}
	_, err = cs.CreateVolume(ctx, missingSnap)
	itCode(t, err, codes.NotFound)

	badKey := e.volReq("x", itMiB, e.params())
	badKey.Secrets = map[string]string{secretUserID: "csi"}
	_, err = cs.CreateVolume(ctx, badKey)
	itCode(t, err, codes.InvalidArgument)
}

func itExpand(t *testing.T, e *itEnv, cs *ControllerServer, volID string) {
	ctx := context.Background()
	req := &csi.ControllerExpandVolumeRequest{
		VolumeId: volID, CapacityRange: &csi.CapacityRange{RequiredBytes: 40*itMiB - 5},
		VolumeCapability: itMount(itRWO), Secrets: e.secrets,
	}
	resp := try(cs.ControllerExpandVolume(ctx, req)).must(t)
	if resp.GetCapacityBytes() != 40*itMiB || !resp.GetNodeExpansionRequired() {
		t.Fatalf("expand: %v", resp)
	}
	resp = try(cs.ControllerExpandVolume(ctx, req)).must(t)
	if resp.GetCapacityBytes() != 40*itMiB {
		t.Fatalf("expand retry: %v", resp)
	}
	smaller := &csi.ControllerExpandVolumeRequest{
		VolumeId: volID, CapacityRange: &csi.CapacityRange{RequiredBytes: itMiB},
		VolumeCapability: itBlock(itRWO), Secrets: e.secrets,
	}
	resp = try(cs.ControllerExpandVolume(ctx, smaller)).must(t)
	if resp.GetCapacityBytes() != 40*itMiB || resp.GetNodeExpansionRequired() {
		t.Fatalf("expand to less on a block volume: %v", resp)
	}
	_, err := cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: volID, Secrets: e.secrets})
	itCode(t, err, codes.InvalidArgument)
	_, err = cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId: "fake", CapacityRange: &csi.CapacityRange{RequiredBytes: itMiB}, Secrets: e.secrets,
	})
	itCode(t, err, codes.NotFound)
}

func itPublish(t *testing.T, e *itEnv, cs *ControllerServer, volID string) {
	ctx := context.Background()
	id := try(DecodeVolumeID(volID)).must(t)
	pool := try(id.PoolName(e.conn)).must(t)
	itRegisterNodes(t, e.ioctx(pool), "node-1", "node-2", "node-3")
	_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: volID, NodeId: "node-never-registered", VolumeCapability: itMount(itRWO), Secrets: e.secrets,
	})
	itCode(t, err, codes.NotFound)
	pub := func(node string, c *csi.VolumeCapability, ro bool) error {
		_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: volID, NodeId: node, VolumeCapability: c, Readonly: ro, Secrets: e.secrets,
		})
		return err
	}
	try(0, pub("node-1", itMount(itRWO), false)).must(t)
	try(0, pub("node-1", itMount(itRWO), false)).must(t)
	itCode(t, pub("node-2", itMount(itRWO), false), codes.FailedPrecondition)
	itCode(t, pub("node-1", itMount(itRWO), true), codes.AlreadyExists)
	itCode(t, pub("node-1", itMount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), false),
		codes.InvalidArgument)
	_, err = cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: "fake", NodeId: "node-1", VolumeCapability: itMount(itRWO), Secrets: e.secrets,
	})
	itCode(t, err, codes.NotFound)

	_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: e.secrets})
	itCode(t, err, codes.FailedPrecondition)

	unpub := &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: "node-1", Secrets: e.secrets}
	try(cs.ControllerUnpublishVolume(ctx, unpub)).must(t)
	try(cs.ControllerUnpublishVolume(ctx, unpub)).must(t)

	// Read-only many: two nodes; then a single-node publish is refused.
	rox := itMount(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)
	try(0, pub("node-1", rox, true)).must(t)
	try(0, pub("node-2", rox, true)).must(t)
	itCode(t, pub("node-3", itMount(itRWO), false), codes.FailedPrecondition)
	try(cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, Secrets: e.secrets})).must(t)
	try(0, pub("node-3", itMount(itRWO), false)).must(t)
	try(cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
		VolumeId: volID, NodeId: "node-3", Secrets: e.secrets,
	})).must(t)
}

func itValidate(t *testing.T, e *itEnv, cs *ControllerServer, volID string) {
	ctx := context.Background()
	ok := try(cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
		VolumeId: volID, VolumeCapabilities: []*csi.VolumeCapability{itMount(itRWO), itBlock(itRWO)}, Secrets: e.secrets,
	})).must(t)
	if ok.GetConfirmed() == nil {
		t.Fatalf("supported capabilities not confirmed: %s", ok.GetMessage())
	}
	no := try(cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
		VolumeId:           volID,
		VolumeCapabilities: []*csi.VolumeCapability{itMount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)},
		Secrets:            e.secrets,
	})).must(t)
	if no.GetConfirmed() != nil || no.GetMessage() == "" {
		t.Fatalf("RWX filesystem confirmed: %v", no)
	}
	v, _ := DecodeVolumeID(volID)
	missingID := newVolumeID(KindVolume, v.ClusterID, v.PoolID, "never-created-"+itRandHex(4)).String()
	for _, id := range []string{missingID, "fake-volume"} {
		_, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
			VolumeId: id, VolumeCapabilities: []*csi.VolumeCapability{itMount(itRWO)}, Secrets: e.secrets,
		})
		itCode(t, err, codes.NotFound)
	}
}

func itList(t *testing.T, e *itEnv, cs *ControllerServer, vols []string, snapID, snapSource string) {
	ctx := context.Background()
	seen := map[string]int{}
	token := ""
	for pages := 0; ; pages++ {
		resp := try(cs.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})).must(t)
		if len(resp.GetEntries()) > 2 || pages > 10000 {
			t.Fatalf("page of %d entries", len(resp.GetEntries()))
		}
		for _, en := range resp.GetEntries() {
			seen[en.GetVolume().GetVolumeId()]++
		}
		if token = resp.GetNextToken(); token == "" {
			break
		}
	}
	for _, id := range vols {
		if seen[id] != 1 {
			t.Errorf("volume %s listed %d times", id, seen[id])
		}
	}
	if seen[snapSource] != 0 {
		t.Errorf("deleted volume %s listed", snapSource)
	}
	_, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "bad-token"})
	itCode(t, err, codes.Aborted)

	byID := try(cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: snapID, Secrets: e.secrets})).must(t)
	if len(byID.GetEntries()) != 1 || byID.GetEntries()[0].GetSnapshot().GetSourceVolumeId() != snapSource {
		t.Fatalf("list by snapshot ID: %v", byID)
	}
	bySource := try(cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: snapSource})).must(t)
	if len(bySource.GetEntries()) != 1 || bySource.GetEntries()[0].GetSnapshot().GetSnapshotId() != snapID {
		t.Fatalf("list by source: %v", bySource)
	}
	none := try(cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "fake-snap"})).must(t)
	if len(none.GetEntries()) != 0 {
		t.Fatalf("list by bogus ID: %v", none)
	}
	all := try(cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})).must(t)
	if len(all.GetEntries()) < 1 {
		t.Fatal("ListSnapshots lists nothing")
	}
	_, err = cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "bad"})
	itCode(t, err, codes.Aborted)
}

func itCapacity(t *testing.T, e *itEnv, cs *ControllerServer) {
	ctx := context.Background()
	resp := try(cs.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: e.params()})).must(t)
	if resp.GetAvailableCapacity() <= 0 {
		t.Fatalf("capacity %d", resp.GetAvailableCapacity())
	}
	try(cs.GetCapacity(ctx, &csi.GetCapacityRequest{})).must(t)
	_, err := cs.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: e.params(paramPool, "no-such-pool")})
	itCode(t, err, codes.InvalidArgument)
}

// itWatchers: an image opened elsewhere (as a mapping client keeps it)
// cannot be deleted.
func itWatchers(t *testing.T, e *itEnv, cs *ControllerServer, volID string) {
	img := e.openByID(volID)
	_, err := cs.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: e.secrets})
	img.Close()
	itCode(t, err, codes.FailedPrecondition)
}
