package rwo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// The rbd scenarios: two node plugin processes of the real binary
// (different --nodeid, state directories, the userspace mapper: rbd-fuse
// and a loop device) against the real test cluster.

const (
	rbdRWO  = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	rbdRWOP = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
	rbdROX  = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	rbdRWX  = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
)

func rbdFS(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return csiclient.MountCap(mode, "ext4")
}

// A volume staged on node A is refused on node B, naming A; once A
// unstages, B stages it and reads what A wrote. ControllerPublish knows
// both nodes (they registered) and no other.
func TestRBDStagedOnOtherNode(t *testing.T) {
	c := newRBDCluster(t)
	a, b := c.node("rwo-a"), c.node("rwo-b")
	vol := c.volume("pvc-rwo-basic", false)
	pa, pb := c.paths("rwo-a", "basic"), c.paths("rwo-b", "basic")

	rbdMustPublishTo(t, c, vol, "rwo-a")
	_, err := c.controller.client.Controller.ControllerPublishVolume(context.Background(),
		&csi.ControllerPublishVolumeRequest{
			VolumeId: vol.GetVolumeId(), NodeId: "rwo-never-registered", VolumeCapability: rbdFS(rbdRWO),
			Secrets: c.ceph.secrets(),
		})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("ControllerPublish to a node that never registered: got %v, want NotFound", err)
	}

	rbdMust(t, "stage on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on a", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false))
	rbdWriteSync(t, filepath.Join(pa.target1, "data"), "written on rwo-a")

	rbdWantRefusal(t, "stage on b while a holds it", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)), "rwo-a")
	if rbdIsMount(pb.staging) {
		t.Fatal("b's refused staging path is mounted")
	}
	show, out := c.holderCmd("show", "--volume-id="+vol.GetVolumeId())
	if show != 0 || !strings.Contains(out, "rwo-a") || !strings.Contains(out, "alive") {
		t.Fatalf("holder show: exit %d:\n%s", show, out)
	}
	t.Logf("holder show while a holds the volume:\n%s", out)

	rbdMust(t, "unpublish on a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage on a", rbdUnstage(a, vol, pa.staging))
	rbdMust(t, "stage on b", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on b", rbdPublish(b, vol, pb.staging, pb.target1, rbdFS(rbdRWO), false))
	if got := rbdRead(t, filepath.Join(pb.target1, "data")); got != "written on rwo-a" {
		t.Fatalf("b reads %q", got)
	}
	rbdMust(t, "unpublish on b", rbdUnpublish(b, vol, pb.target1))
	rbdMust(t, "unstage on b", rbdUnstage(b, vol, pb.staging))
}

// An image with the exclusive-lock feature: the hold is a lock of its own
// name, so the mapper still gets librbd's lock and writes (with the RBD
// advisory lock, the write hung), and heartbeats go on beside its I/O.
func TestRBDExclusiveLockFeature(t *testing.T) {
	c := newRBDCluster(t)
	a, b := c.node("xl-a"), c.node("xl-b")
	vol := c.volumeWith("pvc-xl", false, map[string]string{"imageFeatures": "layering,exclusive-lock"})
	pa, pb := c.paths("xl-a", "xl"), c.paths("xl-b", "xl")
	rbdMust(t, "stage on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on a", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false))
	for i := 0; i < 3; i++ { // across several heartbeats
		rbdWriteSync(t, filepath.Join(pa.target1, "data"), fmt.Sprintf("write %d on xl-a", i))
		time.Sleep(rbdLease / 2)
	}
	rbdWantRefusal(t, "stage on b", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)), "xl-a")
	rbdMust(t, "unpublish on a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage on a", rbdUnstage(a, vol, pa.staging))
	rbdMust(t, "stage on b", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on b", rbdPublish(b, vol, pb.staging, pb.target1, rbdFS(rbdRWO), false))
	if got := rbdRead(t, filepath.Join(pb.target1, "data")); got != "write 2 on xl-a" {
		t.Fatalf("b reads %q", got)
	}
	rbdMust(t, "unpublish on b", rbdUnpublish(b, vol, pb.target1))
	rbdMust(t, "unstage on b", rbdUnstage(b, vol, pb.staging))
}

