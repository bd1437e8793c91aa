package cfs

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// A holder renews every third of its lease through its own staging mount.
// It gives the lease up, and fences itself, when a renewal finds a newer
// generation (a takeover or a release) or the record changed, and when it
// has not renewed for two thirds of the lease (the volume or the client
// stopped answering). Another node takes over only after seeing the
// record unchanged for the whole lease plus the grace, so the holder has
// stopped well before.

// heldLease is one generation this process holds and renews.
type heldLease struct {
	volumeID string
	root     string
	gen      uint64
	token    string
	// rec is the record as last written; only the renewer touches it.
	rec    leaseRecord
	stopCh chan struct{}
	done   chan struct{}
}

// renewal is the outcome of one renewal attempt.
type renewal struct {
	lost string // why the lease is gone; "" when it is not
	err  error  // a failure to reach the record (retried)
}

// start registers rec as held and starts its renewer.
func (h *leaseHolder) start(c Claim, rec *leaseRecord, renewed time.Time) {
	l := &heldLease{
		volumeID: c.VolumeID, root: c.StagingPath, gen: rec.Generation, token: rec.Token, rec: *rec,
		stopCh: make(chan struct{}), done: make(chan struct{}),
	}
	h.mu.Lock()
	h.held[c.VolumeID] = l
	h.mu.Unlock()
	go h.renewLoop(l, renewed)
}

// stop ends the renewer of volumeID, if any, without fencing, and waits
// for it.
func (h *leaseHolder) stop(volumeID string) {
	h.mu.Lock()
	l := h.held[volumeID]
	delete(h.held, volumeID)
	h.mu.Unlock()
	if l != nil {
		close(l.stopCh)
		<-l.done
	}
}

// close stops every renewer, without fencing.
func (h *leaseHolder) close() {
	h.mu.Lock()
	ids := make([]string, 0, len(h.held))
	for id := range h.held {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		h.stop(id)
	}
}

// holding reports the generation this process renews for volumeID.
func (h *leaseHolder) holding(volumeID string) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.held[volumeID]; l != nil {
		return l.gen, true
	}
	return 0, false
}

func (h *leaseHolder) renewLoop(l *heldLease, lastGood time.Time) {
	defer close(l.done)
	interval := h.lease / 3
	deadline := 2 * h.lease / 3
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	logger := klog.Background().WithValues("volumeID", l.volumeID, "generation", l.gen)
	for {
		select {
		case <-l.stopCh:
			return
		case <-ticker.C:
		}
		started := h.now()
		if started.Sub(lastGood) >= deadline {
			h.lose(l, fmt.Sprintf("not renewed for %s", started.Sub(lastGood).Round(time.Millisecond)))
			return
		}
		r, stopped := h.renewBefore(l, lastGood.Add(deadline))
		switch {
		case stopped:
			return
		case r.lost != "":
			h.lose(l, r.lost)
			return
		case r.err != nil:
			logger.Error(r.err, "Lease renewal failed; retrying", "deadlineIn",
				lastGood.Add(deadline).Sub(h.now()).Round(time.Millisecond))
		default:
			lastGood = started
		}
	}
}

// renewBefore runs one renewal, giving up on it at deadline: the I/O of a
// hung FUSE client cannot be interrupted, and the fence that follows a
// loss ends it.
func (h *leaseHolder) renewBefore(l *heldLease, deadline time.Time) (renewal, bool) {
	result := make(chan renewal, 1)
	go func() { result <- h.renewOnce(l) }()
	timer := time.NewTimer(deadline.Sub(h.now()))
	defer timer.Stop()
	select {
	case r := <-result:
		return r, false
	case <-l.stopCh:
		return renewal{}, true
	case <-timer.C:
		return renewal{lost: "renewal did not finish before the deadline"}, false
	}
}

// renewOnce checks that the current generation is still this holding's
// and rewrites it with a new renewal time.
func (h *leaseHolder) renewOnce(l *heldLease) renewal {
	dir, err := openLeaseDir(l.root, false)
	if err != nil {
		return renewal{err: err}
	}
	if dir == nil {
		return renewal{lost: "the lease directory is gone"}
	}
	defer dir.close()
	view, err := dir.current()
	if err != nil {
		return renewal{err: err}
	}
	if lost := lostReason(view, &l.rec); lost != "" {
		return renewal{lost: lost}
	}
	rec := l.rec
	rec.RenewedAt = h.now().UTC()
	rec.Renewals++
	if err := dir.rewrite(&rec); err != nil {
		return renewal{err: err}
	}
	l.rec = rec
	return renewal{}
}

// lostReason says why view no longer shows the holding rec; "" when it
// does.
func lostReason(view leaseView, rec *leaseRecord) string {
	switch {
	case view.gen > rec.Generation:
		return "superseded: " + resumeLoss(view)
	case view.gen < rec.Generation:
		return fmt.Sprintf("lease generation %d is gone", rec.Generation)
	case view.rec == nil:
		return fmt.Sprintf("lease generation %d is unreadable", view.gen)
	case view.rec.Token != rec.Token || view.rec.Node != rec.Node:
		return fmt.Sprintf("lease generation %d was rewritten by another writer", view.gen)
	}
	return ""
}

// lose unregisters l (unless it was replaced meanwhile) and fences the
// volume.
func (h *leaseHolder) lose(l *heldLease, reason string) {
	h.mu.Lock()
	current := h.held[l.volumeID] == l
	if current {
		delete(h.held, l.volumeID)
	}
	h.mu.Unlock()
	select {
	case <-l.stopCh:
		return // stopped while deciding: the stopper owns the volume now
	default:
	}
	if !current {
		return
	}
	klog.ErrorS(nil, "Single-node lease lost, fencing this node's use of the volume",
		"volumeID", l.volumeID, "nodeID", h.node, "generation", l.gen, "reason", reason)
	if h.fence != nil {
		h.fence(l.volumeID, reason)
	}
}

// isConnectionGone reports an error of a FUSE mount whose client died or
// was cut off.
func isConnectionGone(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED) || errors.Is(err, unix.EIO)
}
