package cfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// recordingHolder notes claims and releases, and what the staging path
// was at the time; it refuses claims while refuse is set.
type recordingHolder struct {
	mu       sync.Mutex
	ns       *NodeServer
	events   []string
	refuse   bool
	liveSeen []bool
}

func (h *recordingHolder) note(event string, c Claim) {
	st, _, _ := h.ns.stateOf(c.StagingPath, mustID(c.VolumeID).Name)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, event)
	h.liveSeen = append(h.liveSeen, st == mountedLive)
}

func (h *recordingHolder) Claim(_ context.Context, c Claim) error {
	h.note("claim", c)
	if h.refuse {
		return errors.New("held by node-b")
	}
	return nil
}

func (h *recordingHolder) Release(_ context.Context, c Claim) error {
	h.note("release", c)
	return nil
}

func mustID(s string) volumeID {
	id, _ := parseVolumeID(s)
	return id
}

func TestNodeClaimOrder(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	ns := env.node(t, "node-a", t.TempDir())
	h := &recordingHolder{ns: ns}
	ns.holder = h
	vol := env.volume(t, "pvc-claim", nil)
	staging, _, _ := paths(t)
	ctx := context.Background()
	rwo := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

	// A refused claim fails the stage and unmounts again.
	h.refuse = true
	if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwo)); err == nil {
		t.Fatal("stage succeeded with the claim refused")
	}
	if e, _ := ns.mounter.Lookup(staging); e != nil {
		t.Fatalf("left mounted after a refused claim: %+v", e)
	}
	h.refuse = false
	for i := 0; i < 2; i++ {
		if _, err := ns.NodeStageVolume(ctx, stageReq(vol, staging, rwo)); err != nil {
			t.Fatal(err)
		}
	}
	unstage(t, ns, vol, staging)

	want := []string{"claim", "claim", "claim", "release"}
	if len(h.events) != len(want) {
		t.Fatalf("events = %v, want %v", h.events, want)
	}
	for i := range want {
		// Every claim and the release see a live mount of the volume.
		if h.events[i] != want[i] || !h.liveSeen[i] {
			t.Errorf("event %d = %s (live %v), want %s on a live mount", i, h.events[i], h.liveSeen[i], want[i])
		}
	}
}

func TestNodeStageClientTrouble(t *testing.T) {
	t.Parallel()
	env := newNodeEnv(t, emulator.Options{})
	vol := env.volume(t, "pvc-trouble", nil)
	ctx := context.Background()

	t.Run("master unreachable", func(t *testing.T) {
		ns := env.node(t, "node-a", t.TempDir())
		staging, _, _ := paths(t)
		req := stageReq(vol, staging, rwx())
		req.Secrets = map[string]string{"owner": testOwner} // no master lookup before the client
		env.srv.Close()
		_, err := ns.NodeStageVolume(ctx, req)
		wantCode(t, err, codes.Unavailable)
	})
	t.Run("client hangs", func(t *testing.T) {
		dir := t.TempDir()
		script := filepath.Join(dir, "hanging-client")
		body := "#!/bin/sh\n" +
			"if [ \"$1\" = -f ]; then while :; do sleep 1; done; fi\n" +
			"setsid \"$0\" -f -c \"$2\" </dev/null >/dev/null 2>&1 &\n" +
			"while :; do sleep 1; done\n"
		if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
		state := t.TempDir()
		ns := env.node(t, "node-a", state)
		ns.client = &execClient{path: script}
		staging, _, _ := paths(t)
		req := stageReq(vol, staging, rwx())
		req.Secrets = map[string]string{"owner": testOwner}
		tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := ns.NodeStageVolume(tctx, req)
		wantCode(t, err, codes.DeadlineExceeded)
		config := filepath.Join(ns.volumeDir(vol.VolumeId), "client.json")
		if pids := clientPIDs(config); len(pids) != 0 {
			t.Errorf("client processes left: %v", pids)
		}
		if recs, _ := ns.records.List(); len(recs) != 0 {
			t.Errorf("records left: %v", recs)
		}
	})
}
