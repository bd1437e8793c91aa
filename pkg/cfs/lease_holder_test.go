package cfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// fakeClock is a settable clock shared by the holders of a test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fenceLog records fences.
type fenceLog struct {
	mu     sync.Mutex
	events []string
	ch     chan string
}

func newFenceLog() *fenceLog { return &fenceLog{ch: make(chan string, 16)} }

func (f *fenceLog) fence(volumeID, reason string) {
	f.mu.Lock()
	f.events = append(f.events, volumeID+": "+reason)
	f.mu.Unlock()
	f.ch <- reason
}

func (f *fenceLog) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// testHolder is a lease holder for node on a plain directory; its
// renewers stop when the test ends.
func testHolder(t *testing.T, node string, lease, grace time.Duration, clock *fakeClock,
	fence *fenceLog,
) *leaseHolder {
	t.Helper()
	h := newLeaseHolder(node, lease, grace, fence.fence)
	if clock != nil {
		h.now = clock.Now
	}
	t.Cleanup(h.close)
	return h
}

func rwoClaim(root string) Claim {
	return Claim{VolumeID: "cfs1-vol@m:1", StagingPath: root, Rule: access.Rule{SingleNode: true},
		Mode: "SINGLE_NODE_WRITER"}
}

func currentLease(t *testing.T, root string) leaseView {
	t.Helper()
	dir, err := openLeaseDir(root, false)
	if err != nil || dir == nil {
		t.Fatalf("open lease dir: %v", err)
	}
	defer dir.close()
	v, err := dir.current()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLeaseClaimAndRefuse(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fences := newFenceLog()
	a := testHolder(t, "node-a", time.Minute, time.Minute, nil, fences)
	b := testHolder(t, "node-b", time.Minute, time.Minute, nil, fences)
	ctx := context.Background()

	if err := a.Claim(ctx, rwoClaim(root)); err != nil {
		t.Fatal(err)
	}
	if err := a.Claim(ctx, rwoClaim(root)); err != nil {
		t.Fatalf("repeated claim: %v", err)
	}
	if v := currentLease(t, root); v.gen != 1 || v.rec.Node != "node-a" || v.rec.LeaseSeconds != 60 {
		t.Fatalf("lease = %d %+v", v.gen, v.rec)
	}
	err := b.Claim(ctx, rwoClaim(root))
	if !errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), `node "node-a"`) {
		t.Fatalf("claim of node b = %v, want a refusal naming node-a", err)
	}
	// A reader elsewhere is refused as well; a multi-writer is not asked.
	rox := Claim{VolumeID: "cfs1-vol@m:1", StagingPath: root, Rule: access.Rule{ReadOnly: true}}
	if err := b.Claim(ctx, rox); !errors.Is(err, ErrWrongState) {
		t.Fatalf("ROX claim of node b = %v", err)
	}
	if err := b.Claim(ctx, Claim{VolumeID: "cfs1-vol@m:1", StagingPath: root}); err != nil {
		t.Fatalf("RWX claim of node b = %v", err)
	}

	if err := a.Release(ctx, rwoClaim(root)); err != nil {
		t.Fatal(err)
	}
	if v := currentLease(t, root); v.gen != 2 || !v.rec.released() || v.rec.ReleasedBy != "node-a" {
		t.Fatalf("after release: %d %+v", v.gen, v.rec)
	}
	if err := b.Claim(ctx, rox); err != nil {
		t.Fatalf("ROX claim after the release: %v", err)
	}
	if err := b.Claim(ctx, rwoClaim(root)); err != nil {
		t.Fatalf("claim of node b after the release: %v", err)
	}
	// Releasing what another node holds changes nothing.
	if err := a.Release(ctx, rwoClaim(root)); err != nil {
		t.Fatal(err)
	}
	if v := currentLease(t, root); v.gen != 3 || v.rec.Node != "node-b" {
		t.Fatalf("after a foreign release: %d %+v", v.gen, v.rec)
	}
	if fences.count() != 0 {
		t.Errorf("fences: %v", fences.events)
	}
}

