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

// noHolder claims nothing: until a Holder is plugged in, single-node use
// across nodes rests on Kubernetes' attach/detach controller alone.
type noHolder struct{}

func (noHolder) Claim(context.Context, Claim) error   { return nil }
func (noHolder) Release(context.Context, Claim) error { return nil }
