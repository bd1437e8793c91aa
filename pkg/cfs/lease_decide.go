package cfs

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// leaseAction is what a node does about the current lease.
type leaseAction int

const (
	// leaseKeep: this node holds the current generation already.
	leaseKeep leaseAction = iota
	// leaseTake: make the next generation (the volume is free, the
	// current one is this node's own from before, or it expired).
	leaseTake
	// leaseRefuse: another node holds it (or may still).
	leaseRefuse
)

// leaseInput is everything a decision depends on; decideClaim and
// decideRead are pure functions of it.
type leaseInput struct {
	view leaseView
	self string
	// heldGen and heldToken are the generation this process renews, if
	// any (0, "" otherwise).
	heldGen   uint64
	heldToken string
	// observed is how long this process has seen view unchanged.
	observed time.Duration
	// lease is this node's lease, used for a record that names none.
	lease time.Duration
	// grace is added to the holder's lease before a takeover; 0 turns
	// automatic takeover off.
	grace time.Duration
}

// leaseDecision is the outcome, with the reason for a refusal.
type leaseDecision struct {
	action   leaseAction
	takeover bool // leaseTake of another node's expired generation
	holder   string
	reason   string
}

// decideClaim decides an exclusive claim (RWO, RWOP, single-node reader).
// Expiry is never read from the holder's clock: a generation is expired
// when this process has seen it unchanged (no renewal) for the holder's
// lease plus the grace, so clock skew between nodes cannot cause an early
// takeover.
func decideClaim(in leaseInput) leaseDecision {
	rec := in.view.rec
	switch {
	case in.view.gen == 0 || (rec != nil && rec.released()):
		return leaseDecision{action: leaseTake}
	case rec != nil && in.heldGen == in.view.gen && rec.Token == in.heldToken && rec.Node == in.self:
		return leaseDecision{action: leaseKeep, holder: in.self}
	case rec != nil && rec.Node == in.self:
		// This node's own generation from before a restart or a fence:
		// supersede it (a taker racing for it makes the same generation,
		// and only one of the two creates it).
		return leaseDecision{action: leaseTake, holder: in.self}
	}
	return decideOther(in)
}

// decideRead decides a read-only multi-node (ROX) staging, which takes no
// lease: it is refused while another node's exclusive lease is live.
func decideRead(in leaseInput) leaseDecision {
	rec := in.view.rec
	if in.view.gen == 0 || (rec != nil && (rec.released() || rec.Node == in.self)) {
		return leaseDecision{action: leaseKeep}
	}
	d := decideOther(in)
	if d.action == leaseTake {
		d.action = leaseKeep // expired: readers need not supersede it
	}
	return d
}

// decideOther handles a generation of another node (or an unreadable one).
func decideOther(in leaseInput) leaseDecision {
	holder, limit := "an unknown node (unreadable lease record)", in.lease
	if rec := in.view.rec; rec != nil {
		holder = fmt.Sprintf("node %q", rec.Node)
		if rec.LeaseSeconds > 0 {
			limit = time.Duration(rec.LeaseSeconds) * time.Second
		}
	}
	d := leaseDecision{action: leaseRefuse, holder: holder}
	switch {
	case in.grace <= 0:
		d.reason = fmt.Sprintf("held by %s (lease generation %d); automatic takeover is off "+
			"(--rwo-takeover-grace=0): release it with `tkestor-csi holder release`", holder, in.view.gen)
	case in.observed >= limit+in.grace:
		return leaseDecision{action: leaseTake, takeover: true, holder: holder}
	case in.observed >= limit:
		d.reason = fmt.Sprintf("held by %s (lease generation %d): not renewed for %s, taken over after "+
			"its lease of %s plus a grace of %s", holder, in.view.gen, in.observed.Round(time.Second), limit, in.grace)
	default:
		d.reason = fmt.Sprintf("held by %s (lease generation %d, lease %s)%s", holder, in.view.gen, limit,
			renewedNote(in.view.rec))
	}
	return d
}

// renewedNote tells when the holder last renewed, by its own clock.
func renewedNote(rec *leaseRecord) string {
	if rec == nil || rec.RenewedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("; last renewed at %s by its clock", rec.RenewedAt.UTC().Format(time.RFC3339))
}

// leaseObserver remembers, per volume, since when this process has seen
// the current lease generation with the same content.
type leaseObserver struct {
	mu   sync.Mutex
	seen map[string]sighting
}

type sighting struct {
	gen   uint64
	sum   [sha256.Size]byte
	since time.Time
}

func newLeaseObserver() *leaseObserver {
	return &leaseObserver{seen: map[string]sighting{}}
}

// observe notes view for volumeID at now and returns how long it has been
// unchanged (0 on first sight or after any change).
func (o *leaseObserver) observe(volumeID string, v leaseView, now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := sighting{gen: v.gen, sum: sha256.Sum256(v.raw), since: now}
	old, ok := o.seen[volumeID]
	if ok && old.gen == s.gen && old.sum == s.sum {
		return now.Sub(old.since)
	}
	o.seen[volumeID] = s
	return 0
}

// forget drops what was seen of volumeID.
func (o *leaseObserver) forget(volumeID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.seen, volumeID)
}