// Two nodes claim a free volume at the same instant, many times: exactly
// one wins each round and the loser's refusal names the winner.
func TestLeaseRaceOfTwoClaimers(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fences := newFenceLog()
	nodes := []*leaseHolder{
		testHolder(t, "node-a", time.Minute, time.Minute, nil, fences),
		testHolder(t, "node-b", time.Minute, time.Minute, nil, fences),
	}
	wins := map[string]int{}
	for round := 0; round < 200; round++ {
		errs := raceClaims(nodes, rwoClaim(root))
		winner := checkOneWinner(t, round, nodes, errs)
		wins[winner.node]++
		if err := winner.Release(context.Background(), rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wins: %v", wins)
	if v := currentLease(t, root); v.gen != 400 {
		t.Errorf("generation after 200 claims and releases = %d, want 400", v.gen)
	}
	names, _ := os.ReadDir(filepath.Join(root, leaseDirName))
	if len(names) != leaseHistory+1 {
		t.Errorf("files kept: %d, want %d", len(names), leaseHistory+1)
	}
}

// Two nodes take over an expired lease at the same instant: one wins.
func TestLeaseRaceOfTwoTakers(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	fences := newFenceLog()
	const lease, grace = time.Minute, 30 * time.Second
	for round := 0; round < 50; round++ {
		root := t.TempDir()
		dead := testHolder(t, "node-dead", lease, grace, clock, fences)
		if err := dead.Claim(context.Background(), rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
		dead.close() // it stops renewing, as a crashed node does
		takers := []*leaseHolder{
			testHolder(t, "node-a", lease, grace, clock, fences),
			testHolder(t, "node-b", lease, grace, clock, fences),
		}
		for _, errs := range [][]error{raceClaims(takers, rwoClaim(root))} {
			for _, err := range errs {
				if !errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), "node-dead") {
					t.Fatalf("claim of a live lease = %v", err)
				}
			}
		}
		clock.advance(lease + grace/2)
		for _, err := range raceClaims(takers, rwoClaim(root)) {
			if !strings.Contains(fmtErr(err), "not renewed for") {
				t.Fatalf("claim within the grace = %v", err)
			}
		}
		clock.advance(grace)
		checkOneWinner(t, round, takers, raceClaims(takers, rwoClaim(root)))
		if v := currentLease(t, root); v.gen != 2 {
			t.Fatalf("generation after the takeover = %d", v.gen)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// raceClaims runs one claim per holder, all released at once.
func raceClaims(holders []*leaseHolder, c Claim) []error {
	errs := make([]error, len(holders))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, h := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = h.Claim(context.Background(), c)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// checkOneWinner asserts exactly one nil error and refusals naming the
// winner, and returns the winner.
func checkOneWinner(t *testing.T, round int, holders []*leaseHolder, errs []error) *leaseHolder {
	t.Helper()
	var winner *leaseHolder
	for i, err := range errs {
		if err == nil {
			if winner != nil {
				t.Fatalf("round %d: two winners", round)
			}
			winner = holders[i]
		}
	}
	if winner == nil {
		t.Fatalf("round %d: no winner: %v", round, errs)
	}
	for _, err := range errs {
		if err != nil && (!errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), winner.node)) {
			t.Fatalf("round %d: loser's error %v does not name %s", round, err, winner.node)
		}
	}
	return winner
}

// A holder whose generation is superseded (a takeover or an operator's
// release) fences itself at its next renewal; so does one that cannot
// renew in time.
func TestLeaseRenewalFences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const lease = 300 * time.Millisecond

	t.Run("superseded", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		fences := newFenceLog()
		a := testHolder(t, "node-a", lease, time.Second, nil, fences)
		if err := a.Claim(ctx, rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lease) // a few renewals
		if v := currentLease(t, root); v.rec.Renewals == 0 {
			t.Fatalf("not renewed: %+v", v.rec)
		}
		dir, _ := openLeaseDir(root, false)
		if err := dir.create(&leaseRecord{Generation: 2, ReleasedBy: "operator"}); err != nil {
			t.Fatal(err)
		}
		dir.close()
		reason := waitFence(t, fences, lease)
		if !strings.Contains(reason, "released by operator") {
			t.Errorf("fence reason %q", reason)
		}
		if _, held := a.holding(rwoClaim(root).VolumeID); held {
			t.Error("still registered after the fence")
		}
	})
	t.Run("directory gone", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		fences := newFenceLog()
		a := testHolder(t, "node-a", lease, time.Second, nil, fences)
		if err := a.Claim(ctx, rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(root, leaseDirName), filepath.Join(root, "moved")); err != nil {
			t.Fatal(err)
		}
		waitFence(t, fences, lease)
	})
	t.Run("not renewed in time", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		fences := newFenceLog()
		clock := newFakeClock()
		a := testHolder(t, "node-a", lease, time.Second, clock, fences)
		if err := a.Claim(ctx, rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Hour) // a node that froze and woke up
		if reason := waitFence(t, fences, lease); !strings.Contains(reason, "not renewed for") {
			t.Errorf("fence reason %q", reason)
		}
	})
	t.Run("released, no fence", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		fences := newFenceLog()
		a := testHolder(t, "node-a", lease, time.Second, nil, fences)
		if err := a.Claim(ctx, rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx, rwoClaim(root)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * lease)
		if fences.count() != 0 {
			t.Errorf("fenced after a release: %v", fences.events)
		}
	})
}

