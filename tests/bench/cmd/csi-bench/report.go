package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tkestack/tkestor-csi/tests/bench/procstat"
	"github.com/tkestack/tkestor-csi/tests/bench/stats"
)

// row is one line of the table: one phase, side and concurrency level.
type row struct {
	Phase       string `json:"phase"`
	Side        string `json:"side"`
	Concurrency int    `json:"concurrency"`
	stats.Summary
	// PeakRSSMiB and PeakThreads were sampled from /proc while the phase
	// ran: the plugin for ours, the benchmark process for the floor's
	// go-ceph phases.
	PeakRSSMiB  float64 `json:"peakRSSMiB,omitempty"`
	PeakThreads int     `json:"peakThreads,omitempty"`
	SampledPID  int     `json:"sampledPID,omitempty"`
	// OpsVsFloor is ours' ops/s over the floor's; P50VsFloor ours' p50
	// over the floor's.
	OpsVsFloor float64 `json:"opsVsFloor,omitempty"`
	P50VsFloor float64 `json:"p50VsFloor,omitempty"`
	// Reference is the figure for this row (ops/s) and RefSource
	// what it measured.
	Reference float64 `json:"referenceOpsPerSecond,omitempty"`
	RefSource string  `json:"referenceSource,omitempty"`
	// CPUMsPerOp is the CPU time of the charged process (ours: the plugin;
	// floor: the benchmark and its commands) per call, in milliseconds.
	CPUMsPerOp float64 `json:"cpuMsPerCall,omitempty"`
	CPUPID     int     `json:"cpuPID,omitempty"`
	// OSDOpsPerOp and MonCommitsPerOp are the cluster's OSD operations and
	// monitor commits per call during the phase.
	OSDOpsPerOp     *float64 `json:"osdOpsPerCall,omitempty"`
	MonCommitsPerOp *float64 `json:"monCommitsPerCall,omitempty"`
	// StepP50Ms are the medians of the parts of a node operation.
	StepP50Ms map[string]float64 `json:"stepP50Ms,omitempty"`
}

// procReport is what /proc said about one plugin process.
type procReport struct {
	Role       string  `json:"role"`
	PID        int     `json:"pid"`
	IdleStart  float64 `json:"idleStartRSSMiB"`
	IdleEnd    float64 `json:"idleEndRSSMiB"`
	HWM        float64 `json:"hwmMiB"`
	ThrStart   int     `json:"idleStartThreads"`
	ThrEnd     int     `json:"idleEndThreads"`
	PeakSample float64 `json:"peakSampledRSSMiB"`
	// The idle readings split: anonymous and file-backed RSS, and PSS.
	AnonStart float64 `json:"idleStartAnonMiB"`
	FileStart float64 `json:"idleStartFileMiB"`
	PSSStart  float64 `json:"idleStartPSSMiB"`
	AnonEnd   float64 `json:"idleEndAnonMiB"`
	FileEnd   float64 `json:"idleEndFileMiB"`
	PSSEnd    float64 `json:"idleEndPSSMiB"`
	// GoStart and GoEnd are the Go runtime's own view (from --*-metrics-url).
	GoStart *goMem `json:"goRuntimeStart,omitempty"`
	GoEnd   *goMem `json:"goRuntimeEnd,omitempty"`
	PeakThr int    `json:"peakSampledThreads"`
	Err     string `json:"error,omitempty"`
}

