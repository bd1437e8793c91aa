package rbd

// Integration tests for crash recovery, races and leaks, against the real
// test cluster. Each builds the state a crash at one step would leave (the
// failpoint tests in tests/ kill a real process there; these reach the
// same states in-process and check the retry converges).

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// rawRef is the image a request name maps to, for poking at it directly.
func (e *itEnv) rawRef(kind IDKind, pool, name string) imageRef {
	e.t.Helper()
	poolID, err := e.conn.GetPoolByName(pool)
	if err != nil {
		e.t.Fatal(err)
	}
	return imageRef{id: newVolumeID(kind, e.clusterID, poolID, e.prefix+name), pool: pool, io: e.ioctx(pool)}
}

func (e *itEnv) del(cs *ControllerServer, id string) {
	e.t.Helper()
	var err error
	if strings.HasPrefix(id, idVersion+"-"+string(KindSnapshot)) {
		_, err = cs.DeleteSnapshot(context.Background(), &csi.DeleteSnapshotRequest{SnapshotId: id, Secrets: e.secrets})
	} else {
		_, err = cs.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: id, Secrets: e.secrets})
	}
	if err != nil {
		e.t.Fatalf("delete %s: %v", id, err)
	}
}

func (e *itEnv) fromVolume(name string, src string) *csi.CreateVolumeRequest {
	req := e.volReq(name, 0, e.params())
	req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src},
	}}
	return req
}

func (e *itEnv) fromSnapshot(name string, snap string) *csi.CreateVolumeRequest {
	req := e.volReq(name, 0, e.params())
	req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap},
	}}
	return req
}

func (e *itEnv) snapReq(name, src string) *csi.CreateSnapshotRequest {
	return &csi.CreateSnapshotRequest{Name: e.prefix + name, SourceVolumeId: src, Secrets: e.secrets}
}

func TestIntegrationCrashStates(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	ctx := context.Background()
	defer e.assertClean()

	// Crash after the image was created, before its record.
	half := e.rawRef(KindVolume, e.pool, "half")
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := librbd.CreateImage(half.io, half.id.Image, uint64(5*itMiB), opts); err != nil {
		t.Fatal(err)
	}
	vol := try(cs.CreateVolume(ctx, e.volReq("half", 9*itMiB, e.params()))).must(t).GetVolume()
	e.track(vol.GetVolumeId())
	if vol.GetCapacityBytes() != 9*itMiB {
		t.Fatalf("half-made image not re-made: %v", vol)
	}

	// Crash after the record, before the commit marker: resumed, same creation.
	info := try(inspect(half)).must(t)
	if err := removeMeta(half, metaCommitted); err != nil {
		t.Fatal(err)
	}
	again := try(cs.CreateVolume(ctx, e.volReq("half", 9*itMiB, e.params()))).must(t).GetVolume()
	if again.GetVolumeId() != vol.GetVolumeId() || try(inspect(half)).must(t).record != info.record {
		t.Fatal("recorded image was not resumed as it was")
	}
	e.writeImage(vol.GetVolumeId(), 0, itPattern("src", int(itMiB)))

	// Clone from volume: crash after the temporary snapshot.
	target := e.rawRef(KindVolume, e.pool, "clone-after-snap")
	if err := ensureSnap(half, target.id.Image); err != nil {
		t.Fatal(err)
	}
	c1 := try(cs.CreateVolume(ctx, e.fromVolume("clone-after-snap", vol.GetVolumeId()))).must(t).GetVolume()
	e.track(c1.GetVolumeId())
	itNoUserSnaps(t, e, e.pool, vol.GetVolumeId())

	// Clone from volume: crash right after the clone; it carries the
	// source's record and commit marker, which must not pass for its own.
	target = e.rawRef(KindVolume, e.pool, "clone-after-clone")
	if err := ensureSnap(half, target.id.Image); err != nil {
		t.Fatal(err)
	}
	if err := cloneImage(half, target.id.Image, target, &VolumeParameters{Features: librbd.FeatureLayering}); err != nil {
		t.Fatal(err)
	}
	if try(inspect(target)).must(t).state != stateUnrecorded {
		t.Fatal("a fresh clone looks recorded: inherited metadata passed as its own")
	}
	c2 := try(cs.CreateVolume(ctx, e.fromVolume("clone-after-clone", vol.GetVolumeId()))).must(t).GetVolume()
	e.track(c2.GetVolumeId())
	if got := e.readImage(c2.GetVolumeId(), 0, int(itMiB)); !bytes.Equal(got, itPattern("src", int(itMiB))) {
		t.Fatal("clone data differs")
	}
	itNoUserSnaps(t, e, e.pool, vol.GetVolumeId())

	// Snapshot: crash after the record (temporary snapshot still on the
	// source, no snapshot of its own yet, no commit marker).
	snapT := e.rawRef(KindSnapshot, e.pool, "snap-crash")
	if err := ensureSnap(half, snapT.id.Image); err != nil {
		t.Fatal(err)
	}
	if err := cloneImage(half, snapT.id.Image, snapT, &VolumeParameters{Features: librbd.FeatureLayering}); err != nil {
		t.Fatal(err)
	}
	rec := imageRecord{Image: snapT.id.Image, Name: e.prefix + "snap-crash", Source: "volume:" + vol.GetVolumeId(),
		Created: "2020-01-02T03:04:05Z"}
	if err := writeRecord(snapT, rec); err != nil {
		t.Fatal(err)
	}
	snap := try(cs.CreateSnapshot(ctx, e.snapReq("snap-crash", vol.GetVolumeId()))).must(t).GetSnapshot()
	e.track(snap.GetSnapshotId())
	if !snap.GetCreationTime().AsTime().Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("resumed snapshot has creation time %v", snap.GetCreationTime().AsTime())
	}
	itNoUserSnaps(t, e, e.pool, vol.GetVolumeId())
	r := try(cs.CreateVolume(ctx, e.fromSnapshot("from-crashed-snap", snap.GetSnapshotId()))).must(t).GetVolume()
	e.track(r.GetVolumeId())
	if got := e.readImage(r.GetVolumeId(), 0, int(itMiB)); !bytes.Equal(got, itPattern("src", int(itMiB))) {
		t.Fatal("restore from resumed snapshot differs")
	}

	// Delete: source trashed; its child removed behind our back (a crash
	// before reaping). The next delete in the pool sweeps the trash.
	e.del(cs, vol.GetVolumeId())
	if !e.trashed(e.pool, half.id.Image) {
		t.Fatal("source with children not trashed")
	}
	for _, id := range []string{c1.GetVolumeId(), c2.GetVolumeId(), r.GetVolumeId()} {
		e.del(cs, id)
	}
	if err := librbd.GetImage(snapT.io, snapT.id.Image).Trash(0); err != nil { // crash: moved, never reaped
		t.Fatal(err)
	}
	forceTrashRemove(t, e, snapT)
	e.del(cs, snap.GetSnapshotId())
	if e.trashed(e.pool, half.id.Image) {
		t.Fatal("trashed source without children was not swept")
	}
}

