package cfs

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

func TestCreateVolumeIdempotent(t *testing.T) {
	t.Parallel()
	for _, n := range []emulator.Numbering{emulator.Numbering2x, emulator.Numbering332, emulator.Numbering35} {
		t.Run(string(n), func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, emulator.Options{Numbering: n})
			cs := newTestController(t, server.ModeController)
			ctx := context.Background()

			// 1.5 GiB is rounded up to whole GiB and reported as allocated.
			req := createReq("pvc-one", tc.params(), 3*gi/2)
			first, err := cs.CreateVolume(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if first.Volume.CapacityBytes != 2*gi {
				t.Errorf("capacity = %d, want 2 GiB", first.Volume.CapacityBytes)
			}
			again, err := cs.CreateVolume(ctx, req)
			if err != nil || again.Volume.VolumeId != first.Volume.VolumeId {
				t.Fatalf("retry = %v, %v; want the same volume", again, err)
			}
			vol, ok, _ := tc.emu.Volume("tkestor-pvc-one")
			if !ok || vol.Owner != testOwner || vol.Capacity != 2 {
				t.Fatalf("backend volume = %+v, %v", vol, ok)
			}
			for k, v := range first.Volume.VolumeContext {
				if strings.Contains(v, testOwner) || k == "owner" {
					t.Errorf("volume context carries the owner: %s=%s", k, v)
				}
			}

			// A bigger size under the same name is another volume.
			_, err = cs.CreateVolume(ctx, createReq("pvc-one", tc.params(), 5*gi))
			wantCode(t, err, codes.AlreadyExists)
		})
	}
}

func TestCreateVolumeOwner(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	noOwner := map[string]string{"masterAddr": tc.addr}

	// The owner may come from the secret alone.
	req := createReq("pvc-secret", noOwner, gi)
	req.Secrets = map[string]string{"owner": "secretowner"}
	if _, err := cs.CreateVolume(ctx, req); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := tc.emu.Volume("tkestor-pvc-secret"); v.Owner != "secretowner" {
		t.Errorf("owner = %q", v.Owner)
	}

	// Never invented: no owner anywhere is refused.
	_, err := cs.CreateVolume(ctx, createReq("pvc-none", noOwner, gi))
	wantCode(t, err, codes.InvalidArgument)

	// Both given and different is refused rather than guessed.
	req = createReq("pvc-both", tc.params(), gi)
	req.Secrets = map[string]string{"owner": "someoneelse"}
	_, err = cs.CreateVolume(ctx, req)
	wantCode(t, err, codes.InvalidArgument)

	// The name taken by another owner: duplicate vol is not success.
	other := createReq("pvc-taken", noOwner, gi)
	other.Secrets = map[string]string{"owner": "intruder"}
	if _, err := cs.CreateVolume(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CreateVolume(ctx, createReq("pvc-taken", tc.params(), gi))
	wantCode(t, err, codes.AlreadyExists)
}

func TestCreateVolumeValidation(t *testing.T) {
	t.Parallel()
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	params := map[string]string{"masterAddr": "127.0.0.1:1", "owner": testOwner}
	block := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
	}
	tests := []struct {
		name string
		req  *csi.CreateVolumeRequest
		want codes.Code
	}{
		{"no name", createReq("", params, gi), codes.InvalidArgument},
		{"no caps", &csi.CreateVolumeRequest{Name: "x", Parameters: params}, codes.InvalidArgument},
		{"block", &csi.CreateVolumeRequest{Name: "x", Parameters: params,
			VolumeCapabilities: []*csi.VolumeCapability{block}}, codes.InvalidArgument},
		{"unknown param", createReq("x", map[string]string{"masterAddr": "m:1", "owner": "o", "bogus": "1"}, gi),
			codes.InvalidArgument},
		{"limit below required", &csi.CreateVolumeRequest{Name: "x", Parameters: params,
			VolumeCapabilities: []*csi.VolumeCapability{rwx()},
			CapacityRange:      &csi.CapacityRange{RequiredBytes: 2 * gi, LimitBytes: gi}}, codes.InvalidArgument},
		{"limit below a GiB", &csi.CreateVolumeRequest{Name: "x", Parameters: params,
			VolumeCapabilities: []*csi.VolumeCapability{rwx()},
			CapacityRange:      &csi.CapacityRange{RequiredBytes: gi + 1, LimitBytes: gi + 100}}, codes.OutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cs.CreateVolume(ctx, tt.req)
			wantCode(t, err, tt.want)
		})
	}
}

func TestCreateVolumeLostReply(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	if err := tc.emu.DropNextCreateReply(); err != nil {
		t.Fatal(err)
	}
	req := createReq("pvc-lost", tc.params(), gi)
	_, err := cs.CreateVolume(ctx, req)
	wantCode(t, err, codes.Unavailable)
	resp, err := cs.CreateVolume(ctx, req)
	if err != nil {
		t.Fatalf("retry after a lost reply: %v", err)
	}
	if v, _, _ := tc.emu.Volume("tkestor-pvc-lost"); v.Owner != testOwner || v.Capacity != 1 {
		t.Errorf("volume = %+v", v)
	}
	if resp.Volume.VolumeId != newVolumeID("tkestor-pvc-lost", []string{tc.addr}).String() {
		t.Errorf("ID = %s", resp.Volume.VolumeId)
	}
}

