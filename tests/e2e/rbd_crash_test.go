package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/rbd"
	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

const gib = int64(1) << 30

var rwo = csiclient.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "ext4")

// crashRun is one crash scenario: a call made with a failpoint armed, the
// plugin killed there with SIGKILL, then a fresh plugin retrying the call.
type crashRun struct {
	t     *testing.T
	env   cephEnv
	dir   string
	point string
}

// controller starts a controller process, with point armed when non-empty.
func (r *crashRun) controller(name, point string) *plugin {
	var env []string
	if point != "" {
		env = []string{"TKESTOR_FAILPOINTS=" + point}
	}
	// A short backend lease: the killed controller's lock on the image
	// lapses in seconds instead of the default 30 s.
	args := append(r.env.rbdArgs(r.t, r.dir, "controller", "ctrl"), "--backend-lease=4s")
	return startPlugin(r.t, r.dir, name, env, args...)
}

// crash calls call on a plugin armed at r.point and kills it with SIGKILL
// once the point is reached. Reports whether the point was on the path.
func (r *crashRun) crash(call func(c *csiclient.Client) error) bool {
	p := r.controller("armed", r.point)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = call(p.client)
	}()
	reached, err := p.waitFailpoint(r.point, done)
	if err != nil {
		r.t.Fatalf("%v\nplugin log:\n%s", err, p.log())
	}
	p.kill()
	<-done
	return reached
}

func (r *crashRun) createReq(name string, src *csi.VolumeContentSource) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: gib},
		VolumeCapabilities: []*csi.VolumeCapability{rwo}, Parameters: r.env.params(),
		Secrets: r.env.secrets(r.t), VolumeContentSource: src,
	}
}

// retry repeats a call through Aborted (a stale lease from the killed
// process may need its lease time to lapse) until it succeeds.
func retry[T any](t *testing.T, call func(ctx context.Context) (T, error)) T {
	t.Helper()
	resp, err := retryErr(call)
	if err != nil {
		t.Fatalf("retry failed: %v", err)
	}
	return resp
}

// retryErr is retry for goroutines, which must not call t.Fatal.
func retryErr[T any](call func(ctx context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		resp, err := call(ctx)
		cancel()
		if err == nil {
			return resp, nil
		}
		code := status.Code(err)
		if (code != codes.Aborted && code != codes.Unavailable && code != codes.DeadlineExceeded) ||
			time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(time.Second)
	}
}

// TestCrashCreateVolume kills the controller at every CreateVolume step for
// an empty volume, a clone of a volume and a restore of a snapshot, then
// proves the retry converges to one volume and deleting it leaves nothing.
func TestCrashCreateVolume(t *testing.T) {
	env := needCeph(t)
	for _, source := range []string{"empty", "clone", "restore"} {
		for _, point := range rbd.CreateFailpoints() {
			t.Run(source+"/"+point, func(t *testing.T) {
				crashCreate(t, env, source, point)
			})
		}
	}
}

func crashCreate(t *testing.T, env cephEnv, source, point string) {
	r := &crashRun{t: t, env: env, dir: t.TempDir(), point: point}
	before := env.inventory(t)
	ctrl := r.controller("setup", "")
	ctx := context.Background()
	src, cleanupSrc := makeSource(t, ctrl.client, r, source)

	name := fmt.Sprintf("crash-create-%s-%d", source, time.Now().UnixNano())
	req := r.createReq(name, src)
	ctrl.kill()
	reached := r.crash(func(c *csiclient.Client) error {
		_, err := c.Controller.CreateVolume(ctx, req)
		return err
	})
	if !reached {
		t.Logf("failpoint %s is not on the %s path; checked the plain retry only", point, source)
	}

	ctrl = r.controller("retry", "")
	first := retry(t, func(ctx context.Context) (*csi.CreateVolumeResponse, error) {
		return ctrl.client.Controller.CreateVolume(ctx, req)
	})
	second := retry(t, func(ctx context.Context) (*csi.CreateVolumeResponse, error) {
		return ctrl.client.Controller.CreateVolume(ctx, req)
	})
	if first.GetVolume().GetVolumeId() != second.GetVolume().GetVolumeId() {
		t.Fatalf("retries returned two volumes: %s and %s",
			first.GetVolume().GetVolumeId(), second.GetVolume().GetVolumeId())
	}
	assertImageCount(t, env, before, 1+sourceImages(source))

	deleteVolume(t, ctrl.client, r, first.GetVolume().GetVolumeId())
	cleanupSrc()
	assertSameInventory(t, env, before)
}

// makeSource creates what a clone or restore copies from.
func makeSource(
	t *testing.T, c *csiclient.Client, r *crashRun, source string,
) (*csi.VolumeContentSource, func()) {
	t.Helper()
	if source == "empty" {
		return nil, func() {}
	}
	ctx := context.Background()
	vol, err := c.Controller.CreateVolume(ctx, r.createReq(fmt.Sprintf("crash-src-%d", time.Now().UnixNano()), nil))
	if err != nil {
		t.Fatal(err)
	}
	volID := vol.GetVolume().GetVolumeId()
	if source == "clone" {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
				Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: volID}}},
			func() { deleteVolumeRetry(t, r, volID) }
	}
	snap, err := c.Controller.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{
		Name: fmt.Sprintf("crash-src-snap-%d", time.Now().UnixNano()), SourceVolumeId: volID,
		Secrets: r.env.secrets(t)})
	if err != nil {
		t.Fatal(err)
	}
	snapID := snap.GetSnapshot().GetSnapshotId()
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}},
		func() {
			deleteVolumeRetry(t, r, volID)
			deleteSnapshotRetry(t, r, snapID)
		}
}

// sourceImages is how many images the source of a create adds to the pool.
func sourceImages(source string) int {
	switch source {
	case "clone":
		return 1
	case "restore":
		return 2 // the source volume and the snapshot's image
	}
	return 0
}

func assertImageCount(t *testing.T, env cephEnv, before poolObjects, want int) {
	t.Helper()
	got := diff(env.inventory(t).Images, before.Images)
	if len(got) != want {
		t.Fatalf("pool %s has %d new images %v, want %d", env.pool, len(got), got, want)
	}
}

func deleteVolume(t *testing.T, c *csiclient.Client, r *crashRun, id string) {
	t.Helper()
	retry(t, func(ctx context.Context) (*csi.DeleteVolumeResponse, error) {
		return c.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: r.env.secrets(t)})
	})
}

// deleteVolumeRetry and deleteSnapshotRetry use a fresh controller: the
// test's own may have been killed.
func deleteVolumeRetry(t *testing.T, r *crashRun, id string) {
	t.Helper()
	p := r.controller("cleanup-vol", "")
	defer p.kill()
	deleteVolume(t, p.client, r, id)
}

func deleteSnapshotRetry(t *testing.T, r *crashRun, id string) {
	t.Helper()
	p := r.controller("cleanup-snap", "")
	defer p.kill()
	retry(t, func(ctx context.Context) (*csi.DeleteSnapshotResponse, error) {
		return p.client.Controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{
			SnapshotId: id, Secrets: r.env.secrets(t)})
	})
}