func rbdMustPublishTo(t *testing.T, c *rbdCluster, vol *csi.Volume, node string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.controller.client.Controller.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), NodeId: node, VolumeCapability: rbdFS(rbdRWO), Secrets: c.ceph.secrets(),
	})
	rbdMust(t, "ControllerPublish to "+node, err)
	_, err = c.controller.client.Controller.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), NodeId: node, Secrets: c.ceph.secrets(),
	})
	rbdMust(t, "ControllerUnpublish from "+node, err)
}

// Both nodes stage the same single-node volume at the same instant, -races
// times, cycling through the single-node modes: exactly one wins each
// round, and the loser's refusal names the winner. The volume is a raw
// block one, so a round is the hold, rbd-fuse, a loop device and a bind
// mount (no filesystem check): the race is about the hold.
func TestRBDStageRaces(t *testing.T) {
	c := newRBDCluster(t)
	nodes := []*rbdPlugin{c.node("rwo-a"), c.node("rwo-b")}
	vol := c.volume("pvc-rwo-race", true)
	paths := []rbdPaths{c.paths("rwo-a", "race"), c.paths("rwo-b", "race")}
	modes := []csi.VolumeCapability_AccessMode_Mode{
		rbdRWO, csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER, rbdRWOP,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
	}

	wins := map[string]int{}
	var both, none, lostFresh int
	start := time.Now()
	for round := 0; round < *races; round++ {
		vc := csiclient.BlockCap(modes[round%len(modes)])
		errs := make([]error, 2)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				errs[i] = rbdStage(nodes[i], c, vol, paths[i].staging, vc)
			}()
		}
		close(gate)
		wg.Wait()

		var winners []int
		for i, err := range errs {
			if err == nil {
				winners = append(winners, i)
			}
		}
		switch len(winners) {
		case 0:
			none++
			t.Errorf("round %d (%s): nobody won: a: %s; b: %s", round, vc.GetAccessMode().GetMode(),
				rbdDescribe(errs[0]), rbdDescribe(errs[1]))
			continue
		case 2:
			both++
			t.Errorf("round %d (%s): BOTH nodes staged the volume", round, vc.GetAccessMode().GetMode())
			for i := range nodes {
				rbdMust(t, "unstage", rbdUnstage(nodes[i], vol, paths[i].staging))
			}
			continue
		}
		w, l := winners[0], 1-winners[0]
		wins[nodes[w].name]++
		// A loser whose fresh hold was broken by the winner means a live
		// claim was taken over (before claims had their own cookies, an
		// observer mistook a new claim without a record yet for an old,
		// abandoned one and fenced a live node). One node still won, but
		// that is a failure of the hold.
		if status.Code(errs[l]) == codes.FailedPrecondition &&
			strings.Contains(errs[l].Error(), "single-node hold lost") {
			lostFresh++
			t.Errorf("round %d: %s's fresh hold was taken over: %v", round, nodes[l].name, errs[l])
			rbdMust(t, "unstage of the winner", rbdUnstage(nodes[w], vol, paths[w].staging))
			continue
		}
		rbdWantRefusal(t, fmt.Sprintf("round %d: loser", round), errs[l], nodes[w].name)
		rbdMust(t, "unstage of the winner", rbdUnstage(nodes[w], vol, paths[w].staging))
	}
	took := time.Since(start)
	if fenced := c.fencedOn(vol); len(fenced) > 0 {
		t.Errorf("a race fenced a live node's clients: %v", fenced)
	}
	summary := fmt.Sprintf("rbd stage races: %d rounds in %s (%s per round): rwo-a won %d, rwo-b won %d, "+
		"both staged %d, nobody %d; loser's fresh hold broken %d", *races, took.Round(time.Millisecond),
		(took / time.Duration(max(*races, 1))).Round(time.Millisecond), wins["rwo-a"], wins["rwo-b"], both, none,
		lostFresh)
	t.Log(summary)
	fmt.Println(summary)
}

