package rbd

import (
	"context"
	"errors"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

// sentinel is an error that knows its gRPC code. Every sentinel of this
// package is one, so toStatus needs no table entry for it: a node-side
// sentinel declared with newSentinel in errors_node.go maps by itself.
type sentinel struct {
	code codes.Code
	text string
}

func (e *sentinel) Error() string { return e.text }

// newSentinel declares a sentinel error with its gRPC code.
func newSentinel(code codes.Code, text string) error {
	return &sentinel{code: code, text: text}
}

// Sentinel errors of the controller. Helpers wrap them with %w and add the
// object they concern; only toStatus turns them into gRPC statuses.
var (
	// ErrMissingField reports a required request field that is empty.
	ErrMissingField = newSentinel(codes.InvalidArgument, "missing required field")
	// ErrInvalidParam reports a bad StorageClass parameter or request field.
	ErrInvalidParam = newSentinel(codes.InvalidArgument, "invalid parameter")
	// ErrMissingCredentials reports secrets without a usable cephx user and key.
	ErrMissingCredentials = newSentinel(codes.InvalidArgument, "missing or malformed credentials")
	// ErrUnknownCluster reports a clusterID that the cluster config does not list.
	ErrUnknownCluster = newSentinel(codes.InvalidArgument, "unknown cluster")
	// ErrPoolNotFound reports a pool that does not exist.
	ErrPoolNotFound = newSentinel(codes.InvalidArgument, "pool not found")
	// ErrBadID reports a volume or snapshot ID that does not decode.
	ErrBadID = newSentinel(codes.NotFound, "malformed ID")
	// ErrVolumeNotFound reports a volume whose image does not exist.
	ErrVolumeNotFound = newSentinel(codes.NotFound, "volume not found")
	// ErrNodeNotFound reports a node that never registered in the
	// volume's pool (registry.go).
	ErrNodeNotFound = newSentinel(codes.NotFound, "node not found")
	// ErrSnapshotNotFound reports a snapshot whose image does not exist.
	ErrSnapshotNotFound = newSentinel(codes.NotFound, "snapshot not found")
	// ErrNameConflict reports a name reused with a different size or source.
	ErrNameConflict = newSentinel(codes.AlreadyExists, "name already used with other arguments")
	// ErrPublishConflict reports a publish to a node that already has the
	// volume with another access mode or read-only flag.
	ErrPublishConflict = newSentinel(codes.AlreadyExists, "already published with other arguments")
	// ErrInUse reports a volume that is mapped or published somewhere.
	ErrInUse = newSentinel(codes.FailedPrecondition, "volume in use")
	// ErrHasSnapshots reports an image with snapshots the driver did not make.
	ErrHasSnapshots = newSentinel(codes.FailedPrecondition, "image has foreign snapshots")
	// ErrNotConfigured reports a call that needs controller credentials
	// (--controller-secret-dir) when none are configured.
	ErrNotConfigured = newSentinel(codes.FailedPrecondition, "controller credentials not configured")
	// ErrInProgress reports an operation on the same name or image that is
	// already running, here or in another controller process.
	ErrInProgress = newSentinel(codes.Aborted, "operation already in progress")
	// ErrLeaseLost reports a backend lock that could not be renewed in time;
	// the operation stops before another process may take over.
	ErrLeaseLost = newSentinel(codes.Aborted, "backend lock lease lost")
	// ErrBadToken reports a pagination token this driver did not issue.
	ErrBadToken = newSentinel(codes.Aborted, "invalid starting token")
	// ErrOutOfRange reports a capacity range the driver cannot satisfy.
	ErrOutOfRange = newSentinel(codes.OutOfRange, "capacity out of range")
	// ErrCorrupt reports backend state that contradicts itself (an image
	// record naming another request); never acted upon automatically.
	ErrCorrupt = newSentinel(codes.Internal, "inconsistent backend state")
)

// errnoCodes maps errno values returned by librados/librbd.
func errnoCode(errno syscall.Errno) (codes.Code, bool) {
	switch errno {
	case syscall.ENOENT:
		return codes.NotFound, true
	case syscall.EEXIST:
		return codes.AlreadyExists, true
	case syscall.EBUSY, syscall.ENOTEMPTY:
		return codes.FailedPrecondition, true
	case syscall.ENOSPC, syscall.EDQUOT:
		return codes.ResourceExhausted, true
	case syscall.ETIMEDOUT:
		return codes.DeadlineExceeded, true
	case syscall.EPERM, syscall.EACCES:
		return codes.PermissionDenied, true
	case syscall.ENOTCONN, syscall.ESHUTDOWN, syscall.ECONNREFUSED:
		return codes.Unavailable, true
	}
	return codes.OK, false
}

// toStatus is the one place where errors become gRPC statuses.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codeOf(err), err.Error())
}

// codeOf picks the gRPC code for err; the first match wins.
func codeOf(err error) codes.Code {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st.Code()
	}
	var s *sentinel
	switch {
	case errors.As(err, &s):
		return s.code
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, access.ErrUnsupported):
		return codes.InvalidArgument
	}
	if errno, ok := cephErrno(err); ok {
		if code, ok := errnoCode(errno); ok {
			return code
		}
	}
	return codes.Internal
}

// cephErrno extracts the errno of a go-ceph error (they carry it negative).
func cephErrno(err error) (syscall.Errno, bool) {
	var coded interface{ ErrorCode() int }
	if errors.As(err, &coded) {
		n := coded.ErrorCode()
		if n < 0 {
			n = -n
		}
		return syscall.Errno(n), true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno, true
	}
	return 0, false
}

// isErrno reports whether err is a go-ceph (or syscall) error with errno.
func isErrno(err error, errno syscall.Errno) bool {
	got, ok := cephErrno(err)
	return ok && got == errno
}

// isNotFound reports a librados/librbd ENOENT.
func isNotFound(err error) bool { return isErrno(err, syscall.ENOENT) }
