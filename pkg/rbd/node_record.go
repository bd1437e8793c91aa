package rbd

import (
	"errors"
	"path/filepath"

	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// blockStageFile is the file in the staging directory that a raw block
// volume's device is bind-mounted onto: it proves the stage is live, and
// NodePublish binds from it.
const blockStageFile = "device"

// stageRecord is what this node keeps about one staged volume. It is
// written before the image is mapped, so a crash at any later step leaves
// enough to undo it; it holds no secret.
type stageRecord struct {
	VolumeID    string `json:"volumeID"`
	NodeID      string `json:"nodeID"`
	StagingPath string `json:"stagingPath"`
	AccessMode  string `json:"accessMode"`
	Block       bool   `json:"block,omitempty"`
	FsType      string `json:"fsType,omitempty"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	ClusterID   string `json:"clusterID"`
	Pool        string `json:"pool"`
	Namespace   string `json:"namespace,omitempty"`
	Image       string `json:"image"`
	Mapper      string `json:"mapper"`
	// Mapping is set once the image is mapped.
	Mapping *Mapping `json:"mapping,omitempty"`
	// Staged is set once the staging mount is in place.
	Staged bool `json:"staged,omitempty"`
	// Targets are the publish targets, recorded before they are mounted.
	Targets []publishTarget `json:"targets,omitempty"`
	// ClientAddrs are the Ceph client addresses that hold the image open
	// for this node (what fencing blocklists), when known.
	ClientAddrs []string `json:"clientAddrs,omitempty"`
	// Hold is this node's hold on the image, set from the claim on and
	// cleared by its release (hold.go).
	Hold *holdInfo `json:"hold,omitempty"`
}

// publishTarget is one NodePublish target path.
type publishTarget struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// stagePoint is the path that is mounted at stage time: the staging
// directory (filesystem) or the device file inside it (block).
func (r *stageRecord) stagePoint() string {
	if r.Block {
		return filepath.Join(r.StagingPath, blockStageFile)
	}
	return r.StagingPath
}

// device returns the mapped device, "" before the image is mapped.
func (r *stageRecord) device() string {
	if r.Mapping == nil {
		return ""
	}
	return r.Mapping.Device
}

// mappingOrGuess returns the recorded mapping, or for a stage that crashed
// before recording it, what the mapper needs to find and undo one.
func (r *stageRecord) mappingOrGuess(fuse *fuseMapper) *Mapping {
	if r.Mapping != nil {
		return r.Mapping
	}
	m := &Mapping{Mapper: r.Mapper, Spec: imageSpec(r.Pool, r.Namespace, r.Image)}
	if r.Mapper == MounterFuse && fuse != nil {
		p := fuse.paths(r.VolumeID)
		m.WorkDir, m.File = p.dir, filepath.Join(p.mnt, r.Image)
	}
	return m
}

func (r *stageRecord) hasTarget(path string) bool {
	for _, t := range r.Targets {
		if t.Path == path {
			return true
		}
	}
	return false
}

func (r *stageRecord) removeTarget(path string) {
	kept := r.Targets[:0]
	for _, t := range r.Targets {
		if t.Path != path {
			kept = append(kept, t)
		}
	}
	r.Targets = kept
}

// loadRecord returns the volume's record, or nil when there is none.
func (ns *NodeServer) loadRecord(volumeID string) (*stageRecord, error) {
	var rec stageRecord
	err := ns.records.Load(volumeID, &rec)
	if errors.Is(err, noderecord.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

func (ns *NodeServer) saveRecord(rec *stageRecord) error {
	return ns.records.Save(rec.VolumeID, rec)
}

// fuse returns the fuse mapper (for paths of crashed stages).
func (ns *NodeServer) fuse() *fuseMapper {
	f, _ := ns.mappers[MounterFuse].(*fuseMapper)
	return f
}
