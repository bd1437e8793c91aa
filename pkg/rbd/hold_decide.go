package rbd

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// locker is one entry of the hold lock.
type locker struct {
	// Client is the RADOS client that took it ("client.4123").
	Client string
	Cookie string
	// Addr is that client's address as the OSD reports it.
	Addr string
}

// holdView is what one node sees of an image's hold at one moment.
type holdView struct {
	Exclusive bool
	Lockers   []locker
	Records   map[string]*holdRecord
	// Watchers are the addresses of the clients that have the image open,
	// except the observer's own RADOS client.
	Watchers []string
}

// holdInput is everything a claim decision depends on; decideHold is a
// pure function of it.
type holdInput struct {
	view      holdView
	self      string
	exclusive bool
	// observed returns how long this process has seen a node's heartbeat
	// (and lock entry) unchanged, by its own monotonic clock.
	observed func(node string) time.Duration
	// now is only used to describe ages in messages.
	now time.Time
	// lease applies to records that name none.
	lease time.Duration
	// grace is added to the holder's lease; 0 turns automatic takeover off.
	grace time.Duration
}

// holdAction is what a claimer does after a failed lock attempt.
type holdAction int

const (
	// holdTake: nobody else conflicts; break this node's stale entries
	// (a dead plugin process of this node took them) and lock again.
	holdTake holdAction = iota
	// holdRefuse: another node holds it, or may still.
	holdRefuse
	// holdTakeover: every conflicting holder is dead: fence, break, lock.
	holdTakeover
)

// holdDecision is the outcome of decideHold.
type holdDecision struct {
	action holdAction
	// own are this node's stale entries, broken before locking again.
	own []locker
	// victims are the dead holders' entries, broken after fencing.
	victims []locker
	// fence are the client addresses to blocklist before anything is
	// broken (lock entries', plugins' and mappers' of the victims).
	fence []string
	// nodes are the holders a refusal or takeover concerns.
	nodes []string
	// reason explains a refusal and names the holding node(s).
	reason string
}

// decideHold decides what to do when the hold lock could not be taken.
// Another node's hold is taken over only when all of these are true: the
// automatic takeover is on; this process has seen the holder's heartbeat
// stand still for the holder's lease plus the grace (its own clock, never
// the holder's); no client at all watches the image (a watcher is a live
// mapping or an unknown client); and every Ceph client of the holder is
// known, so fencing can shut all of them out.
func decideHold(in holdInput) holdDecision {
	byNode, own := map[string][]locker{}, []locker(nil)
	for _, l := range in.view.Lockers {
		node, _ := cookieNode(l.Cookie)
		if node == in.self {
			own = append(own, l)
			continue
		}
		byNode[node] = append(byNode[node], l)
	}
	if len(byNode) == 0 || (!in.exclusive && !in.view.Exclusive) {
		return holdDecision{action: holdTake, own: own}
	}

	nodes := make([]string, 0, len(byNode))
	for node := range byNode {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	d := holdDecision{action: holdTakeover, own: own, nodes: nodes}
	var refusals []string
	for _, node := range nodes {
		addrs, why := judgeHolder(in, node, byNode[node])
		if why != "" {
			refusals = append(refusals, why)
			continue
		}
		d.victims = append(d.victims, byNode[node]...)
		d.fence = append(d.fence, addrs...)
	}
	if len(refusals) > 0 {
		return holdDecision{action: holdRefuse, nodes: nodes, reason: strings.Join(refusals, "; ")}
	}
	d.fence = uniqueSorted(d.fence)
	return d
}

// judgeHolder returns the addresses to fence of a dead holder, or why it
// is not (known to be) dead.
func judgeHolder(in holdInput, node string, entries []locker) ([]string, string) {
	rec := in.view.Records[node]
	who := describeHolder(in, node, rec)
	if node == "" {
		return nil, fmt.Sprintf("the hold lock has an entry (cookie %q) that names no node", entries[0].Cookie)
	}
	lease := rec.lease(in.lease)
	seen := in.observed(node)
	switch {
	case in.grace <= 0:
		return nil, who + "; automatic takeover is off (--rwo-takeover-grace=0): once the node is down, " +
			"run `tkestor-csi holder release`"
	case seen < lease:
		return nil, who
	case seen < lease+in.grace:
		return nil, fmt.Sprintf("%s; its heartbeat has not changed for %s: taken over when it has not "+
			"for %s (lease %s + grace %s) and no client watches the image",
			who, seen.Round(time.Second), lease+in.grace, lease, in.grace)
	case len(in.view.Watchers) > 0:
		return nil, fmt.Sprintf("%s; its heartbeat stopped but clients still have the image open (%s): "+
			"the node may be cut off from the cluster rather than down",
			who, strings.Join(in.view.Watchers, ", "))
	case rec != nil && !rec.Mapped:
		return nil, who + "; it stopped between claiming and mapping, so its mapper client is unknown " +
			"and cannot be fenced: once the node is down, run `tkestor-csi holder release --force`"
	}
	var addrs []string
	if rec != nil {
		addrs = append(addrs, rec.Plugin...)
		addrs = append(addrs, rec.Clients...)
	}
	for _, l := range entries {
		addrs = append(addrs, l.Addr)
	}
	normalized, err := normalizeClientAddrs(addrs)
	if err != nil {
		return nil, fmt.Sprintf("%s; cannot fence it: %v", who, err)
	}
	return normalized, ""
}

// describeHolder names the holder for messages.
func describeHolder(in holdInput, node string, rec *holdRecord) string {
	how := "for writing"
	if !in.view.Exclusive {
		how = "shared (read-only or multi-node)"
	}
	s := fmt.Sprintf("node %q holds the volume %s", node, how)
	if rec == nil {
		return s + " (no heartbeat record)"
	}
	s += fmt.Sprintf(" since %s", rec.Since.UTC().Format(time.RFC3339))
	if !rec.Renewed.IsZero() && !in.now.IsZero() {
		s += fmt.Sprintf(", last heartbeat %s ago by this node's clock", in.now.Sub(rec.Renewed).Round(time.Second))
	}
	return s
}

// observer remembers, per volume and holder, the heartbeat value this
// process saw last and since when it has seen it unchanged.
type observer struct {
	mu   sync.Mutex
	seen map[string]observation
	now  func() time.Time
}

type observation struct {
	value string
	since time.Time
}

func newObserver(now func() time.Time) *observer {
	return &observer{seen: map[string]observation{}, now: now}
}

// unchanged records value for key and returns how long it has not changed.
func (o *observer) unchanged(key, value string) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	ob, ok := o.seen[key]
	if !ok || ob.value != value {
		o.seen[key] = observation{value: value, since: now}
		o.prune(now)
		return 0
	}
	return now.Sub(ob.since)
}

// prune forgets observations nobody looked at for a day.
func (o *observer) prune(now time.Time) {
	for key, ob := range o.seen {
		if now.Sub(ob.since) > 24*time.Hour {
			delete(o.seen, key)
		}
	}
}

// heartbeatValue is what an observer compares: the record's heartbeat and
// the lock entries (a node that locks again changes it too).
func heartbeatValue(rec *holdRecord, entries []locker) string {
	var b strings.Builder
	if rec != nil {
		b.WriteString(rec.Renewed.UTC().Format(time.RFC3339Nano))
	}
	for _, l := range entries {
		b.WriteString("|" + l.Client + "/" + l.Cookie)
	}
	return b.String()
}