func removeMeta(ref imageRef, key string) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return err
	}
	defer img.Close()
	return img.RemoveMetadata(key)
}

// forceTrashRemove removes a trashed image the way a crashed delete would
// have, without reaping its parent.
func forceTrashRemove(t *testing.T, e *itEnv, ref imageRef) {
	t.Helper()
	for _, tr := range try(librbd.GetTrashList(ref.io)).must(t) {
		if tr.Name != ref.id.Image {
			continue
		}
		img := try(librbd.OpenImageById(ref.io, tr.Id, librbd.NoSnapshot)).must(t)
		for _, s := range try(img.GetSnapshotNames()).must(t) {
			if err := img.RemoveSnapByID(s.Id); err != nil {
				t.Fatal(err)
			}
		}
		img.Close()
		if err := librbd.TrashRemove(ref.io, tr.Id, true); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIntegrationAdminTrashLeftAlone(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	vol := try(cs.CreateVolume(context.Background(), e.volReq("admin", itMiB, e.params()))).must(t).GetVolume()
	e.track(vol.GetVolumeId())
	ref := e.rawRef(KindVolume, e.pool, "admin")
	if err := librbd.GetImage(ref.io, ref.id.Image).Trash(0); err != nil {
		t.Fatal(err)
	}
	e.del(cs, vol.GetVolumeId()) // missing now: sweeps the trash
	if !e.trashed(e.pool, ref.id.Image) {
		t.Fatal("an image an admin moved to the trash was purged")
	}
	forceTrashRemove(t, e, ref)
	e.assertClean()
}

// TestIntegrationTwoControllers: two controller processes (separate RADOS
// clients) serve the same names at once; exactly one image each, every
// caller gets the same answer.
func TestIntegrationTwoControllers(t *testing.T) {
	e := newITEnv(t)
	a, b := e.controller(), e.controller()
	defer e.assertClean()
	const callers = 6
	for _, name := range []string{"race-1", "race-2"} {
		ids := make([]string, callers)
		var wg sync.WaitGroup
		for i := 0; i < callers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				cs := a
				if i%2 == 1 {
					cs = b
				}
				ids[i] = createRetrying(t, cs, e.volReq(name, 4*itMiB, e.params()))
			}(i)
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("callers got %v", ids)
			}
		}
		e.track(ids[0])
		v := try(DecodeVolumeID(ids[0])).must(t)
		if e.trashed(e.pool, v.Image) {
			t.Fatal("a racing create left a second image in the trash")
		}
	}
	for name := range map[string]bool{"race-1": true, "race-2": true} {
		ref := e.rawRef(KindVolume, e.pool, name)
		e.del(b, ref.id.String())
	}
}