// Read-only many: both nodes stage read-only and read, writes fail on
// both, and a writer is refused while they hold it. RWX raw block: both
// stage. RWX filesystem: refused at CreateVolume.
func TestRBDMultiNodeModes(t *testing.T) {
	c := newRBDCluster(t)
	a, b := c.node("rwo-a"), c.node("rwo-b")

	vol := c.volume("pvc-rox", false)
	pa, pb := c.paths("rwo-a", "rox"), c.paths("rwo-b", "rox")
	rbdMust(t, "stage rwo on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on a", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false))
	rbdWriteSync(t, filepath.Join(pa.target1, "shared"), "for the readers")
	rbdMust(t, "unpublish on a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage on a", rbdUnstage(a, vol, pa.staging))

	for _, n := range []struct {
		p  *rbdPlugin
		ps rbdPaths
	}{{a, pa}, {b, pb}} {
		rbdMust(t, "rox stage on "+n.p.name, rbdStage(n.p, c, vol, n.ps.staging, rbdFS(rbdROX)))
		rbdMust(t, "rox publish on "+n.p.name, rbdPublish(n.p, vol, n.ps.staging, n.ps.target1, rbdFS(rbdROX), true))
		if got := rbdRead(t, filepath.Join(n.ps.target1, "shared")); got != "for the readers" {
			t.Fatalf("%s reads %q", n.p.name, got)
		}
		err := os.WriteFile(filepath.Join(n.ps.target1, "new"), []byte("x"), 0o644)
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("write on %s's read-only volume: %v", n.p.name, err)
		}
	}
	rbdMust(t, "rox unpublish on b", rbdUnpublish(b, vol, pb.target1))
	rbdMust(t, "rox unstage on b", rbdUnstage(b, vol, pb.staging))
	rbdWantRefusal(t, "rwo stage on b while a reads", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)), "rwo-a")
	rbdMust(t, "rox unpublish on a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "rox unstage on a", rbdUnstage(a, vol, pa.staging))

	blk := c.volume("pvc-rwx-block", true)
	ba, bb := c.paths("rwo-a", "rwx"), c.paths("rwo-b", "rwx")
	rbdMust(t, "rwx block stage on a", rbdStage(a, c, blk, ba.staging, csiclient.BlockCap(rbdRWX)))
	rbdMust(t, "rwx block stage on b", rbdStage(b, c, blk, bb.staging, csiclient.BlockCap(rbdRWX)))
	rbdMust(t, "rwx unstage on a", rbdUnstage(a, blk, ba.staging))
	rbdMust(t, "rwx unstage on b", rbdUnstage(b, blk, bb.staging))

	ctx, cancel := context.WithTimeout(context.Background(), rbdCallWait)
	defer cancel()
	_, err := c.controller.client.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: fmt.Sprintf("pvc-rwx-fs-%d", time.Now().UnixNano()), Parameters: c.params(),
		CapacityRange:      &csi.CapacityRange{RequiredBytes: rbdVolSize},
		VolumeCapabilities: []*csi.VolumeCapability{rbdFS(rbdRWX)}, Secrets: c.ceph.secrets(),
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateVolume RWX filesystem: got %v, want InvalidArgument", err)
	}
}

// Single-writer (RWOP): a second publish target on the same node is
// FailedPrecondition.
func TestRBDSingleWriterSecondTarget(t *testing.T) {
	c := newRBDCluster(t)
	a := c.node("rwo-a")
	vol := c.volume("pvc-rwop", false)
	pa := c.paths("rwo-a", "rwop")
	rbdMust(t, "stage", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWOP)))
	rbdMust(t, "publish 1", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWOP), false))
	err := rbdPublish(a, vol, pa.staging, pa.target2, rbdFS(rbdRWOP), false)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second target of a single-writer volume: got %v, want FailedPrecondition", err)
	}
	rbdMust(t, "unpublish", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage", rbdUnstage(a, vol, pa.staging))
}

// NodePublish after the staging mount went away behind the plugin's back
// (a node reboot): FailedPrecondition, and nothing lands on the node's
// own disk.
func TestRBDPublishWithoutStagingMount(t *testing.T) {
	c := newRBDCluster(t)
	a := c.node("rwo-a")
	vol := c.volume("pvc-reboot", false)
	pa := c.paths("rwo-a", "reboot")
	rbdMust(t, "stage", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	if err := syscall.Unmount(pa.staging, 0); err != nil {
		t.Fatalf("unmount staging behind the plugin: %v", err)
	}
	err := rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("publish without a staging mount: got %v, want FailedPrecondition", err)
	}
	if rbdIsMount(pa.target1) {
		t.Fatal("the target path is mounted")
	}
	for _, dir := range []string{pa.staging, pa.target1} {
		entries, _ := os.ReadDir(dir)
		if len(entries) > 0 {
			t.Fatalf("files on the node's own disk in %s: %v", dir, entries)
		}
	}
	rbdMust(t, "unstage", rbdUnstage(a, vol, pa.staging))
}

