package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// holdOptions are the hold's timing.
type holdOptions struct {
	// Lease: the holder renews every third of it; observers wait for it
	// plus Grace without a renewal before a takeover.
	Lease time.Duration
	// Grace: 0 turns automatic takeover off.
	Grace time.Duration
	// FenceExpiry is how long fenced clients stay blocklisted.
	FenceExpiry time.Duration
}

// cephOwnership is the node plugin's ownership: the hold lock on the
// image, its record in the image metadata, the heartbeat, fencing.
type cephOwnership struct {
	node     string
	stateDir string
	conns    *connCache
	opts     holdOptions
	obs      *observer
	now      func() time.Time
	// save writes the node record (the hold's local half).
	save func(*stageRecord) error

	mu sync.Mutex
	// lost holds why a volume's hold was lost (taken over after this node
	// was fenced), for the volume's health.
	lost map[string]string
}

var _ ownership = (*cephOwnership)(nil)

func newCephOwnership(
	node, stateDir string, conns *connCache, opts holdOptions, save func(*stageRecord) error,
) *cephOwnership {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.FenceExpiry <= 0 {
		opts.FenceExpiry = DefaultFenceExpiry
	}
	return &cephOwnership{
		node: node, stateDir: stateDir, conns: conns, opts: opts,
		obs: newObserver(time.Now), now: time.Now, save: save, lost: map[string]string{},
	}
}

// exclusiveHold reports whether a stage of rec takes the lock exclusive:
// every single-node mode does (the single-node reader too, the table says
// one node); multi-node modes share it.
func exclusiveHold(rec *stageRecord) bool {
	kind := access.RBDFilesystem
	if rec.Block {
		kind = access.RBDBlock
	}
	mode := csi.VolumeCapability_AccessMode_Mode(csi.VolumeCapability_AccessMode_Mode_value[rec.AccessMode])
	rule, err := access.Mode(kind, mode)
	return err != nil || rule.SingleNode
}

// claim takes the hold for this node; a conflict is ErrHeld naming the
// holder. On failure nothing of the hold is left.
func (o *cephOwnership) claim(ctx context.Context, rec *stageRecord, spec *stageSpec) (err error) {
	if err := writeHoldKey(o.stateDir, rec.VolumeID, spec.Key); err != nil {
		return err
	}
	rec.Hold = &holdInfo{
		User: spec.User, Monitors: spec.Monitors, Exclusive: exclusiveHold(rec), Since: o.now().UTC(),
	}
	if err := o.save(rec); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		if rerr := o.release(context.WithoutCancel(ctx), rec); rerr != nil {
			// The record goes with the failed stage, so the key goes too; a
			// lock entry left behind is this node's own stale one (broken
			// by its next stage here, or taken over after the grace).
			klog.FromContext(ctx).Error(rerr, "Undo of a failed claim could not drop the hold")
			if kerr := removeHoldKey(o.stateDir, rec.VolumeID); kerr != nil {
				klog.FromContext(ctx).Error(kerr, "Removing the hold key file")
			}
			rec.Hold = nil
		}
	}()

	return o.withTarget(ctx, rec, string(spec.Key), func(t *holdTarget) error {
		fresh, err := o.acquire(ctx, t, rec)
		if err != nil {
			return err
		}
		if fresh && rec.Hold.Exclusive {
			if err := checkUnlockedWatchers(t); err != nil {
				return err
			}
		}
		return o.publish(t, rec, false)
	})
}

// acquire takes the lock; fresh is false when this node held it already
// (a retry, or a restarted plugin's earlier stage).
func (o *cephOwnership) acquire(ctx context.Context, t *holdTarget, rec *stageRecord) (bool, error) {
	cookie, fresh := holdCookie(o.node), true
	desc := fmt.Sprintf("tkestor-csi node %s (%s)", o.node, rec.AccessMode)
	for attempt := 0; attempt < 4; attempt++ {
		ret, err := t.lock(cookie, rec.Hold.Exclusive, desc)
		switch {
		case err != nil:
			return false, err
		case ret == 0:
			return fresh, nil
		case ret == -int(syscall.EEXIST):
			return false, nil
		}

		d, err := o.decide(t, rec)
		if err != nil {
			return false, err
		}
		switch d.action {
		case holdRefuse:
			return false, fmt.Errorf("%w: %s", ErrHeld, d.reason)
		case holdTakeover:
			if err := o.takeover(ctx, t, d); err != nil {
				return false, err
			}
		}
		for _, l := range d.own {
			fresh = false
			if err := t.breakLock(l); err != nil {
				return false, err
			}
		}
	}
	return false, fmt.Errorf("%w: the hold lock of %s/%s keeps changing", ErrInProgress, t.pool, t.image)
}