func TestHangingMaster(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	if err := tc.emu.Hang(1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := cs.CreateVolume(ctx, createReq("pvc-hang", tc.params(), gi))
	wantCode(t, err, codes.DeadlineExceeded)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v", d)
	}
	// The lock is free again and the master answers the next call.
	if _, err := cs.CreateVolume(context.Background(), createReq("pvc-hang", tc.params(), gi)); err != nil {
		t.Fatalf("next call: %v", err)
	}
}

func TestConcurrentCreateIsAborted(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	if err := tc.emu.Hang(1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = cs.CreateVolume(ctx, createReq("pvc-race", tc.params(), gi))
	}()
	for tc.emu.HungRequests() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := cs.CreateVolume(context.Background(), createReq("pvc-race", tc.params(), gi))
	wantCode(t, err, codes.Aborted)
	cancel()
	wg.Wait()
}

func TestDeleteVolume(t *testing.T) {
	t.Parallel()
	for _, mode := range []emulator.DeleteMode{emulator.DeleteDirect, emulator.DeleteDelayed} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, emulator.Options{Delete: mode, PurgeAfter: time.Hour})
			cs := newTestController(t, server.ModeController)
			ctx := context.Background()
			vol, err := cs.CreateVolume(ctx, createReq("pvc-del", tc.params(), gi))
			if err != nil {
				t.Fatal(err)
			}
			id := vol.Volume.VolumeId

			// A secret naming another owner may not delete it.
			_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id,
				Secrets: map[string]string{"owner": "intruder"}})
			wantCode(t, err, codes.PermissionDenied)

			for i := 0; i < 3; i++ { // idempotent while marked, either mode
				if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
					t.Fatalf("delete #%d: %v", i, err)
				}
			}
			// Re-creating the name while the master holds it is refused,
			// clearly, and without asking the master to create anything.
			before := len(tc.emu.Requests())
			_, err = cs.CreateVolume(ctx, createReq("pvc-del", tc.params(), gi))
			wantCode(t, err, codes.FailedPrecondition)
			if !strings.Contains(err.Error(), "marked for deletion") {
				t.Errorf("message does not say why: %v", err)
			}
			for _, r := range tc.emu.Requests()[before:] {
				if r.Path != "/admin/getVol" {
					t.Errorf("re-create sent %s", r.Path)
				}
			}
			if _, err := tc.emu.CompleteDeletions(); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
				t.Fatalf("delete after purge: %v", err)
			}
			if _, err := cs.CreateVolume(ctx, createReq("pvc-del", tc.params(), gi)); err != nil {
				t.Fatalf("re-create after purge: %v", err)
			}
		})
	}
}

func TestCreateVolumeTooFewDataNodes(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{DataNodes: 1, PurgeAfter: time.Hour})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	_, err := cs.CreateVolume(ctx, createReq("pvc-small", tc.params(), gi))
	wantCode(t, err, codes.ResourceExhausted)
	// The master keeps the half-made volume marked until it purges it.
	_, err = cs.CreateVolume(ctx, createReq("pvc-small", tc.params(), gi))
	wantCode(t, err, codes.FailedPrecondition)
}

func TestDeleteVolumeEdges(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	_, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{})
	wantCode(t, err, codes.InvalidArgument)
	if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "fake-vol-id"}); err != nil {
		t.Errorf("garbage ID: %v", err)
	}
	// A static volume (no prefix of ours) is never deleted.
	static := newVolumeID("somebodys-data", []string{tc.addr}).String()
	_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: static})
	wantCode(t, err, codes.FailedPrecondition)
	// A hashed ID needs its masters; the secret's must be the same cluster.
	hashed := volumeID{Name: "tkestor-x", Cluster: clusterKey([]string{"unknown:1"})}.String()
	_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: hashed})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: hashed,
		Secrets: map[string]string{"masterAddr": tc.addr}})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestExpandVolume(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, emulator.Options{})
	cs := newTestController(t, server.ModeController)
	ctx := context.Background()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-grow", tc.params(), gi))
	if err != nil {
		t.Fatal(err)
	}
	expand := func(bytes int64) (*csi.ControllerExpandVolumeResponse, error) {
		return cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
			VolumeId: vol.Volume.VolumeId, CapacityRange: &csi.CapacityRange{RequiredBytes: bytes}})
	}
	for i := 0; i < 2; i++ { // the retry is success, not the master's strict "not larger"
		resp, err := expand(3*gi - 1)
		if err != nil || resp.CapacityBytes != 3*gi || resp.NodeExpansionRequired {
			t.Fatalf("expand #%d = %v, %v", i, resp, err)
		}
	}
	if resp, err := expand(gi); err != nil || resp.CapacityBytes != 3*gi {
		t.Fatalf("expand to less = %v, %v; want the current 3 GiB", resp, err)
	}
	if v, _, _ := tc.emu.Volume("tkestor-pvc-grow"); v.Capacity != 3 {
		t.Errorf("backend capacity = %d", v.Capacity)
	}
	_, err = cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: vol.Volume.VolumeId})
	wantCode(t, err, codes.InvalidArgument)
	_, err = cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "fake-vol-id",
		CapacityRange: &csi.CapacityRange{RequiredBytes: gi}})
	wantCode(t, err, codes.NotFound)
	missing := newVolumeID("tkestor-missing", []string{tc.addr}).String()
	_, err = cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: missing,
		CapacityRange: &csi.CapacityRange{RequiredBytes: gi}})
	wantCode(t, err, codes.NotFound)
}
