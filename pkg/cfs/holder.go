package cfs

import (
	"context"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// Claim describes one node's use of a volume, for a Holder.
type Claim struct {
	VolumeID string
	NodeID   string
	// StagingPath is the live mount of the volume's root on this node.
	StagingPath string
	// Rule is what the access mode allows (SingleNode for RWO/RWOP).
	Rule access.Rule
	// Mode is the CSI access mode, for the record.
	Mode string
	// Resume asks to keep renewing a holding of this node after a plugin
	// restart: it succeeds only while the current lease is this node's,
	// and never takes a free or another node's volume.
	Resume bool
}

// Holder guards single-node volumes across nodes. NodeStage calls Claim
// after the FUSE mount is confirmed and before it reports success (and
// again when it finds the volume already staged, so Claim must be
// idempotent); a failed Claim unmounts again. NodeUnstage calls Release
// while the staging mount is still in place, before unmounting.
type Holder interface {
	Claim(ctx context.Context, c Claim) error
	Release(ctx context.Context, c Claim) error
}