// report is the whole output; --json prints it as is.
type report struct {
	Started      time.Time    `json:"started"`
	Elapsed      string       `json:"elapsed"`
	Endpoint     string       `json:"endpoint"`
	NodeEndpoint string       `json:"nodeEndpoint"`
	Driver       string       `json:"driver"`
	CPUs         int          `json:"cpus"`
	LoadStart    string       `json:"loadAvgStart"`
	LoadEnd      string       `json:"loadAvgEnd"`
	Count        int          `json:"count"`
	NodeCount    int          `json:"nodeCount"`
	Rounds       int          `json:"rounds"`
	SizeBytes    int64        `json:"sizeBytes"`
	Floor        string       `json:"floor"`
	Rows         []row        `json:"rows"`
	Processes    []procReport `json:"processes"`
	Checks       []check      `json:"targets"`
	Leftovers    []string     `json:"leftovers"`
	Notes        []string     `json:"notes,omitempty"`
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// buildRows summarizes every result and pairs ours with the floor.
func (b *bench) buildRows() []row {
	var rows []row
	sums := map[resultKey]stats.Summary{}
	for _, k := range b.res.order {
		r := b.res.get(k)
		sums[k] = r.rec.Summarize(r.wall)
	}
	for _, k := range b.res.order {
		r := b.res.get(k)
		rw := row{Phase: k.phase, Side: k.side, Concurrency: k.conc, Summary: sums[k]}
		if r.peak.Samples > 0 {
			rw.PeakRSSMiB, rw.PeakThreads, rw.SampledPID = mib(r.peak.RSS), r.peak.Threads, r.pid
		}
		if k.side == sideOurs {
			fk := resultKey{phase: k.phase, side: sideFloor, conc: k.conc}
			if f, ok := sums[fk]; ok && f.OK > 0 && rw.OK > 0 {
				rw.OpsVsFloor = rw.OpsPerS / f.OpsPerS
				rw.P50VsFloor = float64(rw.P50) / float64(f.P50)
			}
		}
		if ref, src := reference(k); ref > 0 {
			rw.Reference, rw.RefSource = ref, src
		}
		if calls := float64(rw.Ops); calls > 0 {
			if r.cpuPID > 0 {
				rw.CPUMsPerOp, rw.CPUPID = float64(r.cpu.Microseconds())/1000/calls, r.cpuPID
			}
			if r.cephOK {
				osd, mon := float64(r.ceph.OSDOps)/calls, float64(r.ceph.MonCommits)/calls
				rw.OSDOpsPerOp, rw.MonCommitsPerOp = &osd, &mon
			}
		}
		if steps := r.stepP50(); len(steps) > 0 {
			rw.StepP50Ms = map[string]float64{}
			for s, d := range steps {
				rw.StepP50Ms[s] = float64(d.Microseconds()) / 1000
			}
		}
		rows = append(rows, rw)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rowLess(rows[i], rows[j]) })
	return rows
}

// rowLess orders the table: controller phases by concurrency, then node
// phases by concurrency; in each, phases in run order, ours before floor.
func rowLess(a, b row) bool {
	if ga, gb := rowGroup(a), rowGroup(b); ga != gb {
		return ga < gb
	}
	if a.Concurrency != b.Concurrency {
		return a.Concurrency < b.Concurrency
	}
	if pa, pb := phaseRank(a.Phase), phaseRank(b.Phase); pa != pb {
		return pa < pb
	}
	return a.Side == sideOurs && b.Side != sideOurs
}

var phaseOrder = []string{ //nolint:gochecknoglobals // constant table
	phCreateVolume, phCreateSnapshot, phDeleteSnapshot, phDeleteVolume,
	phCtrlPublish, phStagePublish, phUnpublishUnstage, phCtrlUnpublish,
}

func phaseRank(p string) int {
	for i, q := range phaseOrder {
		if p == q {
			return i
		}
	}
	return len(phaseOrder)
}

func isNodePhase(p string) bool {
	r := phaseRank(p)
	return r >= phaseRank(phCtrlPublish) && r < len(phaseOrder)
}

// rowGroup: controller phases, node phases, then go-ceph building blocks.
func rowGroup(r row) int {
	switch {
	case r.Side == sidePrims:
		return 2
	case isNodePhase(r.Phase):
		return 1
	}
	return 0
}

