package rwo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The ChubaoFS scenarios: two node plugins ("node-a", "node-b") of the
// real binary, each with its own state directory and stand-in FUSE
// clients, against one master emulator; every client of either node sees
// the same files, as ChubaoFS clients on two machines do.

const (
	cfsRWO  = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	cfsRWOP = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
	cfsROX  = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	cfsRWX  = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
)

// An RWO volume staged on node a is refused on node b, naming node a;
// once node a unstages, node b stages it and reads node a's data.
func TestCFSStagedOnOtherNode(t *testing.T) {
	c := newCFSCluster(t)
	a, b := c.node("node-a"), c.node("node-b")
	vol := c.volume("pvc-rwo-basic")
	pa, pb := c.paths("node-a", "basic"), c.paths("node-b", "basic")

	cfsMust(t, "stage on a", cfsStage(a, vol, pa.staging, cfsRWO))
	cfsMust(t, "publish on a", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWO))
	cfsWrite(t, filepath.Join(pa.target1, "data"), "written on node a")

	err := cfsStage(b, vol, pb.staging, cfsRWO)
	cfsWantRefusal(t, "stage on b while a holds it", err, "node-a")
	t.Logf("refusal: %s", cfsDescribe(err))
	if cfsIsMount(pb.staging) {
		t.Fatal("node b's staging path is mounted after the refusal")
	}

	cfsMust(t, "unpublish on a", cfsUnpublish(a, vol, pa.target1))
	cfsMust(t, "unstage on a", cfsUnstage(a, vol, pa.staging))
	cfsMust(t, "stage on b", cfsStage(b, vol, pb.staging, cfsRWO))
	cfsMust(t, "publish on b", cfsPublish(b, vol, pb.staging, pb.target1, cfsRWO))
	if got := cfsRead(t, filepath.Join(pb.target1, "data")); got != "written on node a" {
		t.Errorf("node b reads %q", got)
	}
	err = cfsStage(a, vol, pa.staging, cfsRWO)
	cfsWantRefusal(t, "stage on a while b holds it", err, "node-b")
	cfsMust(t, "unpublish on b", cfsUnpublish(b, vol, pb.target1))
	cfsMust(t, "unstage on b", cfsUnstage(b, vol, pb.staging))
}

// Both nodes stage the same single-node volume at the same instant, -races
// times, cycling through the single-node modes: exactly one wins each
// round, and the loser's refusal names the winner.
func TestCFSStageRaces(t *testing.T) {
	c := newCFSCluster(t)
	nodes := []*cfsPlugin{c.node("node-a"), c.node("node-b")}
	vol := c.volume("pvc-rwo-race")
	paths := []cfsPaths{c.paths("node-a", "race"), c.paths("node-b", "race")}
	modes := []csi.VolumeCapability_AccessMode_Mode{
		cfsRWO, csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER, cfsRWOP,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
	}

	wins := map[string]int{}
	var both, none int
	start := time.Now()
	for round := 0; round < *races; round++ {
		mode := modes[round%len(modes)]
		errs := make([]error, 2)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				errs[i] = cfsStage(nodes[i], vol, paths[i].staging, mode)
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
			t.Errorf("round %d (%s): nobody won: a: %s; b: %s", round, mode, cfsDescribe(errs[0]),
				cfsDescribe(errs[1]))
			continue
		case 2:
			both++
			t.Errorf("round %d (%s): BOTH nodes staged the volume", round, mode)
			for i := range nodes {
				cfsMust(t, "unstage", cfsUnstage(nodes[i], vol, paths[i].staging))
			}
			continue
		}
		w, l := winners[0], 1-winners[0]
		wins[nodes[w].name]++
		cfsWantRefusal(t, fmt.Sprintf("round %d (%s): loser", round, mode), errs[l], nodes[w].name)
		if cfsIsMount(paths[l].staging) {
			t.Fatalf("round %d: the loser's staging path is still mounted", round)
		}
		cfsMust(t, "unstage of the winner", cfsUnstage(nodes[w], vol, paths[w].staging))
	}
	took := time.Since(start)
	summary := fmt.Sprintf("cfs stage races: %d rounds in %s (%s per round): node-a won %d, node-b won %d, "+
		"both staged %d, nobody %d", *races, took.Round(time.Millisecond),
		(took / time.Duration(max(*races, 1))).Round(time.Millisecond), wins["node-a"], wins["node-b"], both, none)
	t.Log(summary)
	fmt.Println(summary)
}