// rbdDeadHolderWait bounds a takeover: the killed or frozen mapper's watch
// lasts the OSD's watch timeout (30 s), then lease + grace must pass
// without a heartbeat.
const rbdDeadHolderWait = 90 * time.Second

// Node A dies (its plugin and its rbd-fuse are killed with SIGKILL) while
// it holds a volume. B is refused at first; once A's heartbeat has stood
// still for lease + grace and A's client has left the image, B fences A's
// clients, takes the volume over and reads what A had synced.
func TestRBDDeadHolderTakeover(t *testing.T) {
	t.Parallel()
	c := newRBDCluster(t)
	a, b := c.node("dead-a"), c.node("dead-b")
	vol := c.volume("pvc-dead", false)
	pa, pb := c.paths("dead-a", "dead"), c.paths("dead-b", "dead")
	rbdMust(t, "stage on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on a", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false))
	rbdWriteSync(t, filepath.Join(pa.target1, "data"), "synced on dead-a before it died")
	mapperAddrs := a.record(t, vol.GetVolumeId()).ClientAddrs

	rbdKillNode(t, a, vol)
	rbdWantRefusal(t, "stage on b right after a died", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)), "dead-a")
	took, err := rbdStageUntil(b, c, vol, pb.staging, rbdFS(rbdRWO), rbdDeadHolderWait)
	rbdMust(t, "stage on b after the takeover", err)
	t.Logf("b took the volume over %s after a died (lease %s, grace %s, OSD watch timeout 30s)",
		took.Round(time.Second), rbdLease, rbdGrace)
	rbdMust(t, "publish on b", rbdPublish(b, vol, pb.staging, pb.target1, rbdFS(rbdRWO), false))
	if got := rbdRead(t, filepath.Join(pb.target1, "data")); got != "synced on dead-a before it died" {
		t.Fatalf("b reads %q", got)
	}
	rbdWantBlocklisted(t, c, mapperAddrs)

	rbdMust(t, "unpublish on b", rbdUnpublish(b, vol, pb.target1))
	rbdMust(t, "unstage on b", rbdUnstage(b, vol, pb.staging))
	a = c.restart(a)
	rbdMust(t, "unpublish on the restarted a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage on the restarted a", rbdUnstage(a, vol, pa.staging))
}

// The same death with automatic takeover off on B: B stays refused;
// `tkestor-csi holder release` refuses while A's client still has the
// image open, then fences and releases; B stages and reads A's data.
func TestRBDDeadHolderRelease(t *testing.T) {
	t.Parallel()
	c := newRBDCluster(t)
	a, b := c.node("release-a"), c.node("release-b", "--rwo-takeover-grace=0")
	vol := c.volume("pvc-release", false)
	pa, pb := c.paths("release-a", "release"), c.paths("release-b", "release")
	rbdMust(t, "stage on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on a", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false))
	rbdWriteSync(t, filepath.Join(pa.target1, "data"), "synced on release-a")
	mapperAddrs := a.record(t, vol.GetVolumeId()).ClientAddrs

	rbdKillNode(t, a, vol)
	err := rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO))
	rbdWantRefusal(t, "stage on b", err, "release-a")
	if !strings.Contains(err.Error(), "automatic takeover is off") {
		t.Fatalf("refusal does not say why it waits: %v", err)
	}
	code, out := c.holderCmd("release", "--volume-id="+vol.GetVolumeId())
	if code != 3 {
		t.Fatalf("holder release while a's client still has the image open: exit %d, want 3:\n%s", code, out)
	}
	waited, ok := rbdEventually(rbdDeadHolderWait, time.Second, func() bool {
		_, show := c.holderCmd("show", "--volume-id="+vol.GetVolumeId(), "--output=json")
		return !strings.Contains(show, `"watchers"`)
	})
	if !ok {
		t.Fatal("a's client never left the image")
	}
	t.Logf("a's client left the image %s after the kill", waited.Round(time.Second))
	code, out = c.holderCmd("release", "--volume-id="+vol.GetVolumeId())
	if code != 0 {
		t.Fatalf("holder release: exit %d:\n%s", code, out)
	}
	t.Logf("holder release:\n%s", out)
	rbdWantBlocklisted(t, c, mapperAddrs)

	rbdMust(t, "stage on b after the release", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on b", rbdPublish(b, vol, pb.staging, pb.target1, rbdFS(rbdRWO), false))
	if got := rbdRead(t, filepath.Join(pb.target1, "data")); got != "synced on release-a" {
		t.Fatalf("b reads %q", got)
	}
	rbdMust(t, "unpublish on b", rbdUnpublish(b, vol, pb.target1))
	rbdMust(t, "unstage on b", rbdUnstage(b, vol, pb.staging))
	a = c.restart(a)
	rbdMust(t, "unpublish on the restarted a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage on the restarted a", rbdUnstage(a, vol, pa.staging))
}

