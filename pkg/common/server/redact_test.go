package server

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
)

const planted = "Sup3rSecretOwner"

func TestRedactMapKeys(t *testing.T) {
	t.Parallel()
	keys := map[string]bool{"owner": true}
	tests := []struct {
		name string
		msg  any
	}{
		{"only key", &csi.CreateVolumeRequest{Parameters: map[string]string{"owner": planted}}},
		{"first of several", &csi.CreateVolumeRequest{Parameters: map[string]string{
			"owner": planted, "masterAddr": "127.0.0.1:1", "zoneName": "z"}}},
		{"nested volume context", &csi.CreateVolumeResponse{Volume: &csi.Volume{
			VolumeContext: map[string]string{"a": "1", "owner": planted, "z": "2"}}}},
		{"node stage context", &csi.NodeStageVolumeRequest{VolumeContext: map[string]string{
			"logLevel": "warn", "owner": planted}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := protosanitizer.StripSecrets(tc.msg).String()
			got := protosanitizer.StripSecrets(redactMapKeys(tc.msg, keys)).String()
			if strings.Contains(got, planted) {
				t.Fatalf("redacted message still holds the owner: %s", got)
			}
			if !strings.Contains(got, redactedValue) {
				t.Fatalf("no redaction marker in %s", got)
			}
			if protosanitizer.StripSecrets(tc.msg).String() != before {
				t.Fatal("redaction modified the caller's message")
			}
		})
	}
}

// TestLogRPCNeverLogsRedactedKeys runs the interceptor at -v=5 with a
// captured klog output and looks for the planted value.
func TestLogRPCNeverLogsRedactedKeys(t *testing.T) {
	var buf bytes.Buffer
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", "5")
	_ = fs.Set("logtostderr", "false")
	klog.SetOutput(&buf)
	t.Cleanup(func() { _ = fs.Set("v", "0"); _ = fs.Set("logtostderr", "true") })

	req := &csi.CreateVolumeRequest{Name: "v", Parameters: map[string]string{"owner": planted}}
	handler := func(ctx context.Context, _ any) (any, error) {
		return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeContext: map[string]string{"owner": planted}}}, nil
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Controller/CreateVolume"}
	if _, err := LogRPC([]string{"owner"})(context.Background(), req, info, handler); err != nil {
		t.Fatal(err)
	}
	klog.Flush()
	if !strings.Contains(buf.String(), "RPC request") {
		t.Fatalf("nothing logged at -v=5: %q", buf.String())
	}
	if strings.Contains(buf.String(), planted) {
		t.Fatalf("log holds the planted owner:\n%s", buf.String())
	}
	if req.Parameters["owner"] != planted {
		t.Fatal("the interceptor changed the request the handler sees")
	}
}
