package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tkestack/tkestor-csi/tests/bench/floor"
	"github.com/tkestack/tkestor-csi/tests/bench/procstat"
)

// bench runs the plan: for each concurrency level and round, ours and the
// floor one after the other (alternating who goes first), controller
// phases first, then the node phases.
type bench struct {
	o       *Options
	ours    *ours
	floor   *floorSide // nil without --floor
	res     results
	ledger  *ledger
	selfPID int
	// progress reports each phase on stderr as it finishes.
	progress func(format string, args ...any)
}

// sides returns the sides of one round, alternating which goes first so
// that drift (a cluster warming up, another job's load) hits both alike.
func (b *bench) sides(level, round int) []side {
	if b.floor == nil {
		return []side{b.ours}
	}
	if (level+round)%2 == 0 {
		return []side{b.ours, b.floor}
	}
	return []side{b.floor, b.ours}
}

// pidOf is the process sampled while s runs a controller or node phase:
// the plugin for ours, the benchmark itself (where go-ceph runs) for the
// floor's controller phases, none for the floor's commands.
func (b *bench) pidOf(s side, node bool) int {
	switch {
	case s.name() == sideOurs && node:
		return b.o.NodePID
	case s.name() == sideOurs:
		return b.o.ControllerPID
	case !node:
		return b.selfPID
	}
	return 0
}

// cpuPIDOf is the process whose CPU time a phase is charged: the plugin
// for ours, the benchmark itself for the floor (go-ceph runs in it, and the
// hand-run commands are its children).
func (b *bench) cpuPIDOf(s side, node bool) int {
	if s.name() == sideFloor {
		return b.selfPID
	}
	return b.pidOf(s, node)
}

func (b *bench) runAll(ctx context.Context) {
	if b.o.Phases[phaseVolume] || b.o.Phases[phaseSnapshot] {
		for li, c := range b.o.Concurrency {
			for r := range b.o.Rounds {
				for _, s := range b.sides(li, r) {
					if ctx.Err() != nil {
						return
					}
					b.controllerRound(ctx, s, c, r)
				}
			}
		}
	}
	if b.o.Phases[phasePrims] && b.floor != nil && ctx.Err() == nil {
		b.primitives(ctx)
	}
	if b.o.Phases[phaseNode] {
		for li, c := range b.o.NodeConc {
			for r := range b.o.Rounds {
				for _, s := range b.sides(li, r) {
					if ctx.Err() != nil {
						return
					}
					b.nodeRound(ctx, s, c, r)
				}
			}
		}
	}
}

// primitives times each go-ceph building block once per image, on N
// fresh images, one call at a time.
func (b *bench) primitives(ctx context.Context) {
	n := b.o.Count
	vols := make([]*volume, n)
	untimed(ctx, n, 8, b.o.Timeout, func(ctx context.Context, i int) {
		name := fmt.Sprintf("%s-p-%03d", b.o.NamePrefix, i)
		v, err := b.floor.createVolume(ctx, name)
		if err != nil {
			b.ledger.addFailed(b.floor, name)
			return
		}
		vols[i] = v
		b.ledger.addVol(b.floor, v)
	})
	for _, p := range floor.Primitives() {
		key := resultKey{phase: p.Name, side: sidePrims, conc: 1}
		b.res.run(ctx, phaseRun{
			key: key, n: n, cpuPID: b.selfPID, osdSock: b.o.OSDSocket, monSock: b.o.MonSocket,
			interval: b.o.Sample, timeout: b.o.Timeout,
			op: func(_ context.Context, i int) error {
				if vols[i] == nil {
					return errSkip
				}
				return p.Run(b.floor.ceph, vols[i].id)
			},
		})
	}
	untimed(ctx, n, 8, b.o.Timeout, func(ctx context.Context, i int) {
		if vols[i] != nil && b.floor.deleteVolume(ctx, vols[i]) == nil {
			b.ledger.dropVol(vols[i])
		}
	})
	b.progress("go-ceph building blocks measured on %d images", n)
}

func (b *bench) volName(s side, kind string, c, round, i int) string {
	tag := "v"
	if s.name() == sideFloor {
		tag = "f"
	}
	return fmt.Sprintf("%s-%s%s-c%d-r%d-%03d", b.o.NamePrefix, tag, kind, c, round, i)
}

func (b *bench) phase(ctx context.Context, s side, name string, c, n int, node bool,
	op func(ctx context.Context, i int) error,
) {
	key := resultKey{phase: name, side: s.name(), conc: c}
	b.res.run(ctx, phaseRun{
		key: key, n: n, pid: b.pidOf(s, node), cpuPID: b.cpuPIDOf(s, node),
		osdSock: b.o.OSDSocket, monSock: b.o.MonSocket,
		interval: b.o.Sample, timeout: b.o.Timeout, op: op,
	})
	sum := b.res.get(key).rec.Summarize(b.res.get(key).wall)
	b.progress("%-22s C=%-3d %-5s %4d/%-4d %8.1f ops/s  p50 %8.1f ms  errors %s",
		name, c, s.name(), sum.OK, sum.Ops, sum.OpsPerS, sum.P50Ms, errText(sum.Errors))
}