// decide reads the hold and decides about the other holders.
func (o *cephOwnership) decide(t *holdTarget, rec *stageRecord) (holdDecision, error) {
	view, _, err := t.view()
	if err != nil {
		return holdDecision{}, err
	}
	return decideHold(holdInput{
		view: view, self: o.node, exclusive: rec.Hold.Exclusive,
		observed: o.observed(rec.VolumeID, view), now: o.now(),
		lease: o.opts.Lease, grace: o.opts.Grace,
	}), nil
}

// observed returns the observation function of one view.
func (o *cephOwnership) observed(volumeID string, view holdView) func(string) time.Duration {
	return func(node string) time.Duration {
		var entries []locker
		for _, l := range view.Lockers {
			if n, _ := cookieNode(l.Cookie); n == node {
				entries = append(entries, l)
			}
		}
		return o.obs.unchanged(volumeID+"\x00"+node, heartbeatValue(view.Records[node], entries))
	}
}

// takeover fences the dead holders' clients, and only then breaks their
// lock entries. Their records are replaced by notes of what was fenced.
func (o *cephOwnership) takeover(ctx context.Context, t *holdTarget, d holdDecision) error {
	if err := fenceClients(t.conn, d.fence, o.opts.FenceExpiry); err != nil {
		return err
	}
	for _, l := range d.victims {
		if err := t.breakLock(l); err != nil {
			return err
		}
	}
	if err := t.removeHeartbeats(d.nodes...); err != nil {
		klog.FromContext(ctx).Error(err, "Could not drop the dead holders' heartbeats")
	}
	now := o.now().UTC()
	note, _ := json.Marshal(fenceNote{By: o.node, At: now, Until: now.Add(o.opts.FenceExpiry), Clients: d.fence})
	err := t.updateMeta(func(map[string]string) (map[string]string, []string) {
		set, remove := map[string]string{}, []string(nil)
		for _, node := range d.nodes {
			set[metaFencedPrefix+node] = string(note)
			remove = append(remove, metaHolderPrefix+node)
		}
		return set, remove
	})
	if err != nil {
		klog.FromContext(ctx).Error(err, "Could not note the fenced clients on the image")
	}
	klog.FromContext(ctx).Info("Took over the volume of a dead holder after fencing it",
		"holders", d.nodes, "fenced", d.fence, "expire", o.opts.FenceExpiry)
	return nil
}

// checkUnlockedWatchers refuses an image that clients have open although
// nobody held the lock: mapped by hand, or by another driver.
func checkUnlockedWatchers(t *holdTarget) error {
	view, _, err := t.view()
	if err != nil {
		return err
	}
	if len(view.Watchers) > 0 {
		return fmt.Errorf("%w: image %s/%s is open by Ceph clients that hold no lock of this driver (%s): "+
			"mapped by hand or by another driver?", ErrHeld, t.pool, t.image, strings.Join(view.Watchers, ", "))
	}
	return nil
}

// publish writes this node's holder record, to the image metadata and as
// its heartbeat. An exclusive holder also drops other nodes' records and
// heartbeats, which are stale while it holds the lock.
func (o *cephOwnership) publish(t *holdTarget, rec *stageRecord, mapped bool) error {
	r := o.record(t, rec, mapped)
	if rec.Hold.Exclusive {
		beats, err := t.heartbeats()
		if err != nil {
			return err
		}
		for node := range beats {
			if node != o.node {
				if err := t.removeHeartbeats(node); err != nil {
					return err
				}
			}
		}
	}
	if err := t.writeHeartbeat(r); err != nil {
		return err
	}
	own := metaHolderPrefix + o.node
	return t.updateMeta(func(meta map[string]string) (map[string]string, []string) {
		var remove []string
		for key := range meta {
			if rec.Hold.Exclusive && strings.HasPrefix(key, metaHolderPrefix) && key != own {
				remove = append(remove, key)
			}
		}
		return map[string]string{own: r.encode()}, remove
	})
}

// record is this node's holder record now.
func (o *cephOwnership) record(t *holdTarget, rec *stageRecord, mapped bool) *holdRecord {
	return &holdRecord{
		Node: o.node, Mode: rec.AccessMode, Exclusive: rec.Hold.Exclusive,
		Since: rec.Hold.Since, Renewed: o.now().UTC(), LeaseSeconds: int(o.opts.Lease.Seconds()),
		Plugin: t.pluginAddrs(), Clients: rec.ClientAddrs, Mapped: mapped,
	}
}

