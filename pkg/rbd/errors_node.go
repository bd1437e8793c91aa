package rbd

import (
	"fmt"

	"google.golang.org/grpc/codes"
)

// Node-side sentinels. Each carries its gRPC code, so toStatus maps them
// (and the mount helpers' errors they wrap) with no extra table.
var (
	// ErrMapFailed reports that a mapper could not attach an image.
	ErrMapFailed = newSentinel(codes.Internal, "map failed")
	// ErrUnmapFailed reports that a mapper could not detach an image.
	ErrUnmapFailed = newSentinel(codes.Internal, "unmap failed")
	// ErrMappingGone reports a recorded mapping whose device or mapper
	// process no longer serves the image.
	ErrMappingGone = newSentinel(codes.FailedPrecondition, "mapping is gone")
	// ErrDeviceNotGrown reports a device that did not show the image's new
	// size in time.
	ErrDeviceNotGrown = newSentinel(codes.Unavailable, "device did not grow")
	// ErrImageNotMapped reports an image that the mapper cannot find.
	ErrImageNotMapped = newSentinel(codes.NotFound, "image not found by the mapper")
	// ErrNotStaged reports a volume without a live staging mount.
	ErrNotStaged = newSentinel(codes.FailedPrecondition, "volume is not staged on this node")
	// ErrStagedElsewhere reports a volume already staged at another path
	// on this node.
	ErrStagedElsewhere = newSentinel(codes.FailedPrecondition, "volume is staged at another path")
	// ErrPathInUse reports a staging or target path that already holds
	// another mount, or the volume in another mode.
	ErrPathInUse = newSentinel(codes.AlreadyExists, "path is mounted with another source or mode")
	// ErrSingleTarget reports a second publish target for a
	// SINGLE_NODE_SINGLE_WRITER volume.
	ErrSingleTarget = newSentinel(codes.FailedPrecondition,
		"volume is single-writer and published at another target")
	// ErrStillPublished reports an unstage while targets are mounted.
	ErrStillPublished = newSentinel(codes.FailedPrecondition, "volume is still published")
	// ErrVolumePathNotFound reports a stats or expand path that is not a
	// mount of the volume.
	ErrVolumePathNotFound = newSentinel(codes.NotFound, "volume path not found")
	// ErrBadCapability reports a volume capability the node cannot honour
	// (bad mount flags, unsupported filesystem, block vs mount mismatch).
	ErrBadCapability = newSentinel(codes.InvalidArgument, "invalid volume capability")
	// ErrCannotFormat reports a device that must not be formatted: blank
	// but read-only, or holding another filesystem or a partition table.
	ErrCannotFormat = newSentinel(codes.FailedPrecondition, "device cannot be used as asked")
	// ErrResizeFailed reports a filesystem that could not be grown.
	ErrResizeFailed = newSentinel(codes.Internal, "filesystem resize failed")
	// ErrHeld reports a single-node volume that another node holds (or a
	// multi-node stage while one node holds it for writing); the message
	// names the holder.
	ErrHeld = newSentinel(codes.FailedPrecondition, "volume is held by another node")
	// ErrHoldLost reports a hold that another node took over while this
	// node was staging (this node was fenced).
	ErrHoldLost = newSentinel(codes.FailedPrecondition, "single-node hold lost")
	// ErrFenceFailed reports a takeover that could not blocklist the dead
	// holder's clients; nothing was broken.
	ErrFenceFailed = newSentinel(codes.Unavailable, "fencing failed")
)

// notStaged wraps a reason into ErrNotStaged.
func notStaged(reason string) error {
	return fmt.Errorf("%w: %s", ErrNotStaged, reason)
}

// abortedStatus is the answer to a call for a volume that another call is
// working on.
func abortedStatus(volumeID string) error {
	return toStatus(fmt.Errorf("%w: volume %q", ErrInProgress, volumeID))
}
