package cfs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// DefaultLease is how long a single-node lease lasts without renewal when
// Options.Lease is unset. Holders renew every third of it.
const DefaultLease = 30 * time.Second

// claimAttempts bounds the create-and-look-again loop of one claim.
const claimAttempts = 3

// errLeaseLost reports that this node no longer holds a lease it had.
var errLeaseLost = fmt.Errorf("%w: single-node lease lost", ErrWrongState)

// fenceFunc stops every use of a volume on this node after its lease was
// lost: the FUSE client dies and the mounts go.
type fenceFunc func(volumeID, reason string)

// leaseHolder is the Holder of the node plugin: an exclusive lease per
// single-node volume, stored in the volume (see lease_dir.go) and renewed
// by one goroutine per held volume.
type leaseHolder struct {
	node  string
	lease time.Duration
	grace time.Duration
	fence fenceFunc
	now   func() time.Time
	seen  *leaseObserver

	mu   sync.Mutex
	held map[string]*heldLease
}

var _ Holder = (*leaseHolder)(nil)

func newLeaseHolder(node string, lease, grace time.Duration, fence fenceFunc) *leaseHolder {
	if lease <= 0 {
		lease = DefaultLease
	}
	return &leaseHolder{
		node: node, lease: lease, grace: grace, fence: fence, now: time.Now,
		seen: newLeaseObserver(), held: map[string]*heldLease{},
	}
}

// Claim takes (or confirms) the exclusive lease of a single-node staging,
// checks a read-only multi-node one against it, and does nothing for
// multi-writer volumes.
func (h *leaseHolder) Claim(ctx context.Context, c Claim) error {
	switch {
	case c.Rule.SingleNode:
		return h.claimExclusive(ctx, c)
	case c.Rule.ReadOnly:
		return h.checkReader(ctx, c)
	}
	return nil
}

// claimExclusive decides on the current generation and, to take the
// volume, creates the next one; a lost creation race is looked at again
// and then refused in favour of the winner.
func (h *leaseHolder) claimExclusive(ctx context.Context, c Claim) error {
	dir, err := openLeaseDir(c.StagingPath, !c.Resume)
	if err != nil {
		return h.ioError(c, err)
	}
	if dir == nil {
		return fmt.Errorf("%w: volume %q: no lease record", errLeaseLost, c.VolumeID)
	}
	defer dir.close()
	for attempt := 0; attempt < claimAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		view, err := dir.current()
		if err != nil {
			return h.ioError(c, err)
		}
		d := decideClaim(h.input(c.VolumeID, view))
		switch {
		case c.Resume && !resumable(d, h.node):
			return fmt.Errorf("%w: volume %q: %s", errLeaseLost, c.VolumeID, resumeLoss(view))
		case d.action == leaseKeep:
			return nil
		case d.action == leaseRefuse:
			return fmt.Errorf("%w: volume %q is %s", ErrWrongState, c.VolumeID, d.reason)
		}
		err = h.take(dir, c, view.gen+1, d)
		if !errors.Is(err, errGenerationTaken) {
			return err
		}
	}
	return fmt.Errorf("%w: volume %q: the lease changed hands while claiming", ErrInProgress, c.VolumeID)
}

// take creates generation gen for this node and starts renewing it. An
// older holding of this process for the volume is stopped first, so its
// renewer does not mistake the new generation for a loss.
func (h *leaseHolder) take(dir *leaseDir, c Claim, gen uint64, d leaseDecision) error {
	h.stop(c.VolumeID)
	now := h.now()
	rec := &leaseRecord{
		Node: h.node, Since: now.UTC(), RenewedAt: now.UTC(), LeaseSeconds: ceilSeconds(h.lease),
		Generation: gen, Token: randomHex(8), Mode: c.Mode,
	}
	if err := dir.create(rec); err != nil {
		if errors.Is(err, errGenerationTaken) {
			return err
		}
		return h.ioError(c, err)
	}
	h.seen.forget(c.VolumeID)
	h.start(c, rec, now)
	dir.gc(gen)
	klog.V(2).InfoS("Single-node lease taken", "volumeID", c.VolumeID, "nodeID", h.node,
		"generation", gen, "takeoverFrom", takeoverFrom(d))
	return nil
}