// Read-only many: both nodes stage and read, and writes fail on both; a
// reader is refused while another node holds the volume for writing.
// Read-write many: both nodes stage and see each other's files.
func TestCFSMultiNodeModes(t *testing.T) {
	c := newCFSCluster(t)
	a, b := c.node("node-a"), c.node("node-b")

	t.Run("ROX", func(t *testing.T) {
		vol := c.volume("pvc-rox")
		pa, pb := c.paths("node-a", "rox"), c.paths("node-b", "rox")
		// Fill it through a writer on node a, which then blocks a reader.
		cfsMust(t, "stage rwo on a", cfsStage(a, vol, pa.staging, cfsRWO))
		cfsMust(t, "publish rwo on a", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWO))
		cfsWrite(t, filepath.Join(pa.target1, "dataset"), "shared data")
		cfsWantRefusal(t, "ROX stage on b while a writes", cfsStage(b, vol, pb.staging, cfsROX), "node-a")
		cfsMust(t, "unpublish on a", cfsUnpublish(a, vol, pa.target1))
		cfsMust(t, "unstage on a", cfsUnstage(a, vol, pa.staging))

		for _, n := range []struct {
			p     *cfsPlugin
			paths cfsPaths
		}{{a, pa}, {b, pb}} {
			cfsMust(t, "ROX stage on "+n.p.name, cfsStage(n.p, vol, n.paths.staging, cfsROX))
			cfsMust(t, "ROX publish on "+n.p.name, cfsPublish(n.p, vol, n.paths.staging, n.paths.target1, cfsROX))
		}
		for _, target := range []string{pa.target1, pb.target1} {
			if got := cfsRead(t, filepath.Join(target, "dataset")); got != "shared data" {
				t.Errorf("%s reads %q", target, got)
			}
			err := os.WriteFile(filepath.Join(target, "write-attempt"), []byte("x"), 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("write on %s = %v, want EROFS", target, err)
			}
		}
		for _, n := range []struct {
			p     *cfsPlugin
			paths cfsPaths
		}{{a, pa}, {b, pb}} {
			cfsMust(t, "unpublish", cfsUnpublish(n.p, vol, n.paths.target1))
			cfsMust(t, "unstage", cfsUnstage(n.p, vol, n.paths.staging))
		}
	})

	t.Run("RWX", func(t *testing.T) {
		vol := c.volume("pvc-rwx")
		pa, pb := c.paths("node-a", "rwx"), c.paths("node-b", "rwx")
		cfsMust(t, "stage on a", cfsStage(a, vol, pa.staging, cfsRWX))
		cfsMust(t, "publish on a", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWX))
		cfsMust(t, "stage on b", cfsStage(b, vol, pb.staging, cfsRWX))
		cfsMust(t, "publish on b", cfsPublish(b, vol, pb.staging, pb.target1, cfsRWX))
		cfsWrite(t, filepath.Join(pa.target1, "from-a"), "a")
		cfsWrite(t, filepath.Join(pb.target1, "from-b"), "b")
		for _, target := range []string{pa.target1, pb.target1} {
			if cfsRead(t, filepath.Join(target, "from-a")) != "a" || cfsRead(t, filepath.Join(target, "from-b")) != "b" {
				t.Errorf("%s does not see both nodes' files", target)
			}
		}
		cfsMust(t, "unpublish on a", cfsUnpublish(a, vol, pa.target1))
		cfsMust(t, "unstage on a", cfsUnstage(a, vol, pa.staging))
		cfsMust(t, "unpublish on b", cfsUnpublish(b, vol, pb.target1))
		cfsMust(t, "unstage on b", cfsUnstage(b, vol, pb.staging))
	})
}

// RWOP: a second publish target on the same node is refused.
func TestCFSSingleWriterSecondTarget(t *testing.T) {
	c := newCFSCluster(t)
	a := c.node("node-a")
	vol := c.volume("pvc-rwop")
	pa := c.paths("node-a", "rwop")
	cfsMust(t, "stage", cfsStage(a, vol, pa.staging, cfsRWOP))
	cfsMust(t, "publish", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWOP))
	err := cfsPublish(a, vol, pa.staging, pa.target2, cfsRWOP)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second target = %v, want FailedPrecondition", err)
	}
	if cfsIsMount(pa.target2) {
		t.Fatal("the second target is mounted")
	}
	cfsMust(t, "unpublish", cfsUnpublish(a, vol, pa.target1))
	cfsMust(t, "unstage", cfsUnstage(a, vol, pa.staging))
}

