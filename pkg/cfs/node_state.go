package cfs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// stageRecord is what the node keeps (0600, under the state directory)
// per staged volume: enough to remount after the client died and to
// clean up. The owner is not in it; it is in the client config beside it,
// also 0600, which the client needs anyway.
type stageRecord struct {
	VolumeID    string   `json:"volumeID"`
	VolName     string   `json:"volName"`
	Masters     []string `json:"masters"`
	StagingPath string   `json:"stagingPath"`
	ConfigFile  string   `json:"configFile"`
	Subdir      string   `json:"subdir,omitempty"`
	ReadOnly    bool     `json:"readOnly"`
	AccessMode  string   `json:"accessMode"`
	// OwnerFrom says where the owner in the config came from: "secret"
	// or "master" (looked up with /admin/getVol).
	OwnerFrom string `json:"ownerFrom"`
	// Source and FsType are what mountinfo showed once the client mounted.
	Source string `json:"source,omitempty"`
	FsType string `json:"fsType,omitempty"`
	// Targets are the publish targets, with their read-only flag.
	Targets map[string]bool `json:"targets,omitempty"`
}

// loadRecord returns the volume's record, or nil when there is none.
func (ns *NodeServer) loadRecord(volumeID string) (*stageRecord, error) {
	rec := &stageRecord{}
	err := ns.records.Load(volumeID, rec)
	if errors.Is(err, noderecord.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// saveRecord writes the record atomically.
func (ns *NodeServer) saveRecord(rec *stageRecord) error {
	return ns.records.Save(rec.VolumeID, rec)
}

// mountState is what a path is, as far as one volume goes.
type mountState int

const (
	// notMounted: nothing is mounted on the path.
	notMounted mountState = iota
	// mountedLive: a mount of the volume whose client answers.
	mountedLive
	// mountedDead: a mount of the volume whose client is gone
	// ("transport endpoint is not connected").
	mountedDead
	// mountedOther: something else is mounted there.
	mountedOther
)

func (s mountState) String() string {
	return [...]string{"not mounted", "mounted", "mounted, client gone", "another mount"}[s]
}

// stateOf looks path up in mountinfo: the source and type tell whether it
// is the volume's FUSE mount (or a bind of it), never mere existence.
func (ns *NodeServer) stateOf(path, volName string) (mountState, *mount.Entry, error) {
	e, err := ns.mounter.Lookup(path)
	if err != nil {
		return notMounted, nil, err
	}
	switch {
	case e == nil:
		return notMounted, nil, nil
	case !isVolumeMount(e, volName):
		return mountedOther, e, nil
	case mount.IsCorruptedMount(path):
		return mountedDead, e, nil
	}
	return mountedLive, e, nil
}

// isVolumeMount reports whether e is the FUSE client's mount of volName:
// the real client shows source cubefs-<vol> (chubaofs-<vol> on 2.5) and a
// type fuse.cubefs, fuse.cubes (3.0), fuse.chubaofs or fuse by release.
func isVolumeMount(e *mount.Entry, volName string) bool {
	if e.FsType != "fuse" && !strings.HasPrefix(e.FsType, "fuse.") {
		return false
	}
	return e.Source == "cubefs-"+volName || e.Source == "chubaofs-"+volName
}

// unmountVolume unmounts path if it is a (live or dead) mount of volName
// and reports whether it did.
func (ns *NodeServer) unmountVolume(path, volName string) (bool, error) {
	st, _, err := ns.stateOf(path, volName)
	if err != nil {
		return false, err
	}
	if st != mountedLive && st != mountedDead {
		return false, nil
	}
	if err := ns.mounter.Unmount(path); err != nil {
		return false, fmt.Errorf("unmount %s: %w", path, err)
	}
	return true, nil
}

// bindsOf lists the other mount points of the filesystem mounted at path:
// bind mounts share its device number and source. A FUSE mount has a
// device of its own, so a second staging of the same volume (another
// client) is not among them. Nil when path is not a mount.
func (ns *NodeServer) bindsOf(path string) ([]string, error) {
	e, err := ns.mounter.Lookup(path)
	if err != nil || e == nil {
		return nil, err
	}
	all, err := ns.mounter.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range all {
		if o.Target != e.Target && o.Source == e.Source && o.Major == e.Major && o.Minor == e.Minor {
			out = append(out, o.Target)
		}
	}
	return out, nil
}

// otherUse returns a mount point other than except through which the
// staged volume is still used: a bind of the staging mount, or a recorded
// target that is still mounted. "" when there is none.
func (ns *NodeServer) otherUse(rec *stageRecord, except string) (string, error) {
	binds, err := ns.bindsOf(rec.StagingPath)
	if err != nil {
		return "", err
	}
	for _, b := range binds {
		if b != except {
			return b, nil
		}
	}
	return ns.liveTarget(rec, except), nil
}
