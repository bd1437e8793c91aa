package cfs

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// Sentinel errors of the driver. Helpers wrap them with %w; toStatus is the
// only place that turns errors into gRPC codes.
var (
	// ErrInvalidArgument: a missing or malformed request field or parameter.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrVolumeNotFound: the volume (or the path given for it) does not exist.
	ErrVolumeNotFound = errors.New("volume not found")
	// ErrNameConflict: the name is taken by a volume with another owner,
	// capacity or layout.
	ErrNameConflict = errors.New("volume exists with different properties")
	// ErrBeingDeleted: the master holds the volume (or its name) marked for
	// deletion; nothing can be done with it until the purge.
	ErrBeingDeleted = errors.New("volume is being deleted on the master")
	// ErrInProgress: another call is working on the same volume.
	ErrInProgress = errors.New("an operation on this volume is already in progress")
	// ErrWrongState: the volume or a path is not in the state the call
	// needs (not staged, staged elsewhere, a second RWOP target, ...).
	ErrWrongState = errors.New("volume is not in the required state")
	// ErrOutOfRange: the capacity range cannot be met.
	ErrOutOfRange = errors.New("capacity out of range")
	// ErrPermission: the owner given does not own the volume.
	ErrPermission = errors.New("owner does not match the volume")
	// ErrBadToken: a ListVolumes starting token this driver never issued.
	ErrBadToken = errors.New("invalid starting token")
	// ErrUnavailable: the masters or the FUSE client could not be reached.
	ErrUnavailable = errors.New("backend unavailable")
)

// codeRule maps errors (ours, the master client's, the access rules') to
// a gRPC code; checked in order.
type codeRule struct {
	targets []error
	code    codes.Code
}

var codeRules = []codeRule{ //nolint:gochecknoglobals // constant table
	{[]error{context.DeadlineExceeded}, codes.DeadlineExceeded},
	{[]error{context.Canceled}, codes.Canceled},
	{[]error{
		ErrInvalidArgument, access.ErrUnsupported, master.ErrInvalidParam,
		master.ErrBadOwner, master.ErrBadAddress,
	}, codes.InvalidArgument},
	{[]error{ErrVolumeNotFound, master.ErrVolNotFound}, codes.NotFound},
	{[]error{ErrNameConflict}, codes.AlreadyExists},
	{[]error{ErrInProgress, ErrBadToken}, codes.Aborted},
	{[]error{ErrBeingDeleted, ErrWrongState, master.ErrVolMarkedDeleted}, codes.FailedPrecondition},
	{[]error{ErrOutOfRange}, codes.OutOfRange},
	{[]error{ErrPermission, master.ErrAuthKeyMismatch}, codes.PermissionDenied},
	{[]error{master.ErrNoCapacity}, codes.ResourceExhausted},
	{[]error{ErrUnavailable, master.ErrUnavailable}, codes.Unavailable},
}

// toStatus turns any error into a gRPC status error; nil stays nil.
// Messages come from our own wrapping and from the master client, neither
// of which carries the owner or its key.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codeOf(err), err.Error())
}

// codeOf picks the gRPC code of err; unknown errors are Internal.
func codeOf(err error) codes.Code {
	for _, r := range codeRules {
		for _, target := range r.targets {
			if errors.Is(err, target) {
				return r.code
			}
		}
	}
	return codes.Internal
}
