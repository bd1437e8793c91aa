package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// healthTimeout bounds one /healthz check; the livenessprobe sidecar and
// kubelet probes give up after a few seconds anyway.
const healthTimeout = 5 * time.Second

// Serve starts /metrics and /healthz on address and returns a stop func.
// ready is the backend's readiness check (nil: always healthy).
func (r *Recorder) Serve(address string, ready func(ctx context.Context) error) (func(), error) {
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", healthHandler(ready))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Metrics server stopped", "address", address)
		}
	}()
	klog.InfoS("Serving metrics", "address", lis.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func healthHandler(ready func(ctx context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(req.Context(), healthTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				http.Error(w, "backend not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	}
}