// idleReadings holds the plugin readings taken before and after the run.
type idleReadings struct {
	ctrlStart, ctrlEnd, nodeStart, nodeEnd *procstat.Status
	// pss holds PSS readings by pid and end (false: start, true: end).
	pss map[pssKey]uint64
	// goRT holds the Go runtime readings the same way.
	goRT map[pssKey]*procstat.GoRuntime
	errs []string
}

// goMem is the Go runtime's memory in MiB.
type goMem struct {
	SysMiB   float64 `json:"sysMiB"`
	HeapMiB  float64 `json:"heapInuseMiB"`
	StackMiB float64 `json:"stackInuseMiB"`
	Threads  int     `json:"threads"`
}

func toGoMem(g *procstat.GoRuntime) *goMem {
	if g == nil {
		return nil
	}
	return &goMem{SysMiB: mib(g.Sys), HeapMiB: mib(g.HeapInuse), StackMiB: mib(g.StackInuse), Threads: g.Threads}
}

type pssKey struct {
	pid int
	end bool
}

func pssOf(m map[pssKey]uint64, pid int, end bool) uint64 { return m[pssKey{pid, end}] }

func (b *bench) processes(idle idleReadings, rows []row) []procReport {
	var out []procReport
	add := func(role string, pid int, start, end *procstat.Status, node bool) {
		if pid <= 0 {
			return
		}
		p := procReport{Role: role, PID: pid}
		if start != nil {
			p.IdleStart, p.ThrStart = mib(start.RSS), start.Threads
			p.AnonStart, p.FileStart = mib(start.RSSAnon), mib(start.RSSFile)
			p.PSSStart = mib(pssOf(idle.pss, pid, false))
			p.GoStart = toGoMem(idle.goRT[pssKey{pid, false}])
		}
		if end != nil {
			p.IdleEnd, p.ThrEnd, p.HWM = mib(end.RSS), end.Threads, mib(end.HWM)
			p.AnonEnd, p.FileEnd = mib(end.RSSAnon), mib(end.RSSFile)
			p.PSSEnd = mib(pssOf(idle.pss, pid, true))
			p.GoEnd = toGoMem(idle.goRT[pssKey{pid, true}])
		} else {
			p.Err = "process gone before the end of the run"
		}
		for _, r := range rows {
			if r.Side == sideOurs && isNodePhase(r.Phase) == node && r.SampledPID == pid {
				p.PeakSample = max(p.PeakSample, r.PeakRSSMiB)
				p.PeakThr = max(p.PeakThr, r.PeakThreads)
			}
		}
		out = append(out, p)
	}
	add("controller", b.o.ControllerPID, idle.ctrlStart, idle.ctrlEnd, false)
	if b.o.NodePID != b.o.ControllerPID {
		add("node", b.o.NodePID, idle.nodeStart, idle.nodeEnd, true)
	}
	return out
}