// Node a dies (plugin and client SIGKILLed) while holding the volume: node
// b is refused, naming node a, until it has seen the lease unrenewed for
// the lease plus the grace; then it takes over and reads node a's data.
func TestCFSDeadHolder(t *testing.T) {
	c := newCFSCluster(t)
	a, b := c.node("node-a"), c.node("node-b")
	vol := c.volume("pvc-rwo-dead")
	pa, pb := c.paths("node-a", "dead"), c.paths("node-b", "dead")
	cfsMust(t, "stage on a", cfsStage(a, vol, pa.staging, cfsRWO))
	cfsMust(t, "publish on a", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWO))
	cfsWrite(t, filepath.Join(pa.target1, "data"), "last words of node a")

	clients := a.clientPIDs(vol.GetVolumeId())
	if len(clients) != 1 {
		t.Fatalf("node a's clients: %v", clients)
	}
	a.kill()
	cfsSignalAll(t, clients, unix.SIGKILL)

	refusals := 0
	took, ok := cfsEventually(20*cfsLease, 250*time.Millisecond, func() bool {
		err := cfsStage(b, vol, pb.staging, cfsRWO)
		if err != nil {
			cfsWantRefusal(t, "stage on b", err, "node-a")
			refusals++
		}
		return err == nil
	})
	if !ok {
		t.Fatalf("node b never took over (%d refusals)", refusals)
	}
	t.Logf("node b took over after %s and %d refusals (lease %s, grace %s)", took.Round(time.Millisecond),
		refusals, cfsLease, cfsGrace)
	if took < cfsLease+cfsGrace {
		t.Errorf("takeover after %s, before the lease plus grace (%s)", took, cfsLease+cfsGrace)
	}
	cfsMust(t, "publish on b", cfsPublish(b, vol, pb.staging, pb.target1, cfsRWO))
	if got := cfsRead(t, filepath.Join(pb.target1, "data")); got != "last words of node a" {
		t.Errorf("node b reads %q", got)
	}
	cfsMust(t, "unpublish on b", cfsUnpublish(b, vol, pb.target1))
	cfsMust(t, "unstage on b", cfsUnstage(b, vol, pb.staging))
}

// NodePublish with the staging mount gone is FailedPrecondition, and
// nothing is bound or written on the node's own disk.
func TestCFSPublishWithoutStagingMount(t *testing.T) {
	c := newCFSCluster(t)
	a := c.node("node-a")
	vol := c.volume("pvc-rwo-nostage")
	pa := c.paths("node-a", "nostage")
	cfsMust(t, "stage", cfsStage(a, vol, pa.staging, cfsRWO))
	if err := unix.Unmount(pa.staging, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	_, _ = cfsEventually(5*time.Second, 50*time.Millisecond, func() bool {
		return len(a.clientPIDs(vol.GetVolumeId())) == 0
	})

	err := cfsPublish(a, vol, pa.staging, pa.target1, cfsRWO)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("publish without a staging mount = %v, want FailedPrecondition", err)
	}
	if cfsIsMount(pa.target1) {
		t.Fatal("target mounted")
	}
	for _, dir := range []string{pa.staging, pa.target1} {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("%s on the node's disk holds %d entries", dir, len(entries))
		}
	}
	cfsMust(t, "unstage", cfsUnstage(a, vol, pa.staging))
}

