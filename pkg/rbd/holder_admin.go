package rbd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/holder"
)

// HolderAdminOptions configure the operator's view of RBD holds
// (`tkestor-csi holder show|release --driver=rbd`).
type HolderAdminOptions struct {
	// ClusterConfig is the ceph-csi style cluster list.
	ClusterConfig string
	// SecretDir holds userID and userKey files; the user needs mon
	// 'profile rbd' (for `osd blocklist add`) and osd 'profile rbd'.
	SecretDir string
	// FenceExpiry is how long fenced clients stay blocklisted (0: default).
	FenceExpiry time.Duration
}

// HolderAdmin shows and releases holds; it implements holder.Backend.
type HolderAdmin struct {
	opts     HolderAdminOptions
	clusters *clusterConfig
	conns    *connCache
	now      func() time.Time
	// poll is how often release looks at a heartbeat it watches.
	poll time.Duration
}

var _ holder.Backend = (*HolderAdmin)(nil)

// NewHolderAdmin checks the options; it connects on first use.
func NewHolderAdmin(opts HolderAdminOptions) (*HolderAdmin, error) {
	if opts.ClusterConfig == "" || opts.SecretDir == "" {
		return nil, fmt.Errorf("--cluster-config and --secret-dir are required")
	}
	if opts.FenceExpiry <= 0 {
		opts.FenceExpiry = DefaultFenceExpiry
	}
	return &HolderAdmin{
		opts: opts, clusters: newClusterConfig(opts.ClusterConfig),
		conns: newConnCache(ConnOptions{}), now: time.Now, poll: time.Second,
	}, nil
}

// Close shuts the connections.
func (a *HolderAdmin) Close() { a.conns.close() }

// Show reports the volume's holders, its watchers and earlier fencing.
func (a *HolderAdmin) Show(ctx context.Context, volumeID string) (*holder.Report, error) {
	var rep *holder.Report
	err := a.withTarget(ctx, volumeID, func(t *holdTarget, id VolumeID) error {
		view, meta, err := t.view()
		if err != nil {
			return err
		}
		rep = a.report(t, id, view, meta)
		return nil
	})
	return rep, err
}

// Release fences the holders' clients, then breaks their lock entries and
// replaces their records by notes of what was fenced. Without Force it
// first refuses (holder.ErrAlive) a holder with any sign of life: a client
// with the image open, a record whose mapper is unknown, or a heartbeat
// that moves while it watches it for a lease.
func (a *HolderAdmin) Release(
	ctx context.Context, volumeID string, ro holder.ReleaseOptions,
) (*holder.Report, error) {
	var rep *holder.Report
	err := a.withTarget(ctx, volumeID, func(t *holdTarget, id VolumeID) error {
		view, meta, err := t.view()
		if err != nil {
			return err
		}
		rep = a.report(t, id, view, meta)
		nodes := selectHolders(view, ro.Node)
		if len(nodes) == 0 {
			rep.Actions = append(rep.Actions, "nothing to release: no holder"+forNode(ro.Node))
			return nil
		}
		if !ro.Force {
			if err := a.checkDead(ctx, t, view, nodes, ro.Progress); err != nil {
				return err
			}
		}
		actions, err := a.fenceAndBreak(t, view, nodes)
		rep.Actions = append(rep.Actions, actions...)
		return err
	})
	return rep, err
}

func forNode(node string) string {
	if node == "" {
		return ""
	}
	return " named " + node
}

// withTarget resolves a volume ID and opens its hold.
func (a *HolderAdmin) withTarget(
	ctx context.Context, volumeID string, fn func(t *holdTarget, id VolumeID) error,
) error {
	id, err := DecodeVolumeID(volumeID)
	if err != nil {
		return err
	}
	info, err := a.clusters.lookup(id.ClusterID)
	if err != nil {
		return err
	}
	creds, err := credentialsFromDir(a.opts.SecretDir)
	if err != nil {
		return err
	}
	conn, release, err := a.conns.get(ctx, info.Monitors, creds)
	if err != nil {
		return err
	}
	pool, err := id.PoolName(conn)
	release()
	if err != nil {
		return err
	}
	t, err := openHoldTarget(ctx, a.conns, info.Monitors, creds, pool, "", id.Image)
	if err != nil {
		return err
	}
	defer t.close()
	return fn(t, id)
}

