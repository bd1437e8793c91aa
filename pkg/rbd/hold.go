package rbd

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// The hold: single-node access enforced on the node path.
//
// The truth is a RADOS class lock on the image's header object
// (rbd_header.<image id>) named holdLockName. NodeStage takes it after
// the record is written and before the image is mapped; NodeUnstage drops
// it after the image is unmapped. Single-node modes (RWO, RWOP, single-node
// reader) take it exclusive; multi-node modes (ROX, RWX block) take it
// shared with holdLockTag, so a writer excludes every other node and
// readers share, atomically in the OSD (cls_lock), whoever races.
//
// The cookie names the node ("tkestor:<nodeID>"). The lock entry also
// names the RADOS client that took it, which dies with the plugin process;
// a node therefore recognises its own entries by cookie and breaks stale
// ones of its own when it stages again after a restart.
//
// Not the RBD advisory lock (rbd_lock_exclusive, `rbd lock add`): that is
// the lock named "rbd_lock" on the same header object, which the image's
// exclusive-lock feature uses too. While an advisory lock is held, a mapper
// of an image with that feature waits for the lock forever (measured with
// rbd-fuse: the write hangs, the daemon spins). A lock of our own name
// never meets librbd's, and the header object goes away with the image, so
// nothing is left behind.
//
// Details sit beside the lock, one JSON holdRecord per holding node: since
// when, the heartbeat the holder renews every Lease/3, and the Ceph client
// addresses fencing must blocklist. The record is written to the image
// metadata (metaHolderPrefix + nodeID, for operators: `rbd image-meta
// list`) when the node claims and when it has mapped the image; the
// renewals go to an xattr of the header object (heartbeatXattrPrefix +
// nodeID, see hold_ceph.go for why). The lock is authoritative: a record
// without a lock entry is stale and ignored.
const (
	holdLockName     = "tkestor.csi.holder"
	holdLockTag      = "tkestor.csi"
	holdCookiePrefix = "tkestor:"
	// metaHolderPrefix + nodeID holds that node's holdRecord.
	metaHolderPrefix = "tkestor.csi/holder."
	// metaFencedPrefix + nodeID notes the addresses fenced when that node's
	// hold was taken over, for the operator who un-fences it.
	metaFencedPrefix = "tkestor.csi/fenced."
)

// Defaults of the hold's timing.
const (
	// DefaultLease: a holder renews its heartbeat every third of it.
	DefaultLease = 30 * time.Second
	// DefaultFenceExpiry is how long a fenced client stays blocklisted:
	// longer than any process of a frozen or partitioned node can plausibly
	// sleep. Ceph's own default (1 h) is too short for a VM paused over a
	// weekend; an entry only ever matches one dead client instance, so a
	// long one costs nothing but a line in the OSD map.
	DefaultFenceExpiry = 30 * 24 * time.Hour
)

// holdCookie is the lock cookie of one claim by a node:
// "tkestor:<nodeID>#<claim>", where claim is random. The claim part makes
// every lock entry distinct: an observer that saw a holder's entry (with
// no heartbeat yet) in an earlier round must not read the same entry of a
// later claim as "unchanged since then" (measured: the race test fenced a
// live node that way before claims were told apart).
func holdCookie(node string) string {
	return holdCookiePrefix + node + cookieClaimSep + newCookie()[:8]
}

const cookieClaimSep = "#"

// cookieNode returns the node a cookie names.
func cookieNode(cookie string) (string, bool) {
	rest, ok := strings.CutPrefix(cookie, holdCookiePrefix)
	i := strings.LastIndex(rest, cookieClaimSep)
	if !ok || i <= 0 {
		return "", false
	}
	return rest[:i], true
}

// holdRecord is one node's entry in the image metadata.
type holdRecord struct {
	Node string `json:"node"`
	// Mode is the CSI access mode the node staged with.
	Mode      string    `json:"mode"`
	Exclusive bool      `json:"exclusive"`
	Since     time.Time `json:"since"`
	// Renewed is the heartbeat; observers compare it for change only, by
	// their own clock, so skew between nodes cannot cause a takeover.
	Renewed      time.Time `json:"renewed"`
	LeaseSeconds int       `json:"leaseSeconds"`
	// Plugin are the addresses of the holder's plugin RADOS clients.
	Plugin []string `json:"plugin,omitempty"`
	// Clients are the mapper's client addresses (rbd-fuse, rbd-nbd or the
	// kernel client); Mapped says they are known. A record that is not
	// Mapped belongs to a stage that stopped between claim and map: its
	// mapper, if any, cannot be fenced, so it is never taken over
	// automatically.
	Clients []string `json:"clients,omitempty"`
	Mapped  bool     `json:"mapped,omitempty"`
}

func (r *holdRecord) lease(def time.Duration) time.Duration {
	if r == nil || r.LeaseSeconds <= 0 {
		return def
	}
	return time.Duration(r.LeaseSeconds) * time.Second
}

func (r *holdRecord) encode() string {
	b, _ := json.Marshal(r) // plain strings and times: cannot fail
	return string(b)
}

// parseHoldRecords reads every holder record out of image metadata;
// unreadable ones are left out (a lock entry without a record is handled
// as such).
func parseHoldRecords(meta map[string]string) map[string]*holdRecord {
	out := map[string]*holdRecord{}
	for key, value := range meta {
		node, ok := strings.CutPrefix(key, metaHolderPrefix)
		if !ok {
			continue
		}
		var r holdRecord
		if json.Unmarshal([]byte(value), &r) == nil && r.Node == node {
			out[node] = &r
		}
	}
	return out
}

// fenceNote is what metaFencedPrefix+node holds after a takeover.
type fenceNote struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Until   time.Time `json:"until"`
	Clients []string  `json:"clients"`
}

// holdInfo is what the node record keeps about this node's hold: enough
// to renew and release it without the stage secrets (the key sits in a
// 0600 file, holdKeyFile).
type holdInfo struct {
	User      string    `json:"user"`
	Monitors  []string  `json:"monitors"`
	Exclusive bool      `json:"exclusive"`
	Since     time.Time `json:"since"`
}

// holdKeyFile is where the cephx key of a held volume is kept from stage
// to unstage (NodeUnstage carries no secrets). It sits with the mappers'
// short-lived key files, so a leftover shows in the same place.
func holdKeyFile(stateDir, volumeID string) string {
	return filepath.Join(keyDir(stateDir), "hold-"+noderecord.Key(volumeID))
}

// uniqueSorted returns the non-empty strings of lists, deduplicated and
// sorted.
func uniqueSorted(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if s != "" && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}