// A node that froze (plugin and client stopped) loses the volume to node b
// after the lease plus grace; when it wakes up it fences itself at its
// next check: its client dies and its mounts go, so a pod that still has
// the mount open cannot write, and node b never sees such a write.
func TestCFSFrozenHolderFencesItself(t *testing.T) {
	c := newCFSCluster(t)
	a, b := c.node("node-a"), c.node("node-b")
	vol := c.volume("pvc-rwo-frozen")
	pa, pb := c.paths("node-a", "frozen"), c.paths("node-b", "frozen")
	cfsMust(t, "stage on a", cfsStage(a, vol, pa.staging, cfsRWO))
	cfsMust(t, "publish on a", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWO))
	cfsWrite(t, filepath.Join(pa.target1, "before"), "a")

	// The "pod": a directory handle into node a's mount, which a lazy
	// unmount does not take away (as a container's own bind mount).
	pod, err := unix.Open(pa.target1, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(pod) }()

	clients := a.clientPIDs(vol.GetVolumeId())
	a.signal(t, unix.SIGSTOP)
	cfsSignalAll(t, clients, unix.SIGSTOP)
	took, ok := cfsEventually(20*cfsLease, 250*time.Millisecond, func() bool {
		return cfsStage(b, vol, pb.staging, cfsRWO) == nil
	})
	if !ok {
		t.Fatal("node b never took over from the frozen node")
	}
	t.Logf("node b took over from the frozen node after %s", took.Round(time.Millisecond))
	cfsMust(t, "publish on b", cfsPublish(b, vol, pb.staging, pb.target1, cfsRWO))

	woke := time.Now()
	cfsSignalAll(t, clients, unix.SIGCONT)
	a.signal(t, unix.SIGCONT)
	fenced, ok := cfsEventually(cfsLease, 20*time.Millisecond, func() bool {
		return len(a.clientPIDs(vol.GetVolumeId())) == 0 && !cfsIsMount(pa.target1) && !cfsIsMount(pa.staging)
	})
	if !ok {
		t.Fatalf("node a did not fence itself within the lease of waking up:\n%s", a.log())
	}
	t.Logf("node a fenced itself %s after waking up (renewal interval %s)", fenced.Round(time.Millisecond),
		cfsLease/3)
	fd, err := unix.Openat(pod, "after-wake", unix.O_WRONLY|unix.O_CREAT, 0o644)
	if err == nil {
		_ = unix.Close(fd)
		t.Fatal("a write through node a's old mount succeeded after the fence")
	}
	t.Logf("write through node a's old mount %s after waking: %v", time.Since(woke).Round(time.Millisecond), err)
	if _, err := os.Stat(filepath.Join(pb.target1, "after-wake")); !os.IsNotExist(err) {
		t.Errorf("node b sees a file node a wrote after losing the lease: %v", err)
	}
	if got := cfsRead(t, filepath.Join(pb.target1, "before")); got != "a" {
		t.Errorf("node b reads %q", got)
	}
	cfsMust(t, "unpublish on b", cfsUnpublish(b, vol, pb.target1))
	cfsMust(t, "unstage on b", cfsUnstage(b, vol, pb.staging))
	// Kubernetes' clean-up on node a still works.
	cfsMust(t, "unpublish on a", cfsUnpublish(a, vol, pa.target1))
	cfsMust(t, "unstage on a", cfsUnstage(a, vol, pa.staging))
}

// A plugin restart (its clients keep serving) resumes renewing: node b
// stays refused through several leases, and node a's pod keeps writing.
func TestCFSRestartResumesRenewal(t *testing.T) {
	c := newCFSCluster(t)
	a, b := c.node("node-a"), c.node("node-b")
	vol := c.volume("pvc-rwo-restart")
	pa, pb := c.paths("node-a", "restart"), c.paths("node-b", "restart")
	cfsMust(t, "stage on a", cfsStage(a, vol, pa.staging, cfsRWO))
	cfsMust(t, "publish on a", cfsPublish(a, vol, pa.staging, pa.target1, cfsRWO))

	a = c.restart(a)
	deadline := time.Now().Add(2 * (cfsLease + cfsGrace))
	for i := 0; time.Now().Before(deadline); i++ {
		cfsWantRefusal(t, "stage on b after node a's restart", cfsStage(b, vol, pb.staging, cfsRWO), "node-a")
		cfsWrite(t, filepath.Join(pa.target1, fmt.Sprintf("still-writing-%d", i)), "a")
		time.Sleep(500 * time.Millisecond)
	}
	cfsMust(t, "unpublish on a", cfsUnpublish(a, vol, pa.target1))
	cfsMust(t, "unstage on a", cfsUnstage(a, vol, pa.staging))
	cfsMust(t, "stage on b", cfsStage(b, vol, pb.staging, cfsRWO))
	cfsMust(t, "unstage on b", cfsUnstage(b, vol, pb.staging))
}