// checks evaluates tkestor-csi's targets against what was measured.
func (b *bench) checks(rows []row, procs []procReport) []check {
	var out []check
	find := func(phase, side string, c int) *row {
		for i := range rows {
			if rows[i].Phase == phase && rows[i].Side == side && rows[i].Concurrency == c {
				return &rows[i]
			}
		}
		return nil
	}
	for _, c := range b.o.Concurrency {
		o, f := find(phCreateVolume, sideOurs, c), find(phCreateVolume, sideFloor, c)
		if o != nil && f != nil && f.OpsPerS > 0 {
			ratio := o.OpsPerS / f.OpsPerS
			out = append(out, check{
				Target: fmt.Sprintf("CreateVolume C=%d", c),
				Got: fmt.Sprintf("%.1f/s = %.2f× floor (%.1f/s)%s", o.OpsPerS, ratio, f.OpsPerS,
					failures(o)),
				Want: fmt.Sprintf("≥ %.2f× floor", targetCreateVsFloor),
				Ref: fmt.Sprintf("ceph-csi %.0f/s, floor on reference machine %.0f/s",
					refDriverCreate[c], refFloorCreate[c]),
				Met: ratio >= targetCreateVsFloor && o.Errors == nil, Ratio: ratio,
			})
		}
		if d := find(phDeleteVolume, sideOurs, c); d != nil && refDriverDelete[c] > 0 {
			want := targetDeleteVsRef * refDriverDelete[c]
			out = append(out, check{
				Target: fmt.Sprintf("DeleteVolume C=%d", c),
				Got: fmt.Sprintf("%.1f/s = %.2f× ceph-csi%s", d.OpsPerS, d.OpsPerS/refDriverDelete[c],
					failures(d)),
				Want: fmt.Sprintf("≥ %.0f/s (%.0f× ceph-csi's %.0f/s)", want, targetDeleteVsRef, refDriverDelete[c]),
				Met:  d.OpsPerS >= want && d.Errors == nil, Ratio: d.OpsPerS / refDriverDelete[c],
			})
		}
	}
	out = append(out, b.memoryChecks(rows, procs)...)
	for _, c := range b.o.NodeConc {
		o, f := find(phStagePublish, sideOurs, c), find(phStagePublish, sideFloor, c)
		if o != nil && f != nil && f.P50 > 0 && o.OK > 0 {
			ratio := float64(o.P50) / float64(f.P50)
			out = append(out, check{
				Target: fmt.Sprintf("NodeStage+Publish p50 C=%d", c),
				Got: fmt.Sprintf("%.0f ms = %.2f× hand-run (%.0f ms)%s", o.P50Ms, ratio, f.P50Ms,
					failures(o)),
				Want: fmt.Sprintf("≤ %.1f× hand-run", targetStageVsFloorP50),
				Met:  ratio <= targetStageVsFloorP50 && o.Errors == nil, Ratio: ratio,
			})
		}
	}
	return out
}

func (b *bench) memoryChecks(rows []row, procs []procReport) []check {
	var out []check
	for _, p := range procs {
		if p.Role != "controller" {
			continue
		}
		idleMax := max(p.IdleStart, p.IdleEnd)
		out = append(out, check{
			Target: "controller RSS idle",
			Got:    fmt.Sprintf("%.1f MiB at start, %.1f MiB after the run", p.IdleStart, p.IdleEnd),
			Want:   fmt.Sprintf("≤ %d MiB", targetIdleMiB),
			Ref:    fmt.Sprintf("ceph-csi %d MiB", refDriverIdleMiB),
			Met:    p.Err == "" && idleMax <= targetIdleMiB,
		})
		var peak float64
		var seen bool
		for _, r := range rows {
			if r.Side == sideOurs && r.Concurrency == targetPeakConc && r.SampledPID == p.PID {
				peak, seen = max(peak, r.PeakRSSMiB), true
			}
		}
		if seen {
			out = append(out, check{
				Target: fmt.Sprintf("controller RSS peak C=%d", targetPeakConc),
				Got:    fmt.Sprintf("%.1f MiB sampled (lifetime VmHWM %.1f MiB)", peak, p.HWM),
				Want:   fmt.Sprintf("≤ %d MiB", targetPeakMiB),
				Ref:    fmt.Sprintf("ceph-csi %d–%d MiB", refDriverPeakMinMiB, refDriverPeakMaxMiB),
				Met:    peak <= targetPeakMiB,
			})
		}
	}
	return out
}

// failures notes failed calls, which alone miss a target.
func failures(r *row) string {
	if r.Errors == nil {
		return ""
	}
	return fmt.Sprintf(", %d of %d calls failed", r.Ops-r.OK, r.Ops)
}

func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// printer writes text and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) ln(args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, args...)
	}
}