// createRetrying retries Aborted like the provisioner does.
func createRetrying(t *testing.T, cs *ControllerServer, req *csi.CreateVolumeRequest) string {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := cs.CreateVolume(context.Background(), req)
		if err == nil {
			return resp.GetVolume().GetVolumeId()
		}
		if status.Code(err) != codes.Aborted || time.Now().After(deadline) {
			t.Errorf("CreateVolume: %v", err)
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationLocks: a backend lease held by another process, and an
// in-process lock, both answer Aborted at once; nothing leaks.
func TestIntegrationLocks(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	defer e.assertClean()
	ref := e.rawRef(KindVolume, e.pool, "locked")
	e.images[e.pool] = map[string]bool{ref.id.Image: true}
	e.ids[e.pool] = map[string]bool{}

	other := e.controller()
	s := try(other.openSession(context.Background(), e.clusterID, e.secrets)).must(t)
	l := try(acquireLease(s.conn, e.pool, ref.id.Image, "test", DefaultLeaseDuration)).must(t)
	_, err := cs.CreateVolume(context.Background(), e.volReq("locked", itMiB, e.params()))
	itCode(t, err, codes.Aborted)
	if err := l.check(); err != nil {
		t.Fatalf("lease lost while held: %v", err)
	}
	if err := l.renew(); err != nil {
		t.Fatalf("must-renew of a held lease: %v", err)
	}
	l.release()
	s.close()

	key := "create/" + e.prefix + "locked"
	if !cs.locks.TryAcquire(key) {
		t.Fatal("lock taken")
	}
	_, err = cs.CreateVolume(context.Background(), e.volReq("locked", itMiB, e.params()))
	itCode(t, err, codes.Aborted)
	cs.locks.Release(key)

	vol := try(cs.CreateVolume(context.Background(), e.volReq("locked", itMiB, e.params()))).must(t).GetVolume()
	e.track(vol.GetVolumeId())
	e.del(cs, vol.GetVolumeId())
}

// TestIntegrationCloneDepth: snapshot/restore chains are flattened once
// deeper than maxCloneDepth, and everything still deletes cleanly.
func TestIntegrationCloneDepth(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	ctx := context.Background()
	defer e.assertClean()
	vol := try(cs.CreateVolume(ctx, e.volReq("d0", 2*itMiB, e.params()))).must(t).GetVolume()
	e.track(vol.GetVolumeId())
	e.writeImage(vol.GetVolumeId(), 0, itPattern("depth", int(itMiB)))
	made := []string{vol.GetVolumeId()}
	cur := vol.GetVolumeId()
	maxDepth := 0
	for i := 1; i <= 4; i++ {
		snap := try(cs.CreateSnapshot(ctx, e.snapReq("ds"+string(rune('0'+i)), cur))).must(t).GetSnapshot()
		e.track(snap.GetSnapshotId())
		next := try(cs.CreateVolume(ctx, e.fromSnapshot("d"+string(rune('0'+i)), snap.GetSnapshotId()))).must(t).GetVolume()
		e.track(next.GetVolumeId())
		made = append(made, snap.GetSnapshotId(), next.GetVolumeId())
		for _, id := range []string{snap.GetSnapshotId(), next.GetVolumeId()} {
			if d := e.depth(cs, id); d > maxDepth {
				maxDepth = d
			}
		}
		cur = next.GetVolumeId()
	}
	if maxDepth == 0 || maxDepth > maxCloneDepth {
		t.Fatalf("deepest chain %d, want 1..%d", maxDepth, maxCloneDepth)
	}
	if got := e.readImage(cur, 0, int(itMiB)); !bytes.Equal(got, itPattern("depth", int(itMiB))) {
		t.Fatal("data lost along the chain")
	}
	for _, id := range made { // oldest first: parents go to the trash, then are reaped
		e.del(cs, id)
	}
}

func (e *itEnv) depth(cs *ControllerServer, id string) int {
	e.t.Helper()
	v, err := DecodeVolumeID(id)
	if err != nil {
		v = try(DecodeSnapshotID(id)).must(e.t)
	}
	s := try(cs.openSession(context.Background(), e.clusterID, e.secrets)).must(e.t)
	defer s.close()
	ref := try(s.resolve(v)).must(e.t)
	return try(cloneDepth(s, ref)).must(e.t)
}

// TestIntegrationSecretNotLogged plants a key, runs RPCs that succeed and
// fail with full logging, and checks the key shows nowhere.
func TestIntegrationSecretNotLogged(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	var logs bytes.Buffer
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", "5")
	_ = fs.Set("logtostderr", "false")
	klog.SetOutput(&logs)
	t.Cleanup(func() {
		_ = fs.Set("v", "0")
		_ = fs.Set("logtostderr", "true")
		klog.SetOutput(nil)
	})

	// A well-formed cephx key that is wrong, and a malformed one.
	raw := append([]byte{1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 0}, []byte("planted-secret-1")...)
	planted := base64.StdEncoding.EncodeToString(raw)
	malformed := base64.StdEncoding.EncodeToString([]byte("planted-malformed-0123456"))
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	stderr := captureStderr(t) // librados logs to fd 2 directly
	var texts []string
	for _, key := range []string{planted, malformed} {
		bad := e.volReq("secret", itMiB, e.params())
		bad.Secrets = map[string]string{secretUserID: "csi", secretUserKey: key}
		_, err := cs.CreateVolume(ctx, bad)
		if err == nil {
			t.Fatal("a wrong key worked")
		}
		t.Logf("wrong key: %v", err)
		texts = append(texts, err.Error(), Credentials{ID: "csi", Key: key}.String())
	}
	_, err := cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "x", Secrets: map[string]string{"userKey": planted}})
	klog.Flush()
	for _, text := range append(texts, err.Error(), logs.String(), stderr()) {
		if strings.Contains(text, planted) || strings.Contains(text, malformed) {
			t.Fatalf("planted key leaked: %q", text)
		}
	}
}

