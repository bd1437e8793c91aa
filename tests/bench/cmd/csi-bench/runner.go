package main

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/tkestack/tkestor-csi/tests/bench/cephperf"
	"github.com/tkestack/tkestor-csi/tests/bench/procstat"
	"github.com/tkestack/tkestor-csi/tests/bench/stats"
)

// Phase names, as printed.
const (
	phCreateVolume     = "CreateVolume"
	phCreateSnapshot   = "CreateSnapshot"
	phDeleteSnapshot   = "DeleteSnapshot"
	phDeleteVolume     = "DeleteVolume"
	phCtrlPublish      = "ControllerPublish"
	phStagePublish     = "NodeStage+Publish"
	phUnpublishUnstage = "NodeUnpublish+Unstage"
	phCtrlUnpublish    = "ControllerUnpublish"
)

// Sides, as printed.
const (
	sideOurs  = "ours"
	sideFloor = "floor"
	// sidePrims marks the go-ceph building-block rows.
	sidePrims = "go-ceph"
)

// Steps of ours' node operations.
const (
	stepNodeStage     = "NodeStage"
	stepNodePublish   = "NodePublish"
	stepNodeUnpublish = "NodeUnpublish"
	stepNodeUnstage   = "NodeUnstage"
)

// errSkip marks an item with nothing to do (its volume was never made);
// it is not counted.
var errSkip = errors.New("skipped")

type resultKey struct {
	phase string
	side  string
	conc  int
}

// result accumulates one (phase, side, concurrency) over all rounds.
type result struct {
	rec   *stats.Recorder
	wall  time.Duration
	peak  procstat.Peak
	pid   int
	mu    sync.Mutex
	steps map[string][]time.Duration
	// cpu is the CPU time cpuPID used during the phase (children included).
	cpu    time.Duration
	cpuPID int
	// ceph counts OSD operations and monitor commits during the phase
	// (the whole cluster's: other clients' work shows up too).
	ceph   cephperf.Counters
	cephOK bool
}

func (r *result) addSteps(s steps) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, d := range s {
		r.steps[k] = append(r.steps[k], d)
	}
}

// stepP50 returns the median of every step that ran.
func (r *result) stepP50() map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Duration{}
	for k, ds := range r.steps {
		sorted := append([]time.Duration(nil), ds...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		out[k] = stats.Percentile(sorted, 50)
	}
	return out
}

// results keeps every result in the order it was first measured.
type results struct {
	mu    sync.Mutex
	byKey map[resultKey]*result
	order []resultKey
}

func (rs *results) get(k resultKey) *result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byKey == nil {
		rs.byKey = map[resultKey]*result{}
	}
	r, ok := rs.byKey[k]
	if !ok {
		r = &result{rec: stats.NewRecorder(), steps: map[string][]time.Duration{}}
		rs.byKey[k] = r
		rs.order = append(rs.order, k)
	}
	return r
}

// phaseRun is one timed phase: n items at concurrency c, with the process
// pid (0: none) sampled from /proc while it runs.
type phaseRun struct {
	key      resultKey
	n        int
	pid      int
	cpuPID   int
	osdSock  string
	monSock  string
	interval time.Duration
	timeout  time.Duration
	op       func(ctx context.Context, i int) error
}

// run executes the phase. Items are handed to c workers in order; each call
// gets its own deadline; a cancelled ctx stops new calls from starting.
func (rs *results) run(ctx context.Context, p phaseRun) {
	r := rs.get(p.key)
	var sampler *procstat.Sampler
	if p.pid > 0 {
		sampler = procstat.Start(p.pid, p.interval)
	}
	cpu0, cpuErr := procstat.CPUTime(p.cpuPID)
	ceph0, cephErr := cephperf.Read(p.osdSock, p.monSock)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(p.key.conc, p.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				callCtx, cancel := context.WithTimeout(ctx, p.timeout)
				t0 := time.Now()
				err := p.op(callCtx, i)
				took := time.Since(t0)
				cancel()
				if !errors.Is(err, errSkip) {
					r.rec.Add(took, err)
				}
			}
		}()
	}
	for i := 0; i < p.n && ctx.Err() == nil; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	wall := time.Since(start)
	cpu1, cpuErr1 := procstat.CPUTime(p.cpuPID)
	ceph1, cephErr1 := cephperf.Read(p.osdSock, p.monSock)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.wall += wall
	if p.cpuPID > 0 && cpuErr == nil && cpuErr1 == nil {
		r.cpu += cpu1 - cpu0
		r.cpuPID = p.cpuPID
	}
	if (p.osdSock != "" || p.monSock != "") && cephErr == nil && cephErr1 == nil {
		d := ceph1.Sub(ceph0)
		r.ceph.OSDOps += d.OSDOps
		r.ceph.MonCommits += d.MonCommits
		r.cephOK = true
	}
	if sampler != nil {
		peak, _ := sampler.Stop()
		r.pid = p.pid
		r.peak.RSS = max(r.peak.RSS, peak.RSS)
		r.peak.Threads = max(r.peak.Threads, peak.Threads)
		r.peak.Samples += peak.Samples
	}
}

// untimed runs op for n items at concurrency c without recording anything.
func untimed(ctx context.Context, n, c int, timeout time.Duration, op func(ctx context.Context, i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				callCtx, cancel := context.WithTimeout(ctx, timeout)
				op(callCtx, i)
				cancel()
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}
