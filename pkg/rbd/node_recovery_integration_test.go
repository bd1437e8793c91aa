package rbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestIntegrationDeadMapperRecovery kills the rbd-fuse process of a staged
// volume (what a plugin container restart does to it): health turns
// INACCESSIBLE, publish refuses, and a repeated NodeStage takes the dead
// stage down and stages again, with the data intact.
func TestIntegrationDeadMapperRecovery(t *testing.T) {
	env := needCeph(t)
	v := newITVolume(t, env, "it-recover", "ext4", false, 64<<20)
	ctx := context.Background()
	data := make([]byte, 64<<10)
	_, _ = rand.Read(data)

	twice(t, "stage", v.stage)
	twice(t, "publish", v.publish)
	v.write(t, data)
	twice(t, "unpublish", v.unpublish)

	pids := fuseProcesses(v.ns.stateDir)
	if len(pids) != 1 {
		t.Fatalf("rbd-fuse processes: %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return len(fuseProcesses(v.ns.stateDir)) == 0 })

	h, err := v.ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: v.id})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 1 {
		t.Fatalf("health with a dead mapper = %v, %v; want one INACCESSIBLE entry", h, err)
	}
	t.Logf("health: %v", h.GetVolumeHealth().GetHealthStatuses()[0])
	if err := v.publish(ctx); errorCode(err) != 9 { // FailedPrecondition
		t.Fatalf("publish with a dead mapper = %v, want FailedPrecondition", err)
	}

	start := time.Now()
	twice(t, "stage again", v.stage)
	t.Logf("recovery stage took %v", time.Since(start))
	if len(fuseProcesses(v.ns.stateDir)) != 1 {
		t.Error("no new rbd-fuse after re-stage")
	}
	twice(t, "publish", v.publish)
	if got := v.read(t, len(data)); !bytes.Equal(got, data) {
		t.Fatal("data differs after recovery")
	}
	twice(t, "unpublish", v.unpublish)
	twice(t, "unstage", v.unstage)
	v.assertNoLeftovers(t)
}

func waitFor(t *testing.T, max time.Duration, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(max)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