// checkReader refuses a read-only multi-node staging while another node's
// exclusive lease is live. It writes nothing (the mount is read-only).
func (h *leaseHolder) checkReader(ctx context.Context, c Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := openLeaseDir(c.StagingPath, false)
	if err != nil || dir == nil {
		return h.ioError(c, err)
	}
	defer dir.close()
	view, err := dir.current()
	if err != nil {
		return h.ioError(c, err)
	}
	if d := decideRead(h.input(c.VolumeID, view)); d.action == leaseRefuse {
		return fmt.Errorf("%w: volume %q is %s", ErrWrongState, c.VolumeID, d.reason)
	}
	return nil
}

// Release stops renewing and, when the current generation is this node's,
// frees the volume with a released generation on top. A volume this node
// no longer reaches (its client died) cannot be released; its lease then
// expires on its own.
func (h *leaseHolder) Release(ctx context.Context, c Claim) error {
	if !c.Rule.SingleNode {
		return nil
	}
	h.stop(c.VolumeID)
	if err := ctx.Err(); err != nil {
		return err
	}
	err := h.release(c)
	if isConnectionGone(err) {
		klog.FromContext(ctx).Error(err, "Cannot release the single-node lease; it expires on its own",
			"volumeID", c.VolumeID)
		return nil
	}
	return err
}

func (h *leaseHolder) release(c Claim) error {
	dir, err := openLeaseDir(c.StagingPath, false)
	if err != nil || dir == nil {
		return h.ioError(c, err)
	}
	defer dir.close()
	view, err := dir.current()
	if err != nil {
		return h.ioError(c, err)
	}
	if view.rec == nil || view.rec.released() || view.rec.Node != h.node {
		return nil // not ours (any more): nothing to release
	}
	now := h.now().UTC()
	err = dir.create(&leaseRecord{
		Since: now, RenewedAt: now, Generation: view.gen + 1, ReleasedBy: h.node,
	})
	if err != nil && !errors.Is(err, errGenerationTaken) {
		return h.ioError(c, err)
	}
	dir.gc(view.gen + 1)
	klog.V(2).InfoS("Single-node lease released", "volumeID", c.VolumeID, "nodeID", h.node,
		"generation", view.gen)
	return nil
}

// input collects the decision's inputs for the current view.
func (h *leaseHolder) input(volumeID string, view leaseView) leaseInput {
	in := leaseInput{
		view: view, self: h.node, lease: h.lease, grace: h.grace,
		observed: h.seen.observe(volumeID, view, h.now()),
	}
	h.mu.Lock()
	if l := h.held[volumeID]; l != nil {
		in.heldGen, in.heldToken = l.gen, l.token
	}
	h.mu.Unlock()
	return in
}

// ioError wraps a failure to reach the lease: the client or the volume is
// not answering, which the caller may retry.
func (h *leaseHolder) ioError(c Claim, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: lease of volume %q: %w", ErrUnavailable, c.VolumeID, err)
}

// resumable reports whether a decision keeps a holding of this node
// after a restart: only this node's own generation may be renewed or
// superseded; a free or another node's volume is not taken on resume.
func resumable(d leaseDecision, self string) bool {
	return d.action == leaseKeep || (d.action == leaseTake && !d.takeover && d.holder == self)
}

// resumeLoss says why a resumed holding is gone.
func resumeLoss(v leaseView) string {
	switch {
	case v.gen == 0:
		return "no lease record"
	case v.rec == nil:
		return fmt.Sprintf("lease generation %d is unreadable", v.gen)
	case v.rec.released():
		return fmt.Sprintf("released by %s (generation %d)", v.rec.ReleasedBy, v.gen)
	}
	return fmt.Sprintf("held by node %q (generation %d)", v.rec.Node, v.gen)
}

func takeoverFrom(d leaseDecision) string {
	if d.takeover {
		return d.holder
	}
	return ""
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