func waitFence(t *testing.T, fences *fenceLog, lease time.Duration) string {
	t.Helper()
	select {
	case reason := <-fences.ch:
		return reason
	case <-time.After(3 * lease):
		t.Fatal("no fence within three leases")
	}
	return ""
}

// After a plugin restart the node's own lease is renewed again (as a new
// generation); a lease taken over meanwhile is reported lost.
func TestLeaseResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	fences := newFenceLog()
	clock := newFakeClock()
	before := testHolder(t, "node-a", time.Minute, time.Second, clock, fences)
	if err := before.Claim(ctx, rwoClaim(root)); err != nil {
		t.Fatal(err)
	}
	before.close()

	after := testHolder(t, "node-a", time.Minute, time.Second, clock, fences)
	resume := rwoClaim(root)
	resume.Resume = true
	if err := after.Claim(ctx, resume); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if v := currentLease(t, root); v.gen != 2 || v.rec.Node != "node-a" {
		t.Fatalf("after resume: %d %+v", v.gen, v.rec)
	}
	after.close()

	// Node b takes the volume over while node a's plugin is down.
	b := testHolder(t, "node-b", time.Minute, time.Second, clock, fences)
	_ = b.Claim(ctx, rwoClaim(root))
	clock.advance(2 * time.Minute)
	if err := b.Claim(ctx, rwoClaim(root)); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	again := testHolder(t, "node-a", time.Minute, time.Second, clock, fences)
	if err := again.Claim(ctx, resume); !errors.Is(err, errLeaseLost) || !strings.Contains(err.Error(), "node-b") {
		t.Fatalf("resume after a takeover = %v, want lost to node-b", err)
	}
	// A resume never takes a free volume.
	if err := b.Release(ctx, rwoClaim(root)); err != nil {
		t.Fatal(err)
	}
	if err := again.Claim(ctx, resume); !errors.Is(err, errLeaseLost) {
		t.Fatalf("resume of a released volume = %v", err)
	}
	if err := again.Claim(ctx, Claim{VolumeID: "x", StagingPath: t.TempDir(), Rule: resume.Rule,
		Resume: true}); !errors.Is(err, errLeaseLost) {
		t.Fatalf("resume without a lease directory = %v", err)
	}
}

// A symbolic link planted where the lease directory or a lease file goes
// is never followed: nothing is written through it.
func TestLeasePlantedLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	outside := t.TempDir()
	fences := newFenceLog()
	a := testHolder(t, "node-a", time.Minute, time.Minute, nil, fences)

	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, leaseDirName)); err != nil {
		t.Fatal(err)
	}
	if err := a.Claim(ctx, rwoClaim(root)); err == nil {
		t.Fatal("claim through a linked lease directory succeeded")
	}

	root2 := t.TempDir()
	if err := os.Mkdir(filepath.Join(root2, leaseDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x"), filepath.Join(root2, leaseDirName, "lease.1")); err != nil {
		t.Fatal(err)
	}
	// An unreadable generation 1 is held by an unknown node until it expires.
	if err := a.Claim(ctx, rwoClaim(root2)); !errors.Is(err, ErrWrongState) {
		t.Fatalf("claim over a planted link = %v", err)
	}
	if names, _ := os.ReadDir(outside); len(names) != 0 {
		t.Errorf("written through a link: %v", names)
	}
}
