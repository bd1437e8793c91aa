package cfs

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// The operator's show and release, through a mount of their own: a live
// lease is released only with force, and its holder then fences itself;
// an abandoned one is released after one lease of watching.
func TestHolderToolShowAndRelease(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	const lease = 2 * time.Second
	a := env.node(t, "node-a", t.TempDir())
	a.holder = newLeaseHolder("node-a", lease, time.Second, a.fence)
	b := env.node(t, "node-b", t.TempDir())
	bHolder := newLeaseHolder("node-b", lease, time.Second, b.fence)
	b.holder = bHolder
	vol := env.volume(t, "pvc-holder-tool", nil)
	stagingA, _, _ := paths(t)
	stagingB, _, _ := paths(t)
	ctx := context.Background()
	rwo := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	q := HolderQuery{
		VolumeID: vol.VolumeId, ClientPath: standinPath, WorkDir: t.TempDir(),
		clientEnv: append(os.Environ(), "CFS_STANDIN_DATA_ROOT="+env.dataRoot, "CFS_STANDIN_RETRY_UNIT=10ms"),
	}

	st, err := ShowHolder(ctx, q)
	if err != nil || st.Generation != 0 {
		t.Fatalf("show of a fresh volume = %+v, %v", st, err)
	}
	if _, err := a.NodeStageVolume(ctx, stageReq(vol, stagingA, rwo)); err != nil {
		t.Fatal(err)
	}
	st, err = ShowHolder(ctx, q)
	if err != nil || st.Node != "node-a" || st.Generation != 1 || st.Expired || st.LeaseSeconds != 2 {
		t.Fatalf("show = %+v, %v", st, err)
	}
	if _, err := ReleaseHolder(ctx, q, false); !errors.Is(err, ErrWrongState) ||
		!strings.Contains(err.Error(), "live") {
		t.Fatalf("release of a live lease without force = %v", err)
	}
	if _, err := ReleaseHolder(ctx, q, true); err != nil {
		t.Fatalf("forced release: %v", err)
	}
	if !waitFor(2*lease, func() bool { e, _ := a.mounter.Lookup(stagingA); return e == nil }) {
		t.Fatal("node a did not fence itself after the forced release")
	}
	st, err = ShowHolder(ctx, q)
	if err != nil || st.Node != "" || st.ReleasedBy != "operator" || st.Generation != 2 {
		t.Fatalf("show after the release = %+v, %v", st, err)
	}

	// Node b takes it, then "dies": its renewals stop.
	if _, err := b.NodeStageVolume(ctx, stageReq(vol, stagingB, rwo)); err != nil {
		t.Fatalf("stage on b after the release: %v", err)
	}
	bHolder.close()
	q.Now = func() time.Time { return time.Now().Add(time.Hour) } // its renewal time looks old
	start := time.Now()
	if _, err := ReleaseHolder(ctx, q, false); err != nil {
		t.Fatalf("release of an abandoned lease: %v", err)
	}
	if waited := time.Since(start); waited < lease {
		t.Errorf("released after watching for %s, less than the lease", waited)
	}
	unstage(t, a, vol, stagingA)
	unstage(t, b, vol, stagingB)
}

func waitFor(wait time.Duration, f func() bool) bool {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f()
}
