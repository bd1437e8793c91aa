package server

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

var requestSeq atomic.Uint64 //nolint:gochecknoglobals // a process-wide counter for request IDs only

// quietMethods are polled by sidecars every few seconds; logging them at V(4)
// would drown the lines that matter.
var quietMethods = map[string]bool{ //nolint:gochecknoglobals // constant set
	"/csi.v1.Identity/Probe":                       true,
	"/csi.v1.Identity/GetPluginInfo":               true,
	"/csi.v1.Identity/GetPluginCapabilities":       true,
	"/csi.v1.Controller/ControllerGetCapabilities": true,
	"/csi.v1.Node/NodeGetCapabilities":             true,
}

// RequestContext puts a logger carrying the method and a request ID into
// ctx, so every line of one call can be found together.
func RequestContext(
	ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler,
) (any, error) {
	logger := klog.FromContext(ctx).WithValues(
		"method", info.FullMethod, "requestID", requestSeq.Add(1))
	return handler(klog.NewContext(ctx, logger), req)
}

// LogRPC logs the sanitized request and response and every failure once,
// with its gRPC code. Secrets are stripped by protosanitizer, and the values
// of the map keys in redactKeys (secret-like StorageClass parameters) are
// replaced.
func LogRPC(redactKeys []string) grpc.UnaryServerInterceptor {
	keys := make(map[string]bool, len(redactKeys))
	for _, k := range redactKeys {
		keys[k] = true
	}
	return func(
		ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler,
	) (any, error) {
		logger := klog.FromContext(ctx)
		quiet := quietMethods[info.FullMethod]
		if !quiet {
			logger.V(4).Info("RPC started")
			if logger.V(5).Enabled() {
				logger.V(5).Info("RPC request", "request", protosanitizer.StripSecrets(redactMapKeys(req, keys)))
			}
		}

		start := time.Now()
		resp, err := handler(ctx, req)
		elapsed := time.Since(start)
		if err != nil {
			logger.Error(err, "RPC failed", "code", status.Code(err), "duration", elapsed)
			return resp, err
		}
		if !quiet {
			logger.V(4).Info("RPC succeeded", "duration", elapsed)
			if logger.V(5).Enabled() {
				logger.V(5).Info("RPC response", "response", protosanitizer.StripSecrets(redactMapKeys(resp, keys)))
			}
		}
		return resp, nil
	}
}

// RecoverPanic turns a panic in a handler into Internal instead of killing
// the plugin (and with it every FUSE client it started).
func RecoverPanic(
	ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler,
) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			klog.FromContext(ctx).Error(nil, "RPC panicked", "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return handler(ctx, req)
}

// Deadline gives every call at most max to run: sidecars usually set one,
// but a call without one must not hold a volume lock forever.
func Deadline(max time.Duration) grpc.UnaryServerInterceptor {
	return func(
		ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler,
	) (any, error) {
		if max <= 0 {
			return handler(ctx, req)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= max {
			return handler(ctx, req)
		}
		ctx, cancel := context.WithTimeout(ctx, max)
		defer cancel()
		return handler(ctx, req)
	}
}
