package master

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// numberings are the releases whose error codes the client must read.
var numberings = []emulator.Numbering{ //nolint:gochecknoglobals // constant test table
	emulator.Numbering2x, emulator.Numbering332, emulator.Numbering35,
}

func newEmulated(t *testing.T, opts emulator.Options) (*emulator.Emulator, *Client) {
	t.Helper()
	e, srv := emulator.NewTestServer(t, opts)
	c, err := New([]string{hostOf(srv)}, Options{CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return e, c
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

func mustOwner(t *testing.T, name string) Owner {
	t.Helper()
	o, err := NewOwner(name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestVolumeLifecycleAllNumberings(t *testing.T) {
	t.Parallel()
	for _, n := range numberings {
		t.Run(string(n), func(t *testing.T) {
			t.Parallel()
			_, c := newEmulated(t, emulator.Options{Numbering: n, PurgeAfter: time.Hour})
			ctx := context.Background()
			owner, other := mustOwner(t, "csiuser"), mustOwner(t, "intruder")

			if _, err := c.GetVol(ctx, "vol-a"); !errors.Is(err, ErrVolNotFound) {
				t.Fatalf("GetVol of missing = %v, want ErrVolNotFound", err)
			}
			req := CreateRequest{Name: "vol-a", Owner: owner, CapacityGiB: 10}
			if err := c.CreateVol(ctx, req); err != nil {
				t.Fatalf("CreateVol: %v", err)
			}
			if err := c.CreateVol(ctx, req); !errors.Is(err, ErrDuplicateVol) {
				t.Fatalf("second CreateVol = %v, want ErrDuplicateVol", err)
			}
			v, err := c.GetVol(ctx, "vol-a")
			if err != nil || !v.Owner.Equal(owner) || v.CapacityGiB != 10 || v.MarkedDeleted() {
				t.Fatalf("GetVol = %+v, %v", v, err)
			}

			if err := c.ExpandVol(ctx, "vol-a", owner, 20); err != nil {
				t.Fatalf("ExpandVol: %v", err)
			}
			if err := c.ExpandVol(ctx, "vol-a", owner, 20); !errors.Is(err, ErrExpandNotLarger) {
				t.Fatalf("ExpandVol same size = %v, want ErrExpandNotLarger", err)
			}
			if err := c.ShrinkVol(ctx, "vol-a", owner, 15); err != nil {
				t.Fatalf("ShrinkVol: %v", err)
			}
			if err := c.ShrinkVol(ctx, "vol-a", owner, 15); !errors.Is(err, ErrShrinkNotSmaller) {
				t.Fatalf("ShrinkVol same size = %v, want ErrShrinkNotSmaller", err)
			}
			if err := c.ExpandVol(ctx, "vol-a", other, 30); !errors.Is(err, ErrAuthKeyMismatch) {
				t.Fatalf("ExpandVol other owner = %v, want ErrAuthKeyMismatch", err)
			}
			if err := c.ExpandVol(ctx, "nope", owner, 30); !errors.Is(err, ErrVolNotFound) {
				t.Fatalf("ExpandVol missing = %v, want ErrVolNotFound", err)
			}

			list, err := c.ListVols(ctx, "")
			if err != nil || len(list) != 1 || list[0].Name != "vol-a" || list[0].TotalBytes != 15<<30 {
				t.Fatalf("ListVols = %+v, %v", list, err)
			}

			if err := c.DeleteVol(ctx, "vol-a", other); !errors.Is(err, ErrAuthKeyMismatch) {
				t.Fatalf("DeleteVol other owner = %v, want ErrAuthKeyMismatch", err)
			}
			if err := c.DeleteVol(ctx, "vol-a", owner); err != nil {
				t.Fatalf("DeleteVol: %v", err)
			}
			v, err = c.GetVol(ctx, "vol-a")
			if err != nil || !v.MarkedDeleted() {
				t.Fatalf("GetVol after delete = %+v, %v; want marked", v, err)
			}
			// A repeat while the purge is pending is "no vol policy" on a
			// direct-delete master, whatever its numbering.
			if err := c.DeleteVol(ctx, "vol-a", owner); !errors.Is(err, ErrNoVolPolicy) {
				t.Fatalf("repeated DeleteVol = %v, want ErrNoVolPolicy", err)
			}
			if err := c.DeleteVol(ctx, "nope", owner); !errors.Is(err, ErrVolNotFound) {
				t.Fatalf("DeleteVol missing = %v, want ErrVolNotFound", err)
			}
		})
	}
}

func TestDelayedDelete(t *testing.T) {
	t.Parallel()
	for _, n := range []emulator.Numbering{emulator.Numbering332, emulator.Numbering35} {
		t.Run(string(n), func(t *testing.T) {
			t.Parallel()
			e, c := newEmulated(t, emulator.Options{Numbering: n, Delete: emulator.DeleteDelayed})
			ctx := context.Background()
			owner := mustOwner(t, "csiuser")
			req := CreateRequest{Name: "vol-d", Owner: owner, CapacityGiB: 5}
			if err := c.CreateVol(ctx, req); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteVol(ctx, "vol-d", owner); err != nil {
				t.Fatalf("DeleteVol: %v", err)
			}
			if err := c.DeleteVol(ctx, "vol-d", owner); !errors.Is(err, ErrVolMarkedDeleted) {
				t.Fatalf("repeated DeleteVol = %v, want ErrVolMarkedDeleted", err)
			}
			v, err := c.GetVol(ctx, "vol-d")
			if err != nil || !v.Forbidden || !v.MarkedDeleted() {
				t.Fatalf("GetVol = %+v, %v; want forbidden", v, err)
			}
			if err := c.CreateVol(ctx, req); !errors.Is(err, ErrDuplicateVol) {
				t.Fatalf("re-create while held = %v, want ErrDuplicateVol", err)
			}
			if _, err := e.CompleteDeletions(); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteVol(ctx, "vol-d", owner); !errors.Is(err, ErrVolNotFound) {
				t.Fatalf("DeleteVol after purge = %v, want ErrVolNotFound", err)
			}
		})
	}
}

func TestCreateRejections(t *testing.T) {
	t.Parallel()
	_, c := newEmulated(t, emulator.Options{DataNodes: 3})
	ctx := context.Background()
	owner := mustOwner(t, "csiuser")
	one := 1
	tests := []struct {
		name string
		req  CreateRequest
		want error
	}{
		{"bad name", CreateRequest{Name: "-bad", Owner: owner, CapacityGiB: 1}, ErrInvalidParam},
		{"zero capacity", CreateRequest{Name: "vol-z", Owner: owner}, ErrInvalidParam},
		{"unknown zone", CreateRequest{Name: "vol-zn", Owner: owner, CapacityGiB: 1, ZoneName: "nozone"}, ErrInvalidParam},
		{"no blobstore", CreateRequest{Name: "vol-ec", Owner: owner, CapacityGiB: 1, VolType: &one}, ErrInvalidParam},
	}
	for _, tt := range tests {
		if err := c.CreateVol(ctx, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: CreateVol = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	_, c := newEmulated(t, emulator.Options{ClusterName: "cfs-test", CapacityGiB: 100})
	cl, err := c.Cluster(context.Background())
	if err != nil || cl.Name != "cfs-test" || cl.TotalGiB != 100 || cl.AvailGiB != 100 {
		t.Fatalf("Cluster = %+v, %v", cl, err)
	}
}
