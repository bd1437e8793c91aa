// Package metrics exports Prometheus metrics for the CSI calls a plugin
// serves and the backend calls it makes, and a /healthz endpoint.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Recorder holds the plugin's metrics in its own registry (no global state,
// so tests can run several plugins in one process).
type Recorder struct {
	registry *prometheus.Registry
	rpcTime  *prometheus.HistogramVec
	rpcCount *prometheus.CounterVec
	inflight *prometheus.GaugeVec
	backend  *prometheus.HistogramVec
}

// NewRecorder registers the metrics of one plugin, labelled by driver.
func NewRecorder(driver string) *Recorder {
	constLabels := prometheus.Labels{"driver": driver}
	r := &Recorder{
		registry: prometheus.NewRegistry(),
		rpcTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tkestor_csi_rpc_duration_seconds", Help: "Latency of CSI calls by method and gRPC code.",
			ConstLabels: constLabels, Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"method", "code"}),
		rpcCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tkestor_csi_rpc_total", Help: "CSI calls by method and gRPC code.",
			ConstLabels: constLabels,
		}, []string{"method", "code"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tkestor_csi_inflight_operations", Help: "CSI calls being served now, by method.",
			ConstLabels: constLabels,
		}, []string{"method"}),
		backend: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tkestor_csi_backend_duration_seconds", Help: "Latency of backend calls by operation and result.",
			ConstLabels: constLabels, Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"operation", "result"}),
	}
	r.registry.MustRegister(r.rpcTime, r.rpcCount, r.inflight, r.backend,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return r
}

// Interceptor records every unary CSI call.
func (r *Recorder) Interceptor() grpc.UnaryServerInterceptor {
	return func(
		ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler,
	) (any, error) {
		gauge := r.inflight.WithLabelValues(info.FullMethod)
		gauge.Inc()
		defer gauge.Dec()
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err).String()
		r.rpcTime.WithLabelValues(info.FullMethod, code).Observe(time.Since(start).Seconds())
		r.rpcCount.WithLabelValues(info.FullMethod, code).Inc()
		return resp, err
	}
}

// ObserveBackend records one backend call (a librbd/librados operation or a
// master REST request). A nil Recorder records nothing.
func (r *Recorder) ObserveBackend(operation string, start time.Time, err error) {
	if r == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.backend.WithLabelValues(operation, result).Observe(time.Since(start).Seconds())
}
