package rbd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// renew refreshes this node's heartbeat on the image header, after
// checking the lock entry is still ours. A hold that was taken over (this
// node was fenced) is marked lost: the volume reports unhealthy, and the
// heartbeat stops so the other node's record is not overwritten.
func (o *cephOwnership) renew(ctx context.Context, rec *stageRecord) error {
	if rec.Hold == nil || o.lostReason(rec.VolumeID) != "" {
		return nil
	}
	key, err := readHoldKey(o.stateDir, rec.VolumeID)
	if errors.Is(err, os.ErrNotExist) {
		return nil // released meanwhile, or from a build without holds
	}
	if err != nil {
		return err
	}
	return o.withTarget(ctx, rec, key, func(t *holdTarget) error {
		ok, entries, err := t.holds(o.node)
		if err != nil {
			return err
		}
		if !ok {
			reason := fmt.Sprintf("this node's hold on the volume was taken over (hold lock now: %s); "+
				"its Ceph clients were fenced: unstage it", describeLockers(entries))
			o.setLost(rec.VolumeID, reason)
			klog.FromContext(ctx).Error(nil, "Lost the hold of a staged volume", "volumeID", rec.VolumeID,
				"lockers", describeLockers(entries))
			return nil
		}
		mapped := rec.Mapping != nil && len(rec.ClientAddrs) > 0
		return t.writeHeartbeat(o.record(t, rec, mapped))
	})
}

func describeLockers(entries []locker) string {
	if len(entries) == 0 {
		return "free"
	}
	parts := make([]string, 0, len(entries))
	for _, l := range entries {
		if node, ok := cookieNode(l.Cookie); ok {
			parts = append(parts, "node "+node)
		} else {
			parts = append(parts, l.Cookie)
		}
	}
	return strings.Join(parts, ", ")
}

// renewLoop renews every held volume of this node each lease/3, starting
// at once: after a plugin restart, the holds of volumes that stayed
// staged (their records are on disk) are resumed before anyone can take
// them over.
func (ns *NodeServer) renewLoop(interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ns.renewAll(interval)
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// renewAll renews each record's hold, skipping volumes an RPC is working
// on (their stage or unstage takes care of the hold).
func (ns *NodeServer) renewAll(interval time.Duration) {
	ids, err := ns.records.List()
	if err != nil {
		klog.ErrorS(err, "Listing node records for hold renewal")
	}
	for _, id := range ids {
		ns.renewOne(id, interval)
	}
}

func (ns *NodeServer) renewOne(volumeID string, interval time.Duration) {
	if !ns.locks.TryAcquire(volumeID) {
		return
	}
	defer ns.locks.Release(volumeID)
	rec, err := ns.loadRecord(volumeID)
	if err != nil || rec == nil || rec.Hold == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), interval)
	defer cancel()
	logger := klog.Background().WithValues("volumeID", volumeID)
	if err := ns.owner.renew(klog.NewContext(ctx, logger), rec); err != nil {
		logger.Error(err, "Renewing the hold failed")
	}
	if ns.owner.lostReason(volumeID) != "" {
		ns.stopFencedMapping(logger, rec)
	}
}

// stopFencedMapping ends the mapper of a volume another node took over.
// Its client is blocklisted, so it can no longer read or write; a
// blocklisted rbd-fuse spins and leaves every request on its mount
// hanging (measured: stat blocked for minutes), which would hang this
// node's health checks and its unstage. Killed, its mount fails fast and
// the volume can be unstaged.
// TODO: rbd-nbd would spin the same way and is not stopped yet; its
// unstage may hang until the process is killed by hand.
func (ns *NodeServer) stopFencedMapping(logger klog.Logger, rec *stageRecord) {
	if rec.Mapping == nil || rec.Mapping.Mapper != MounterFuse || rec.Mapping.WorkDir == "" {
		return
	}
	for _, pid := range fuseProcesses(rec.Mapping.WorkDir) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			logger.Info("Stopped the mapper of a volume this node was fenced from", "pid", pid)
		}
	}
}
