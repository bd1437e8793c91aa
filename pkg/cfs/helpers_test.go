package cfs

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

const (
	testOwner = "csiuser"
	gi        = int64(1) << 30
)

// testCluster is an in-process master emulator.
type testCluster struct {
	emu  *emulator.Emulator
	srv  *httptest.Server
	addr string
}

func newTestCluster(t *testing.T, opts emulator.Options) *testCluster {
	t.Helper()
	e, srv := emulator.NewTestServer(t, opts)
	return &testCluster{emu: e, srv: srv, addr: strings.TrimPrefix(srv.URL, "http://")}
}

// params is a StorageClass for the cluster, owner given as a parameter.
func (tc *testCluster) params() map[string]string {
	return map[string]string{"masterAddr": tc.addr, "owner": testOwner, "logLevel": "error"}
}

func newTestController(t *testing.T, mode server.Mode) *ControllerServer {
	t.Helper()
	cs, err := newControllerServer(Options{Mode: mode, NodeID: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.close)
	return cs
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func rwx() *csi.VolumeCapability {
	return mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
}

func createReq(name string, params map[string]string, bytes int64) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		Parameters:         params,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: bytes},
		VolumeCapabilities: []*csi.VolumeCapability{rwx()},
	}
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

// logCapture collects every log line of a context logger and of klog.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (lc *logCapture) write(prefix, args string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.buf.WriteString(prefix + " " + args + "\n")
}

func (lc *logCapture) String() string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.buf.String()
}

// logger returns a logger at the highest verbosity that writes to lc.
func (lc *logCapture) logger() logr.Logger {
	return funcr.New(lc.write, funcr.Options{Verbosity: 10})
}

// capturedContext is a context whose logger writes to lc.
func capturedContext(lc *logCapture) context.Context {
	return klog.NewContext(context.Background(), lc.logger())
}