// writeTable prints the human-readable report.
func writeTable(w io.Writer, rep *report) error {
	p := &printer{w: w}
	p.f("csi-bench  driver %s  endpoint %s", rep.Driver, rep.Endpoint)
	if rep.NodeEndpoint != rep.Endpoint {
		p.f("  node %s", rep.NodeEndpoint)
	}
	p.f("\n  N=%d (node N=%d), %d round(s), volume %d MiB, %d CPUs, load %s -> %s, %s\n",
		rep.Count, rep.NodeCount, rep.Rounds, rep.SizeBytes>>20, rep.CPUs, rep.LoadStart, rep.LoadEnd,
		rep.Elapsed)
	p.f("  floor: %s\n\n", rep.Floor)

	const rowFmt = "%-21s %3s %-5s %7s %7s %8s %8s %8s %6s %6s %5s %7s %4s %6s %6s %5s  %s\n"
	p.f(rowFmt, "PHASE", "C", "SIDE", "OK/N", "OPS/S", "P50ms", "P99ms", "MAXms",
		"OPS×FL", "P50×FL", "REF/S", "RSS-MiB", "THR", "CPUms", "OSDops", "MONc", "ERRORS")
	prevNode, prevC := false, 0
	var prims []row
	for i, r := range rep.Rows {
		if r.Side == sidePrims {
			prims = append(prims, r)
			continue
		}
		if i > 0 && (isNodePhase(r.Phase) != prevNode || r.Concurrency != prevC) {
			p.ln()
		}
		prevNode, prevC = isNodePhase(r.Phase), r.Concurrency
		p.f(rowFmt, r.Phase, fmt.Sprint(r.Concurrency), r.Side, fmt.Sprintf("%d/%d", r.OK, r.Ops),
			fmt.Sprintf("%.1f", r.OpsPerS), fmt.Sprintf("%.1f", r.P50Ms), fmt.Sprintf("%.1f", r.P99Ms),
			fmt.Sprintf("%.1f", r.MaxMs), ratio(r.OpsVsFloor), ratio(r.P50VsFloor), orDash(r.Reference, "%.0f"),
			orDash(r.PeakRSSMiB, "%.1f"), orDash(float64(r.PeakThreads), "%.0f"), orDash(r.CPUMsPerOp, "%.1f"),
			perCall(r.OSDOpsPerOp), perCall(r.MonCommitsPerOp), errText(r.Errors))
	}

	writePrims(p, prims)
	writeSteps(p, rep.Rows)
	writeProcesses(p, rep.Processes)
	if len(rep.Checks) > 0 {
		p.ln("\ntargets (tkestor-csi's):")
		for _, c := range rep.Checks {
			p.f("  %-7s %-28s %s; want %s", c.verdict(), c.Target, c.Got, c.Want)
			if c.Ref != "" {
				p.f("; reference: %s", c.Ref)
			}
			p.ln()
		}
	}
	writeErrors(p, rep.Rows)
	for _, n := range rep.Notes {
		p.ln("note: " + n)
	}
	if len(rep.Leftovers) == 0 {
		p.ln("\ncleanup: everything the benchmark made was removed")
	} else {
		p.ln("\ncleanup FAILED, left behind:")
		for _, l := range rep.Leftovers {
			p.ln("  " + l)
		}
	}
	return p.err
}

// writePrims prints the go-ceph building blocks, the units the controller
// figures can be read in.
func writePrims(p *printer, prims []row) {
	if len(prims) == 0 {
		return
	}
	p.ln("\ngo-ceph building blocks, one call at a time on an existing image (same connection as the floor):")
	const f = "  %-20s %8s %8s %8s %7s %7s %6s  %s\n"
	p.f(f, "CALL", "OK/N", "P50ms", "P99ms", "CPUms", "OSDops", "MONc", "ERRORS")
	for _, r := range prims {
		p.f(f, r.Phase, fmt.Sprintf("%d/%d", r.OK, r.Ops), fmt.Sprintf("%.2f", r.P50Ms),
			fmt.Sprintf("%.2f", r.P99Ms), orDash(r.CPUMsPerOp, "%.2f"), perCall(r.OSDOpsPerOp),
			perCall(r.MonCommitsPerOp), errText(r.Errors))
	}
}