// selectHolders lists the holding nodes (one, when node is given).
func selectHolders(view holdView, node string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range view.Lockers {
		n, _ := cookieNode(l.Cookie)
		if (node == "" || n == node) && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// checkDead refuses unless every chosen holder looks dead: no watcher at
// all, every mapper known, and no heartbeat change while it watches them
// for the longest of their leases.
func (a *HolderAdmin) checkDead(
	ctx context.Context, t *holdTarget, view holdView, nodes []string, progress func(string),
) error {
	if len(view.Watchers) > 0 {
		return fmt.Errorf("%w: Ceph clients still have the image open (%s); use --force only once "+
			"the node is down (its clients are fenced either way)", holder.ErrAlive, strings.Join(view.Watchers, ", "))
	}
	watch := time.Duration(0)
	for _, n := range nodes {
		rec := view.Records[n]
		if rec != nil && !rec.Mapped {
			return fmt.Errorf("%w: node %s stopped between claiming and mapping; its mapper client is unknown, "+
				"so fencing cannot be complete: make sure the node is down, then use --force", holder.ErrAlive, n)
		}
		watch = max(watch, rec.lease(DefaultLease))
	}
	watch += 2 * time.Second
	if progress != nil {
		progress(fmt.Sprintf("watching the heartbeat of %s for %s", strings.Join(nodes, ", "), watch))
	}
	before := heartbeats(view, nodes)
	deadline := a.now().Add(watch)
	for a.now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.poll):
		}
		now, _, err := t.view()
		if err != nil {
			return err
		}
		if len(now.Watchers) > 0 || heartbeats(now, nodes) != before {
			return fmt.Errorf("%w: its heartbeat or clients changed while watching", holder.ErrAlive)
		}
	}
	return nil
}

// heartbeats is the observed value of the chosen holders together.
func heartbeats(view holdView, nodes []string) string {
	var b strings.Builder
	for _, n := range nodes {
		var entries []locker
		for _, l := range view.Lockers {
			if c, _ := cookieNode(l.Cookie); c == n {
				entries = append(entries, l)
			}
		}
		b.WriteString(n + "=" + heartbeatValue(view.Records[n], entries) + ";")
	}
	return b.String()
}

// fenceAndBreak blocklists every known client of the chosen holders, and
// only when all of that worked breaks their entries.
func (a *HolderAdmin) fenceAndBreak(t *holdTarget, view holdView, nodes []string) ([]string, error) {
	var addrs []string
	var victims []locker
	for _, l := range view.Lockers {
		if n, _ := cookieNode(l.Cookie); containsString(nodes, n) {
			victims = append(victims, l)
			addrs = append(addrs, l.Addr)
		}
	}
	for _, n := range nodes {
		if rec := view.Records[n]; rec != nil {
			addrs = append(addrs, rec.Plugin...)
			addrs = append(addrs, rec.Clients...)
		}
	}
	fence, err := normalizeClientAddrs(addrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFenceFailed, err)
	}
	if err := fenceClients(t.conn, fence, a.opts.FenceExpiry); err != nil {
		return nil, err
	}
	actions := []string{fmt.Sprintf("blocklisted %s for %s", strings.Join(fence, " "), a.opts.FenceExpiry)}
	for _, l := range victims {
		if err := t.breakLock(l); err != nil {
			return actions, err
		}
		actions = append(actions, fmt.Sprintf("broke the hold of %s (%s)", l.Cookie, l.Client))
	}
	if err := t.removeHeartbeats(nodes...); err != nil {
		return actions, err
	}
	now := a.now().UTC()
	note, _ := json.Marshal(fenceNote{By: "tkestor-csi holder release", At: now,
		Until: now.Add(a.opts.FenceExpiry), Clients: fence})
	err = t.updateMeta(func(map[string]string) (map[string]string, []string) {
		set, remove := map[string]string{}, []string(nil)
		for _, n := range nodes {
			set[metaFencedPrefix+n] = string(note)
			remove = append(remove, metaHolderPrefix+n)
		}
		return set, remove
	})
	if err != nil {
		return actions, fmt.Errorf("the hold is released, but its records could not be updated: %w", err)
	}
	return append(actions, "replaced the holder records by fencing notes"), nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// report turns a view into what the operator reads.
