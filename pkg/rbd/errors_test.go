package rbd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("step: %w", err) }
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"missing field", wrap(missing("name")), codes.InvalidArgument},
		{"invalid param", wrap(ErrInvalidParam), codes.InvalidArgument},
		{"credentials", ErrMissingCredentials, codes.InvalidArgument},
		{"unknown cluster", wrap(ErrUnknownCluster), codes.InvalidArgument},
		{"pool", wrap(ErrPoolNotFound), codes.InvalidArgument},
		{"bad id", wrap(ErrBadID), codes.NotFound},
		{"volume", wrap(wrap(ErrVolumeNotFound)), codes.NotFound},
		{"snapshot", ErrSnapshotNotFound, codes.NotFound},
		{"name conflict", wrap(ErrNameConflict), codes.AlreadyExists},
		{"publish conflict", ErrPublishConflict, codes.AlreadyExists},
		{"in use", wrap(ErrInUse), codes.FailedPrecondition},
		{"foreign snapshots", ErrHasSnapshots, codes.FailedPrecondition},
		{"not configured", ErrNotConfigured, codes.FailedPrecondition},
		{"in progress", wrap(ErrInProgress), codes.Aborted},
		{"lease lost", ErrLeaseLost, codes.Aborted},
		{"bad token", ErrBadToken, codes.Aborted},
		{"out of range", ErrOutOfRange, codes.OutOfRange},
		{"corrupt", ErrCorrupt, codes.Internal},
		{"deadline", wrap(context.DeadlineExceeded), codes.DeadlineExceeded},
		{"canceled", wrap(context.Canceled), codes.Canceled},
		{"unsupported capability", wrap(access.ErrUnsupported), codes.InvalidArgument},
		{"rbd not found", wrap(librbd.ErrNotFound), codes.NotFound},
		{"rados not found", rados.ErrNotFound, codes.NotFound},
		{"rados exists", wrap(rados.ErrObjectExists), codes.AlreadyExists},
		{"rados permission", rados.ErrPermissionDenied, codes.PermissionDenied},
		{"errno busy", wrap(syscall.EBUSY), codes.FailedPrecondition},
		{"errno not empty", syscall.ENOTEMPTY, codes.FailedPrecondition},
		{"errno no space", wrap(syscall.ENOSPC), codes.ResourceExhausted},
		{"errno timed out", syscall.ETIMEDOUT, codes.DeadlineExceeded},
		{"errno not connected", syscall.ENOTCONN, codes.Unavailable},
		{"errno other", syscall.EINVAL, codes.Internal},
		{"plain", errors.New("boom"), codes.Internal},
		{"status passes", status.Error(codes.Unavailable, "x"), codes.Unavailable},
		{"sentinel beats errno", fmt.Errorf("%w: %w", ErrVolumeNotFound, syscall.EBUSY), codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := toStatus(tc.err)
			if status.Code(got) != tc.want {
				t.Fatalf("toStatus(%v) = %v, want %s", tc.err, got, tc.want)
			}
			if msg := status.Convert(got).Message(); !strings.Contains(msg, tc.err.Error()) && tc.name != "status passes" {
				t.Fatalf("message %q lost the error text %q", msg, tc.err.Error())
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("toStatus(nil) != nil")
	}
}

func TestNodeSentinelMapsItself(t *testing.T) {
	t.Parallel()
	errThing := newSentinel(codes.ResourceExhausted, "node thing")
	if got := status.Code(toStatus(fmt.Errorf("ctx: %w", errThing))); got != codes.ResourceExhausted {
		t.Fatalf("got %s", got)
	}
}