// Node A freezes (SIGSTOP of its plugin and its rbd-fuse: a VM paused, a
// node cut off) and comes back after B took over: A's client was fenced,
// so a write through A's loop device fails, and the blocklist lists A's
// client; A's plugin sees the hold is gone and reports the volume.
func TestRBDFrozenHolderFenced(t *testing.T) {
	t.Parallel()
	c := newRBDCluster(t)
	a, b := c.node("frozen-a"), c.node("frozen-b")
	vol := c.volume("pvc-frozen", false)
	pa, pb := c.paths("frozen-a", "frozen"), c.paths("frozen-b", "frozen")
	rbdMust(t, "stage on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "publish on a", rbdPublish(a, vol, pa.staging, pa.target1, rbdFS(rbdRWO), false))
	rbdWriteSync(t, filepath.Join(pa.target1, "data"), "synced on frozen-a")
	rec := a.record(t, vol.GetVolumeId())
	mappers := a.mapperPIDs(t, vol.GetVolumeId())

	a.signal(t, syscall.SIGSTOP)
	rbdSignalAll(t, mappers, syscall.SIGSTOP)
	took, err := rbdStageUntil(b, c, vol, pb.staging, rbdFS(rbdRWO), rbdDeadHolderWait)
	rbdMust(t, "stage on b while a is frozen", err)
	t.Logf("b took the frozen a's volume over after %s", took.Round(time.Second))
	rbdMust(t, "publish on b", rbdPublish(b, vol, pb.staging, pb.target1, rbdFS(rbdRWO), false))
	rbdWriteSync(t, filepath.Join(pb.target1, "data"), "written on frozen-b after the takeover")

	rbdSignalAll(t, mappers, syscall.SIGCONT)
	a.signal(t, syscall.SIGCONT)
	rbdWantFencedWrites(t, c, vol, rec.Mapping.Device)
	listed := rbdWantBlocklisted(t, c, rec.ClientAddrs)
	t.Logf("osd blocklist ls lists the fenced node's mapper client: %s", listed)

	_, ok := rbdEventually(30*time.Second, 500*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, err := a.client.Node.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: vol.GetVolumeId()})
		for _, s := range h.GetVolumeHealth().GetHealthStatuses() {
			if err == nil && s.GetReason() == "Fenced" {
				return true
			}
		}
		return false
	})
	if !ok {
		a.signal(t, syscall.SIGQUIT) // its goroutines, into its log
		time.Sleep(time.Second)
		t.Fatalf("the fenced node never reported its volume as fenced:\n%s", a.log())
	}
	if got := rbdRead(t, filepath.Join(pb.target1, "data")); got != "written on frozen-b after the takeover" {
		t.Fatalf("b reads %q", got)
	}
	rbdMust(t, "unpublish on b", rbdUnpublish(b, vol, pb.target1))
	rbdMust(t, "unstage on b", rbdUnstage(b, vol, pb.staging))
	rbdMust(t, "unpublish on a", rbdUnpublish(a, vol, pa.target1))
	rbdMust(t, "unstage on a", rbdUnstage(a, vol, pa.staging))
}

// rbdWantFencedWrites writes through a fenced node's device after it came
// back: the write must fail (EIO) and nothing may reach the image. (With
// librbd's writeback cache on, rbd-fuse acknowledged such writes into its
// cache for as long as we watched; the fuse mapper turns it off.)
func rbdWantFencedWrites(t *testing.T, c *rbdCluster, vol *csi.Volume, dev string) {
	t.Helper()
	const offset = rbdVolSize - 4096
	for i := 0; i < 3; i++ {
		err := rbdWriteDevice(dev, offset)
		if err == nil {
			t.Fatalf("write %d through the fenced node's %s succeeded", i+1, dev)
		}
		if i == 0 {
			t.Logf("write through the fenced node's %s after it came back: %v", dev, err)
		}
	}
	out, err := exec.Command("rbd", "-c", c.ceph.conf, "export", "--no-progress", c.image(vol), "-").Output()
	if err != nil {
		t.Fatalf("rbd export: %v", err)
	}
	if bytes.Contains(out[offset:], []byte("written after the takeover")) {
		t.Fatal("a write of the fenced node reached the image")
	}
}