// mapped runs after the image is mapped: it checks that the hold is still
// this node's (a plugin that froze between claim and map may have been
// fenced and taken over: it must not go on to format or mount), and
// records the mapper's client addresses, without which fencing this node
// later would be incomplete.
func (o *cephOwnership) mapped(ctx context.Context, rec *stageRecord) error {
	if rec.Hold == nil {
		return nil
	}
	key, err := readHoldKey(o.stateDir, rec.VolumeID)
	if err != nil {
		return fmt.Errorf("read hold key: %w", err)
	}
	return o.withTarget(ctx, rec, key, func(t *holdTarget) error {
		ok, _, err := t.holds(o.node)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the hold lock of %s/%s is no longer this node's", ErrHoldLost, t.pool, t.image)
		}
		if err := o.completeClients(t, rec); err != nil {
			return err
		}
		return o.publish(t, rec, true)
	})
}

// completeClients fills rec.ClientAddrs when the map found an existing
// mapping (no new watcher appeared): an exclusive holder owns every
// watcher; a shared one keeps what its record said before.
func (o *cephOwnership) completeClients(t *holdTarget, rec *stageRecord) error {
	if len(rec.ClientAddrs) == 0 {
		view, _, err := t.view()
		if err != nil {
			return err
		}
		if rec.Hold.Exclusive {
			rec.ClientAddrs = view.Watchers
		} else if r := view.Records[o.node]; r != nil {
			rec.ClientAddrs = r.Clients
		}
	}
	if len(rec.ClientAddrs) == 0 {
		if !rec.Hold.Exclusive {
			return nil // readers need no fencing; the record stays unmapped
		}
		return fmt.Errorf("%w: no Ceph client of this node watches %s/%s after mapping it; "+
			"a single-node hold whose client is unknown could not be fenced", ErrMapFailed, t.pool, t.image)
	}
	if _, err := normalizeClientAddrs(rec.ClientAddrs); err != nil {
		return fmt.Errorf("%w: mapper client of %s/%s: %v", ErrMapFailed, t.pool, t.image, err)
	}
	return nil
}

// release drops this node's lock entries and record and forgets the key.
// It never touches another node's entries: after a takeover there is
// nothing of ours left to drop.
func (o *cephOwnership) release(ctx context.Context, rec *stageRecord) error {
	if rec.Hold == nil {
		return nil
	}
	key, err := readHoldKey(o.stateDir, rec.VolumeID)
	if errors.Is(err, os.ErrNotExist) {
		klog.FromContext(ctx).Info("Hold key file is gone; leaving the hold lock for a takeover or a new stage here")
		rec.Hold = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("read hold key: %w", err)
	}
	err = o.withTarget(ctx, rec, key, func(t *holdTarget) error {
		if err := t.unlockOwn(o.node); err != nil {
			return err
		}
		if err := t.removeHeartbeats(o.node); err != nil {
			return err
		}
		// Only open the image for writing when there is a record to drop:
		// a write open is a watcher, and a claim that just lost a race must
		// not look like a client of the image to the winner.
		_, meta, err := t.view()
		if err != nil {
			return err
		}
		if _, ok := meta[metaHolderPrefix+o.node]; !ok {
			return nil
		}
		return t.updateMeta(func(map[string]string) (map[string]string, []string) {
			return nil, []string{metaHolderPrefix + o.node}
		})
	})
	if err != nil && !errors.Is(err, ErrVolumeNotFound) {
		return err
	}
	if err := removeHoldKey(o.stateDir, rec.VolumeID); err != nil {
		return err
	}
	o.setLost(rec.VolumeID, "")
	rec.Hold = nil
	return nil
}

// withTarget runs fn on the record's image. A connection the cluster has
// blocklisted (this node was fenced and came back) is dropped and fn runs
// once more on a new one.
func (o *cephOwnership) withTarget(
	ctx context.Context, rec *stageRecord, key string, fn func(t *holdTarget) error,
) error {
	creds := Credentials{ID: rec.Hold.User, Key: key}
	var err error
	for try := 0; try < 2; try++ {
		var t *holdTarget
		t, err = openHoldTarget(ctx, o.conns, rec.Hold.Monitors, creds, rec.Pool, rec.Namespace, rec.Image)
		if err == nil {
			err = fn(t)
			t.close()
		}
		if !isBlocklisted(err) {
			return err
		}
		klog.FromContext(ctx).Info("Ceph connection is blocklisted; reconnecting", "user", creds.ID)
		o.conns.evict(rec.Hold.Monitors, creds)
	}
	return err
}

func (o *cephOwnership) setLost(volumeID, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if reason == "" {
		delete(o.lost, volumeID)
		return
	}
	o.lost[volumeID] = reason
}

// lostReason says why the volume's hold was lost, "" when it was not.
func (o *cephOwnership) lostReason(volumeID string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lost[volumeID]
}
