package rbd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ceph/go-ceph/rados"
)

// Volume and snapshot IDs are self-describing, so Delete, Expand and every
// node call find the image with nothing but the cluster config:
//
//	0001-v-0c-tkestor-test-0000000000000001-0123456789abcdef0123456789abcdef
//	|    | |  |            |                 image hash (32 lower-case hex)
//	|    | |  |            pool ID (16 lower-case hex; survives pool renames)
//	|    | |  clusterID (key into the cluster config)
//	|    | length of clusterID (2 lower-case hex)
//	|    kind: v = volume (image csi-vol-<hash>), s = snapshot (csi-snap-<hash>)
//	version (4 hex)
//
// At most 4+1+1+1+2+1+36+1+16+1+32 = 96 bytes, within CSI's 128.
const (
	idVersion  = "0001"
	idHashLen  = 32
	poolIDLen  = 16
	maxIDBytes = 128
)

// Image name prefixes: the image name is the prefix plus the ID's hash.
const (
	// VolumeImagePrefix starts the name of every volume image.
	VolumeImagePrefix = "csi-vol-"
	// SnapshotImagePrefix starts the name of every snapshot image.
	SnapshotImagePrefix = "csi-snap-"
)

// IDKind says what an ID names.
type IDKind byte

const (
	// KindVolume is a volume (a CSI volume ID).
	KindVolume IDKind = 'v'
	// KindSnapshot is a snapshot (a CSI snapshot ID).
	KindSnapshot IDKind = 's'
)

func (k IDKind) prefix() string {
	if k == KindSnapshot {
		return SnapshotImagePrefix
	}
	return VolumeImagePrefix
}

// VolumeID is a decoded volume or snapshot ID.
type VolumeID struct {
	// Kind is KindVolume or KindSnapshot.
	Kind IDKind
	// ClusterID names the cluster in the cluster config.
	ClusterID string
	// PoolID is the pool's numeric ID.
	PoolID int64
	// Hash is the 32 hex digits derived from the CSI name.
	Hash string
	// Image is the RBD image name: the kind's prefix plus Hash.
	Image string
}

// errBadID is wrapped into ErrBadID with the reason.
func errBadID(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadID, fmt.Sprintf(format, args...))
}

// nameHash derives the image hash from a CSI name (a volume or snapshot
// request name): the same name always yields the same image.
func nameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:idHashLen/2])
}

// newVolumeID builds the ID of the volume or snapshot a CSI name maps to.
func newVolumeID(kind IDKind, clusterID string, poolID int64, name string) VolumeID {
	h := nameHash(name)
	return VolumeID{Kind: kind, ClusterID: clusterID, PoolID: poolID, Hash: h, Image: kind.prefix() + h}
}

// String encodes the ID.
func (v VolumeID) String() string {
	return fmt.Sprintf("%s-%c-%02x-%s-%016x-%s",
		idVersion, byte(v.Kind), len(v.ClusterID), v.ClusterID, v.PoolID, v.Hash)
}

// DecodeVolumeID strictly decodes a volume ID.
func DecodeVolumeID(id string) (VolumeID, error) {
	return decodeID(id, KindVolume)
}

// DecodeSnapshotID strictly decodes a snapshot ID.
func DecodeSnapshotID(id string) (VolumeID, error) {
	return decodeID(id, KindSnapshot)
}

func decodeID(id string, want IDKind) (VolumeID, error) {
	if id == "" || len(id) > maxIDBytes {
		return VolumeID{}, errBadID("ID length %d is out of range", len(id))
	}
	rest, ok := strings.CutPrefix(id, idVersion+"-")
	if !ok {
		return VolumeID{}, errBadID("unknown ID version")
	}
	if len(rest) < 2 || IDKind(rest[0]) != want || rest[1] != '-' {
		return VolumeID{}, errBadID("not a %s ID", want.noun())
	}
	rest = rest[2:]
	if len(rest) < 3 || rest[2] != '-' || !isLowerHex(rest[:2]) {
		return VolumeID{}, errBadID("bad clusterID length field")
	}
	n, _ := strconv.ParseUint(rest[:2], 16, 8)
	rest = rest[3:]
	if int(n) > len(rest) {
		return VolumeID{}, errBadID("clusterID length exceeds the ID")
	}
	clusterID := rest[:n]
	if err := validateClusterID(clusterID); err != nil {
		return VolumeID{}, errBadID("%v", err)
	}
	rest = rest[n:]
	if len(rest) != 1+poolIDLen+1+idHashLen || rest[0] != '-' || rest[1+poolIDLen] != '-' {
		return VolumeID{}, errBadID("bad pool or image field")
	}
	poolHex, hash := rest[1:1+poolIDLen], rest[2+poolIDLen:]
	if !isLowerHex(poolHex) || !isLowerHex(hash) {
		return VolumeID{}, errBadID("pool and image fields must be lower-case hex")
	}
	pool, err := strconv.ParseInt(poolHex, 16, 64)
	if err != nil {
		return VolumeID{}, errBadID("pool ID out of range")
	}
	return VolumeID{Kind: want, ClusterID: clusterID, PoolID: pool, Hash: hash, Image: want.prefix() + hash}, nil
}

func (k IDKind) noun() string {
	if k == KindSnapshot {
		return "snapshot"
	}
	return "volume"
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// notFound is the sentinel for a missing object of this kind.
func (v VolumeID) notFound() error {
	if v.Kind == KindSnapshot {
		return ErrSnapshotNotFound
	}
	return ErrVolumeNotFound
}

// PoolName resolves the ID's pool to its current name. A pool that no
// longer exists means the volume does not exist either.
func (v VolumeID) PoolName(conn *rados.Conn) (string, error) {
	name, err := conn.GetPoolByID(v.PoolID)
	if err != nil {
		if isNotFound(err) || errors.Is(err, rados.ErrNotFound) {
			return "", fmt.Errorf("%w: pool %d of %s %s does not exist", v.notFound(), v.PoolID, v.Kind.noun(), v)
		}
		return "", fmt.Errorf("resolve pool %d: %w", v.PoolID, err)
	}
	return name, nil
}

// imageNameOK reports whether name is one of our image names of kind.
func imageNameOK(kind IDKind, name string) (string, bool) {
	hash, ok := strings.CutPrefix(name, kind.prefix())
	return hash, ok && len(hash) == idHashLen && isLowerHex(hash)
}