// rbdKillNode kills a node plugin and the rbd-fuse serving vol on it with
// SIGKILL, as a node crash would.
func rbdKillNode(t *testing.T, p *rbdPlugin, vol *csi.Volume) {
	t.Helper()
	mappers := p.mapperPIDs(t, vol.GetVolumeId())
	p.kill()
	rbdSignalAll(t, mappers, syscall.SIGKILL)
}

func rbdSignalAll(t *testing.T, pids []int, sig syscall.Signal) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("signal %s to rbd-fuse %d: %v", sig, pid, err)
		}
	}
}

// rbdWantBlocklisted asserts that `ceph osd blocklist ls` lists every
// address, and returns the lines that do.
func rbdWantBlocklisted(t *testing.T, c *rbdCluster, addrs []string) string {
	t.Helper()
	if len(addrs) == 0 {
		t.Fatal("no mapper client address was recorded")
	}
	list := c.blocklisted()
	var lines []string
	for _, a := range addrs {
		found := false
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, a+" ") {
				found, lines = true, append(lines, l)
			}
		}
		if !found {
			t.Fatalf("%s is not blocklisted:\n%s", a, list)
		}
	}
	return strings.Join(lines, "; ")
}

// rbdEventually polls f every interval until it returns true or wait
// passes; it returns how long that took and whether f succeeded.
func rbdEventually(wait, interval time.Duration, f func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if f() {
			return time.Since(start), true
		}
		if time.Since(start) > wait {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}

// A restarted node plugin resumes the heartbeat of the volumes it still
// has staged (from its records), so no other node takes them over; a
// repeated NodeStage is fine and NodeUnstage releases with the key it kept.
func TestRBDRestartResumesHeartbeat(t *testing.T) {
	c := newRBDCluster(t)
	a, b := c.node("resume-a"), c.node("resume-b")
	vol := c.volume("pvc-resume", false)
	pa, pb := c.paths("resume-a", "resume"), c.paths("resume-b", "resume")
	rbdMust(t, "stage on a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))

	a.kill() // its rbd-fuse keeps serving the staged volume
	stale := rbdHeartbeat(t, c, vol)
	time.Sleep(rbdLease + rbdGrace)
	if now := rbdHeartbeat(t, c, vol); now != stale {
		t.Fatalf("heartbeat moved while the plugin was down: %s -> %s", stale, now)
	}
	a = c.restart(a)
	_, ok := rbdEventually(10*time.Second, 200*time.Millisecond, func() bool { return rbdHeartbeat(t, c, vol) != stale })
	if !ok {
		t.Fatalf("the restarted plugin did not resume the heartbeat:\n%s", a.log())
	}
	rbdWantRefusal(t, "stage on b", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)), "resume-a")
	rbdMust(t, "stage again on the restarted a", rbdStage(a, c, vol, pa.staging, rbdFS(rbdRWO)))
	rbdMust(t, "unstage on a", rbdUnstage(a, vol, pa.staging))
	rbdMust(t, "stage on b once a released it", rbdStage(b, c, vol, pb.staging, rbdFS(rbdRWO)))
	rbdMust(t, "unstage on b", rbdUnstage(b, vol, pb.staging))
}

// rbdHeartbeat is the holder's heartbeat as `holder show` reports it.
func rbdHeartbeat(t *testing.T, c *rbdCluster, vol *csi.Volume) string {
	t.Helper()
	code, out := c.holderCmd("show", "--volume-id="+vol.GetVolumeId(), "--output=json")
	if code != 0 {
		t.Fatalf("holder show: exit %d: %s", code, out)
	}
	var rep struct {
		Holders []struct {
			Heartbeat string `json:"heartbeat"`
		} `json:"holders"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil || len(rep.Holders) != 1 {
		t.Fatalf("holder show: %v: %s", err, out)
	}
	return rep.Holders[0].Heartbeat
}