func (a *HolderAdmin) report(t *holdTarget, id VolumeID, view holdView, meta map[string]string) *holder.Report {
	rep := &holder.Report{
		Driver: "rbd", VolumeID: id.String(), Watchers: view.Watchers,
		Target: fmt.Sprintf("%s/%s in cluster %s", t.pool, t.image, id.ClusterID),
	}
	for _, n := range selectHolders(view, "") {
		rep.Holders = append(rep.Holders, a.describe(t, view, n))
	}
	rep.Fenced = fenceNotes(meta)
	return rep
}

// describe is one holder as the operator sees it, with a verdict from this
// single look (release watches longer before it acts).
func (a *HolderAdmin) describe(t *holdTarget, view holdView, node string) holder.Holder {
	h := holder.Holder{Node: node, Exclusive: view.Exclusive}
	var known []string
	for _, l := range view.Lockers {
		if n, _ := cookieNode(l.Cookie); n == node {
			h.Clients = append(h.Clients, holder.Client{Role: "lock", Addr: l.Client + " " + l.Addr})
			known = append(known, l.Addr)
			if node == "" {
				h.Node = fmt.Sprintf("unknown (lock cookie %q is not this driver's)", l.Cookie)
			}
		}
	}
	rec := view.Records[node]
	if rec != nil {
		h.Mode, h.Since, h.Heartbeat, h.Lease = rec.Mode, rec.Since, rec.Renewed, rec.lease(DefaultLease)
		for _, p := range rec.Plugin {
			h.Clients = append(h.Clients, holder.Client{Role: "plugin", Addr: p})
		}
		for _, c := range rec.Clients {
			h.Clients = append(h.Clients, holder.Client{Role: "mapper", Addr: c})
		}
		known = append(known, rec.Plugin...)
		known = append(known, rec.Clients...)
	}
	if reg, err := lookupNode(t.io, node); err == nil && reg != nil {
		h.NodeSeen = reg.Renewed
	}
	h.Alive, h.Verdict = verdict(a.now(), view, rec, known)
	return h
}

// verdict judges one look: a watcher of the holder, or any watcher at
// all, or a heartbeat younger than the lease (by this machine's clock)
// means alive.
func verdict(now time.Time, view holdView, rec *holdRecord, known []string) (bool, string) {
	norm := map[string]bool{}
	for _, k := range known {
		if n, err := normalizeClientAddr(k); err == nil {
			norm[n] = true
		}
	}
	for _, w := range view.Watchers {
		if n, err := normalizeClientAddr(w); err == nil && norm[n] {
			return true, "its client " + n + " has the image open"
		}
	}
	if len(view.Watchers) > 0 {
		return true, "clients of no holder have the image open: " + strings.Join(view.Watchers, ", ")
	}
	if rec == nil {
		return false, "no heartbeat record and no client has the image open"
	}
	age := now.Sub(rec.Renewed)
	if age < rec.lease(DefaultLease) {
		return true, fmt.Sprintf("heartbeat %s ago", age.Round(time.Second))
	}
	if !rec.Mapped {
		return false, "no heartbeat for " + age.Round(time.Second).String() +
			"; it stopped between claiming and mapping (mapper client unknown)"
	}
	return false, fmt.Sprintf("no heartbeat for %s and no client has the image open", age.Round(time.Second))
}

// fenceNotes reads the notes of earlier takeovers.
func fenceNotes(meta map[string]string) []holder.Fenced {
	var out []holder.Fenced
	for key, value := range meta {
		node, ok := strings.CutPrefix(key, metaFencedPrefix)
		if !ok {
			continue
		}
		var n fenceNote
		if json.Unmarshal([]byte(value), &n) == nil {
			out = append(out, holder.Fenced{Node: node, By: n.By, At: n.At, Until: n.Until, Clients: n.Clients})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