// controllerRound: N creates, N snapshots and their deletes, N deletes.
func (b *bench) controllerRound(ctx context.Context, s side, c, round int) {
	n := b.o.Count
	vols := make([]*volume, n)
	b.phase(ctx, s, phCreateVolume, c, n, false, func(ctx context.Context, i int) error {
		name := b.volName(s, "", c, round, i)
		v, err := s.createVolume(ctx, name)
		if err != nil {
			b.ledger.addFailed(s, name)
			return err
		}
		vols[i] = v
		b.ledger.addVol(s, v)
		return nil
	})

	if b.o.Phases[phaseSnapshot] {
		snaps := make([]*snapshot, n)
		b.phase(ctx, s, phCreateSnapshot, c, n, false, func(ctx context.Context, i int) error {
			if vols[i] == nil {
				return errSkip
			}
			sn, err := s.createSnapshot(ctx, vols[i], b.volName(s, "s", c, round, i))
			if err != nil {
				return err
			}
			snaps[i] = sn
			b.ledger.addSnap(s, sn)
			return nil
		})
		b.phase(ctx, s, phDeleteSnapshot, c, n, false, func(ctx context.Context, i int) error {
			if snaps[i] == nil {
				return errSkip
			}
			if err := s.deleteSnapshot(ctx, snaps[i]); err != nil {
				return err
			}
			b.ledger.dropSnap(snaps[i])
			return nil
		})
	}

	b.phase(ctx, s, phDeleteVolume, c, n, false, func(ctx context.Context, i int) error {
		if vols[i] == nil {
			return errSkip
		}
		if err := s.deleteVolume(ctx, vols[i]); err != nil {
			return err
		}
		b.ledger.dropVol(vols[i])
		return nil
	})
}

// nodeRound: volumes made untimed, then (ControllerPublish), stage and
// publish, unpublish and unstage, (ControllerUnpublish), delete untimed.
func (b *bench) nodeRound(ctx context.Context, s side, c, round int) {
	n := b.o.NodeCount
	vols := make([]*volume, n)
	untimed(ctx, n, c, b.o.Timeout, func(ctx context.Context, i int) {
		name := b.volName(s, "n", c, round, i)
		v, err := s.createVolume(ctx, name)
		if err != nil {
			b.ledger.addFailed(s, name)
			b.progress("node set-up: %s create %s: %v", s.name(), name, err)
			return
		}
		vols[i] = v
		b.ledger.addVol(s, v)
	})

	sts := b.attachAll(ctx, s, c, vols)
	staged := make([]bool, n)
	b.phase(ctx, s, phStagePublish, c, n, true, func(ctx context.Context, i int) error {
		if sts[i] == nil {
			return errSkip
		}
		b.ledger.setStaged(s, sts[i], true)
		took, err := s.stagePublish(ctx, sts[i])
		b.res.get(resultKey{phStagePublish, s.name(), c}).addSteps(took)
		staged[i] = err == nil
		return err
	})
	b.phase(ctx, s, phUnpublishUnstage, c, n, true, func(ctx context.Context, i int) error {
		if !staged[i] {
			return errSkip
		}
		took, err := s.unpublishUnstage(ctx, sts[i])
		b.res.get(resultKey{phUnpublishUnstage, s.name(), c}).addSteps(took)
		if err == nil {
			b.ledger.setStaged(s, sts[i], false)
		}
		return err
	})
	// A failed stage may have left part of its work behind.
	untimed(ctx, n, c, b.o.Timeout, func(ctx context.Context, i int) {
		if sts[i] != nil && !staged[i] {
			if _, err := s.unpublishUnstage(ctx, sts[i]); err == nil {
				b.ledger.setStaged(s, sts[i], false)
			}
		}
	})

	b.detachAll(ctx, s, c, sts)
	untimed(ctx, n, c, b.o.Timeout, func(ctx context.Context, i int) {
		if vols[i] == nil {
			return
		}
		if err := s.deleteVolume(ctx, vols[i]); err != nil {
			b.progress("node tear-down: %s delete %s: %v", s.name(), vols[i].name, err)
			return
		}
		b.ledger.dropVol(vols[i])
	})
}

func (b *bench) attachAll(ctx context.Context, s side, c int, vols []*volume) []*staged {
	sts := make([]*staged, len(vols))
	op := func(ctx context.Context, i int) error {
		if vols[i] == nil {
			return errSkip
		}
		st, err := s.attach(ctx, vols[i])
		if err != nil {
			return err
		}
		sts[i] = st
		b.ledger.setAttached(s, st, true)
		return nil
	}
	if s.attachTimed() {
		b.phase(ctx, s, phCtrlPublish, c, len(vols), false, op)
	} else {
		untimed(ctx, len(vols), c, b.o.Timeout, func(ctx context.Context, i int) { _ = op(ctx, i) })
	}
	return sts
}

func (b *bench) detachAll(ctx context.Context, s side, c int, sts []*staged) {
	op := func(ctx context.Context, i int) error {
		if sts[i] == nil || b.isStaged(sts[i]) {
			return errSkip
		}
		if err := s.detach(ctx, sts[i]); err != nil {
			return err
		}
		b.ledger.setAttached(s, sts[i], false)
		return nil
	}
	if s.attachTimed() {
		b.phase(ctx, s, phCtrlUnpublish, c, len(sts), false, op)
	} else {
		untimed(ctx, len(sts), c, b.o.Timeout, func(ctx context.Context, i int) { _ = op(ctx, i) })
	}
}

func (b *bench) isStaged(st *staged) bool {
	b.ledger.mu.Lock()
	defer b.ledger.mu.Unlock()
	_, ok := b.ledger.staged[st]
	return ok
}

// idleStatus reads a plugin's status (the caller lets it settle first).
func idleStatus(pid int) (*procstat.Status, error) {
	if pid <= 0 {
		return nil, nil
	}
	st, err := procstat.Read(pid)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// settle waits before an idle reading, unless ctx ends.
func settle(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
