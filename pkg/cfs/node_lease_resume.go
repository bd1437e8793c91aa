package cfs

import (
	"context"
	"errors"
	"time"

	"k8s.io/klog/v2"
)

// resumeTimeout bounds one attempt to resume a volume's lease at start;
// resumeAttempts is how many are made before the volume is fenced.
const (
	resumeTimeout  = 30 * time.Second
	resumeAttempts = 3
)

// resumeLeases runs once at plugin start: for every single-node volume the
// records say is staged here on a live mount, renewing starts again when
// the current lease is still this node's (as a new generation), and the
// volume is fenced when it is not (it was taken over or released while the
// plugin was down) or cannot be read. A dead or missing staging mount is left to the next
// NodeStage or NodePublish, which claims before it remounts.
func (ns *NodeServer) resumeLeases(ctx context.Context) {
	ids, err := ns.records.List()
	if err != nil {
		klog.ErrorS(err, "Lease resume: some stage records are unreadable")
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		ns.resumeLease(ctx, id)
	}
}

func (ns *NodeServer) resumeLease(ctx context.Context, volumeID string) {
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return // an RPC is at it; it claims itself
	}
	defer unlock()
	logger := klog.Background().WithValues("volumeID", volumeID)
	rec, err := ns.loadRecord(volumeID)
	if err != nil || rec == nil {
		return
	}
	rule := accessRuleOf(rec)
	if !rule.SingleNode {
		return
	}
	st, _, err := ns.stateOf(rec.StagingPath, rec.VolName)
	if err != nil || st != mountedLive {
		return
	}

	c := ns.claimOf(rec, rule)
	c.Resume = true
	for attempt := 1; ; attempt++ {
		err = ns.resumeOnce(ctx, c)
		if err == nil {
			logger.V(2).Info("Single-node lease resumed after restart")
			return
		}
		if errors.Is(err, errLeaseLost) || attempt == resumeAttempts || ctx.Err() != nil {
			break
		}
		logger.Error(err, "Lease resume failed; retrying", "attempt", attempt)
		time.Sleep(ns.resumeRetry())
	}
	// Not provably ours: a live client without a renewer would keep
	// writing after another node took the volume over.
	ns.fence(volumeID, err.Error())
}

func (ns *NodeServer) resumeOnce(ctx context.Context, c Claim) error {
	ctx, cancel := context.WithTimeout(ctx, resumeTimeout)
	defer cancel()
	return ns.holder.Claim(ctx, c)
}

// resumeRetry spaces resume attempts: all of them fit in the lease.
func (ns *NodeServer) resumeRetry() time.Duration {
	lease := ns.opts.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	return lease / 6
}