func writeSteps(p *printer, rows []row) {
	first := true
	for _, r := range rows {
		if len(r.StepP50Ms) == 0 {
			continue
		}
		if first {
			p.ln("\nnode steps, p50 ms:")
			first = false
		}
		names := make([]string, 0, len(r.StepP50Ms))
		for s := range r.StepP50Ms {
			names = append(names, s)
		}
		sort.Slice(names, func(i, j int) bool { return stepRank(names[i]) < stepRank(names[j]) })
		parts := make([]string, len(names))
		for i, s := range names {
			parts[i] = fmt.Sprintf("%s %.1f", s, r.StepP50Ms[s])
		}
		p.f("  %-22s C=%-3d %-5s %s\n", r.Phase, r.Concurrency, r.Side, strings.Join(parts, ", "))
	}
}

var stepOrder = []string{ //nolint:gochecknoglobals // constant table
	stepNodeStage, stepNodePublish, stepNodeUnpublish, stepNodeUnstage,
	"rbd-fuse", "losetup", "blkid", "mkfs", "mount", "bind", "umount", "losetup -d", "umount rbd-fuse", "rbd-fuse exit",
}

func stepRank(s string) int {
	for i, q := range stepOrder {
		if s == q {
			return i
		}
	}
	return len(stepOrder)
}

func writeProcesses(p *printer, procs []procReport) {
	if len(procs) == 0 {
		return
	}
	p.ln("\nplugin processes (/proc/PID/status):")
	for _, pr := range procs {
		p.f("  %-10s pid %-7d idle at start %5.1f MiB %3d threads; peak while loaded %5.1f MiB %3d threads;"+
			" idle after %5.1f MiB %3d threads; VmHWM %5.1f MiB", pr.Role, pr.PID, pr.IdleStart, pr.ThrStart,
			pr.PeakSample, pr.PeakThr, pr.IdleEnd, pr.ThrEnd, pr.HWM)
		if pr.Err != "" {
			p.f(" (%s)", pr.Err)
		}
		p.ln()
		p.f("  %-10s idle RSS split: at start %.1f anon + %.1f file-backed (PSS %.1f); after %.1f anon + %.1f"+
			" file-backed (PSS %.1f) MiB\n", "", pr.AnonStart, pr.FileStart, pr.PSSStart, pr.AnonEnd, pr.FileEnd,
			pr.PSSEnd)
		if pr.GoStart != nil && pr.GoEnd != nil {
			p.f("  %-10s Go runtime (its /metrics): at start %.1f MiB obtained (heap %.1f, stacks %.1f, %d threads);"+
				" after %.1f MiB (heap %.1f, stacks %.1f, %d threads);"+
				" anonymous RSS beyond what Go obtained is C (librados, librbd, malloc arenas)\n",
				"", pr.GoStart.SysMiB, pr.GoStart.HeapMiB, pr.GoStart.StackMiB, pr.GoStart.Threads,
				pr.GoEnd.SysMiB, pr.GoEnd.HeapMiB, pr.GoEnd.StackMiB, pr.GoEnd.Threads)
		}
	}
}

func writeErrors(p *printer, rows []row) {
	first := true
	for _, r := range rows {
		codes := make([]string, 0, len(r.ErrorMsg))
		for c := range r.ErrorMsg {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			if first {
				p.ln("\nfirst error of each kind:")
				first = false
			}
			p.f("  %s C=%d %s %s x%d: %s\n", r.Phase, r.Concurrency, r.Side, c, r.Errors[c],
				truncate(r.ErrorMsg[c], 300))
		}
	}
}

func perCall(x *float64) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *x)
}

func ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func orDash(x float64, format string) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf(format, x)
}

func errText(errs map[string]int) string {
	if len(errs) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(errs))
	for c, n := range errs {
		parts = append(parts, fmt.Sprintf("%s:%d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func cpus() int { return runtime.NumCPU() }
