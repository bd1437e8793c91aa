// Package access holds the access-mode rules both drivers enforce (the
// table in the design, §5): which modes a volume kind supports, and what a
// mode allows on the node path.
package access

import (
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// ErrUnsupported reports a capability the driver does not support; callers
// map it to InvalidArgument.
var ErrUnsupported = errors.New("unsupported volume capability")

// Kind is what a volume is, as far as access rules go.
type Kind int

const (
	// RBDFilesystem is an RBD image with a filesystem on it.
	RBDFilesystem Kind = iota
	// RBDBlock is an RBD image handed to the pod as a raw block device.
	RBDBlock
	// CFS is a ChubaoFS volume (always a filesystem).
	CFS
)

func (k Kind) String() string {
	switch k {
	case RBDFilesystem:
		return "rbd filesystem"
	case RBDBlock:
		return "rbd block"
	case CFS:
		return "chubaofs"
	}
	return "unknown"
}

// Rule is what one access mode allows.
type Rule struct {
	// SingleNode: at most one node may stage the volume.
	SingleNode bool
	// SingleTarget: at most one publish target path (RWOP).
	SingleTarget bool
	// ReadOnly: every stage and publish is read-only.
	ReadOnly bool
}

// Mode maps a CSI access mode to its rule for a kind of volume.
func Mode(kind Kind, mode csi.VolumeCapability_AccessMode_Mode) (Rule, error) {
	switch mode {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		return Rule{SingleNode: true}, nil
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER:
		return Rule{SingleNode: true, SingleTarget: true}, nil
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:
		return Rule{SingleNode: true, ReadOnly: true}, nil
	case csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return Rule{ReadOnly: true}, nil
	case csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
		// Two nodes mounting one ext4/xfs corrupt it; block and a shared
		// filesystem are fine.
		if kind == RBDFilesystem {
			return Rule{}, fmt.Errorf("%w: %s on an %s volume: a filesystem mounted on two nodes is corrupted",
				ErrUnsupported, mode, kind)
		}
		return Rule{}, nil
	}
	return Rule{}, fmt.Errorf("%w: access mode %s on an %s volume", ErrUnsupported, mode, kind)
}

// Capability checks one capability for a backend: the access type must be
// set and fit the backend, and the mode must be in the table. rbd says
// whether the backend is RBD (block allowed) or ChubaoFS (mount only).
func Capability(rbd bool, c *csi.VolumeCapability) (Rule, Kind, error) {
	if c == nil {
		return Rule{}, 0, fmt.Errorf("%w: empty volume capability", ErrUnsupported)
	}
	if c.GetAccessMode() == nil {
		return Rule{}, 0, fmt.Errorf("%w: volume capability without access_mode", ErrUnsupported)
	}
	kind, err := kindOf(rbd, c)
	if err != nil {
		return Rule{}, 0, err
	}
	rule, err := Mode(kind, c.GetAccessMode().GetMode())
	return rule, kind, err
}

// Capabilities checks every capability of a request; at least one is needed.
func Capabilities(rbd bool, caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return fmt.Errorf("%w: volume_capabilities is empty", ErrUnsupported)
	}
	for _, c := range caps {
		if _, _, err := Capability(rbd, c); err != nil {
			return err
		}
	}
	return nil
}

func kindOf(rbd bool, c *csi.VolumeCapability) (Kind, error) {
	switch {
	case c.GetBlock() != nil && rbd:
		return RBDBlock, nil
	case c.GetBlock() != nil:
		return 0, fmt.Errorf("%w: raw block volumes on chubaofs", ErrUnsupported)
	case c.GetMount() != nil && rbd:
		return RBDFilesystem, nil
	case c.GetMount() != nil:
		return CFS, nil
	}
	return 0, fmt.Errorf("%w: volume capability has neither mount nor block access type", ErrUnsupported)
}
