package cfs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
)

// Volume IDs name the backend volume and its cluster, so Delete, Expand
// and the node need no other store:
//
//	cfs1-<volume name>@<master>,<master>...   masters inline (sorted)
//	cfs1-<volume name>#<16 hex>               masters too long: their hash
//
// "cfs1" is the format version. Volume names cannot hold '@' or '#', nor
// can host:port lists, so the split is unambiguous. The inline form is used
// whenever the ID fits CSI's 128 bytes; a hashed ID is resolved from the
// secret key masterAddr, or from a cluster the controller already knows.
const (
	idPrefix      = "cfs1-"
	idInlineSep   = "@"
	idHashSep     = "#"
	maxIDLen      = 128
	clusterKeyLen = 16
)

// errBadID reports a string that is not a volume ID of ours.
var errBadID = errors.New("not a chubaofs volume ID of this driver")

// volNameRE is the master's volume name rule (2.0 to 3.5.3).
var volNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,61}[a-zA-Z0-9]$`) //nolint:gochecknoglobals // constant

// clusterKeyRE is a cluster key: hex of the masters' hash.
var clusterKeyRE = regexp.MustCompile(`^[0-9a-f]{16}$`) //nolint:gochecknoglobals // constant

// volumeID is a decoded volume ID.
type volumeID struct {
	// Name is the backend volume name.
	Name string
	// Masters is the sorted master list; nil in the hashed form.
	Masters []string
	// Cluster is the hash of the sorted master list (both forms).
	Cluster string
}

// newVolumeID builds the ID of name on the cluster of masters.
func newVolumeID(name string, masters []string) volumeID {
	sorted := canonicalMasters(masters)
	return volumeID{Name: name, Masters: sorted, Cluster: clusterKey(sorted)}
}

// String encodes the ID, inline when it fits.
func (id volumeID) String() string {
	inline := idPrefix + id.Name + idInlineSep + strings.Join(id.Masters, ",")
	if len(id.Masters) > 0 && len(inline) <= maxIDLen {
		return inline
	}
	return idPrefix + id.Name + idHashSep + id.Cluster
}

// lockKey names the backend volume for in-flight locks: both forms of one
// volume's ID give the same key.
func (id volumeID) lockKey() string { return id.Cluster + "/" + id.Name }

// parseVolumeID decodes s strictly: only what String produces is accepted.
func parseVolumeID(s string) (volumeID, error) {
	bad := fmt.Errorf("%w: %q", errBadID, s)
	rest, ok := strings.CutPrefix(s, idPrefix)
	if !ok || len(s) > maxIDLen {
		return volumeID{}, bad
	}
	if name, key, ok := strings.Cut(rest, idHashSep); ok {
		if !volNameRE.MatchString(name) || !clusterKeyRE.MatchString(key) {
			return volumeID{}, bad
		}
		return volumeID{Name: name, Cluster: key}, nil
	}
	name, list, ok := strings.Cut(rest, idInlineSep)
	if !ok || !volNameRE.MatchString(name) {
		return volumeID{}, bad
	}
	masters := strings.Split(list, ",")
	for _, m := range masters {
		if master.CheckAddress(m) != nil {
			return volumeID{}, bad
		}
	}
	id := newVolumeID(name, masters)
	if id.String() != s {
		return volumeID{}, bad // not canonical: unsorted, duplicates, case
	}
	return id, nil
}

// canonicalMasters sorts, lower-cases and de-duplicates a master list.
func canonicalMasters(masters []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(masters))
	for _, m := range masters {
		m = strings.ToLower(strings.TrimSpace(m))
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// clusterKey hashes a canonical master list.
func clusterKey(sorted []string) string {
	sum := sha256.Sum256([]byte(strings.Join(sorted, ",")))
	return hex.EncodeToString(sum[:])[:clusterKeyLen]
}

// Backend volume names are derived from the CSI request name, so a retried
// CreateVolume always asks for the same volume:
//
//	tkestor-<name>               the name is already clean (lower-case
//	                             letters, digits, '-'; at most 55 bytes),
//	                             e.g. tkestor-pvc-<uuid>
//	tkestor-<cleaned>.<10 hex>   anything else: a cleaned, shortened
//	                             name and a hash of the full request name
//
// A clean name never holds '.', so the two forms cannot collide. The
// prefix marks volumes this driver made: ListVolumes shows only those, and
// DeleteVolume refuses to delete anything else.
const (
	volNamePrefix = "tkestor-"
	maxVolName    = 63
	nameHashLen   = 10
)

// cleanNameRE is a request name used as is.
var cleanNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`) //nolint:gochecknoglobals // constant

// backendName derives the backend volume name of a CSI request name.
func backendName(requestName string) string {
	if len(volNamePrefix)+len(requestName) <= maxVolName && cleanNameRE.MatchString(requestName) {
		return volNamePrefix + requestName
	}
	sum := sha256.Sum256([]byte(requestName))
	hash := hex.EncodeToString(sum[:])[:nameHashLen]
	room := maxVolName - len(volNamePrefix) - 1 - nameHashLen
	cleaned := cleanName(requestName, room)
	if cleaned == "" {
		cleaned = "vol"
	}
	return volNamePrefix + cleaned + "." + hash
}

// cleanName lower-cases s, turns every other character into '-', and
// trims it to room bytes without a trailing '-'.
func cleanName(s string, room int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() == room {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// isOurVolume reports whether a backend name was derived by backendName.
func isOurVolume(name string) bool {
	return strings.HasPrefix(name, volNamePrefix) && volNameRE.MatchString(name)
}
