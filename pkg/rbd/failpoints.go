package rbd

import (
	"context"

	"github.com/tkestack/tkestor-csi/pkg/common/failpoint"
)

// Failpoints between the steps of the controller's multi-step operations.
// The crash test arms one (TKESTOR_FAILPOINTS), waits for "FAILPOINT <name>
// reached", kills the plugin with SIGKILL, restarts it and retries: the
// retry must converge to the same result and leave nothing behind.
const (
	// CreateVolume (empty, clone from volume, restore from snapshot).
	FPCreateAfterLock       = "rbd.create.after-lock"
	FPCreateAfterTempSnap   = "rbd.create.after-temp-snap"    // clone from volume only
	FPCreateAfterImage      = "rbd.create.after-image"        // image created or cloned
	FPCreateAfterRecord     = "rbd.create.after-record"       // back-pointer written
	FPCreateAfterTempSnapRm = "rbd.create.after-temp-snap-rm" // clone from volume only
	FPCreateAfterResize     = "rbd.create.after-resize"
	FPCreateAfterFlatten    = "rbd.create.after-flatten"
	FPCreateAfterCommit     = "rbd.create.after-commit"

	// DeleteVolume and DeleteSnapshot.
	FPDeleteAfterLock    = "rbd.delete.after-lock"
	FPDeleteAfterSnapsRm = "rbd.delete.after-snaps-rm"
	FPDeleteAfterRemove  = "rbd.delete.after-remove" // removed or moved to trash
	FPDeleteAfterReap    = "rbd.delete.after-reap"

	// CreateSnapshot.
	FPSnapAfterLock       = "rbd.snapshot.after-lock"
	FPSnapAfterTempSnap   = "rbd.snapshot.after-temp-snap"
	FPSnapAfterClone      = "rbd.snapshot.after-clone"
	FPSnapAfterRecord     = "rbd.snapshot.after-record"
	FPSnapAfterTempSnapRm = "rbd.snapshot.after-temp-snap-rm"
	FPSnapAfterFlatten    = "rbd.snapshot.after-flatten"
	FPSnapAfterSnap       = "rbd.snapshot.after-snap"
	FPSnapAfterCommit     = "rbd.snapshot.after-commit"
)

// CreateFailpoints lists the CreateVolume points in order.
func CreateFailpoints() []string {
	return []string{
		FPCreateAfterLock, FPCreateAfterTempSnap, FPCreateAfterImage, FPCreateAfterRecord,
		FPCreateAfterTempSnapRm, FPCreateAfterResize, FPCreateAfterFlatten, FPCreateAfterCommit,
	}
}

// DeleteFailpoints lists the DeleteVolume/DeleteSnapshot points in order.
func DeleteFailpoints() []string {
	return []string{FPDeleteAfterLock, FPDeleteAfterSnapsRm, FPDeleteAfterRemove, FPDeleteAfterReap}
}

// SnapshotFailpoints lists the CreateSnapshot points in order.
func SnapshotFailpoints() []string {
	return []string{
		FPSnapAfterLock, FPSnapAfterTempSnap, FPSnapAfterClone, FPSnapAfterRecord,
		FPSnapAfterTempSnapRm, FPSnapAfterFlatten, FPSnapAfterSnap, FPSnapAfterCommit,
	}
}

// op is one running multi-step operation: every step boundary hits its
// failpoint, then checks the deadline and the backend leases, so work
// stops before a lease could pass to another process.
type op struct {
	ctx    context.Context
	leases leases
}

// step marks a step boundary; on a nil op it does nothing.
func (o *op) step(point string) error {
	if o == nil {
		return nil
	}
	failpoint.Hit(point)
	if err := o.ctx.Err(); err != nil {
		return err
	}
	return o.leases.check()
}