// captureStderr points fd 2 at a file until the returned func reads it back.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup2(int(f.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			_ = syscall.Dup2(saved, 2)
			_ = syscall.Close(saved)
			restored = true
		}
	}
	t.Cleanup(restore)
	return func() string {
		restore()
		data, _ := os.ReadFile(f.Name())
		t.Logf("stderr while capturing: %q", data)
		return string(data)
	}
}

// TestIntegrationSourceGoneMidCreate: a restore interrupted after its
// record, whose snapshot is deleted before the retry, can never finish; the
// retry says NotFound and removes the half-made image, and the trashed
// snapshot it held goes with it.
func TestIntegrationSourceGoneMidCreate(t *testing.T) {
	e := newITEnv(t)
	cs := e.controller()
	ctx := context.Background()
	defer e.assertClean()
	vol := try(cs.CreateVolume(ctx, e.volReq("gone-src", 2*itMiB, e.params()))).must(t).GetVolume()
	e.track(vol.GetVolumeId())
	snap := try(cs.CreateSnapshot(ctx, e.snapReq("gone-snap", vol.GetVolumeId()))).must(t).GetSnapshot()
	e.track(snap.GetSnapshotId())

	snapRef := e.rawRef(KindSnapshot, e.pool, "gone-snap")
	target := e.rawRef(KindVolume, e.pool, "gone-restore")
	e.images[e.pool][target.id.Image] = true
	if err := cloneImage(snapRef, snapRef.id.Image, target, &VolumeParameters{Features: librbd.FeatureLayering}); err != nil {
		t.Fatal(err)
	}
	rec := imageRecord{Image: target.id.Image, Name: e.prefix + "gone-restore",
		Source: "snapshot:" + snap.GetSnapshotId(), Created: time.Now().UTC().Format(time.RFC3339Nano)}
	if err := writeRecord(target, rec); err != nil {
		t.Fatal(err)
	}
	e.del(cs, snap.GetSnapshotId())
	if !e.trashed(e.pool, snapRef.id.Image) {
		t.Fatal("snapshot with a (half-made) child not trashed")
	}
	_, err := cs.CreateVolume(ctx, e.fromSnapshot("gone-restore", snap.GetSnapshotId()))
	itCode(t, err, codes.NotFound)
	if st := try(inspect(target)).must(t).state; st != stateMissing {
		t.Fatalf("half-made restore left in state %d", st)
	}
	if e.trashed(e.pool, snapRef.id.Image) {
		t.Fatal("trashed snapshot not reaped with its last child")
	}
	e.del(cs, vol.GetVolumeId())
}
