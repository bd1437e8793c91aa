// Package server runs the CSI gRPC services of one driver on one endpoint.
package server

import (
	"context"
	"net"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
)

// Services are the CSI services one process serves. Controller or Node is
// nil when the mode does not serve it.
type Services struct {
	Identity   csi.IdentityServer
	Controller csi.ControllerServer
	Node       csi.NodeServer
}

// Options configure a Server.
type Options struct {
	// Endpoint is unix:///path or tcp://host:port.
	Endpoint string
	// RPCTimeout bounds every call that arrives without a shorter deadline,
	// so that no backend call can hold a volume lock forever.
	RPCTimeout time.Duration
	// StopTimeout bounds the graceful stop on SIGTERM; then calls are cut.
	StopTimeout time.Duration
	// RedactKeys are parameter and context keys whose values never reach a
	// log (secrets are stripped anyway).
	RedactKeys []string
	// Interceptors run after the built-in ones (for example metrics).
	Interceptors []grpc.UnaryServerInterceptor
}

// Server is a CSI gRPC server.
type Server struct {
	opts Options
	grpc *grpc.Server
}

// New builds a server for the given services.
func New(opts Options, svc Services) *Server {
	chain := append([]grpc.UnaryServerInterceptor{
		RequestContext,
		LogRPC(opts.RedactKeys),
		RecoverPanic,
		Deadline(opts.RPCTimeout),
	}, opts.Interceptors...)
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(chain...))

	csi.RegisterIdentityServer(g, svc.Identity)
	if svc.Controller != nil {
		csi.RegisterControllerServer(g, svc.Controller)
	}
	if svc.Node != nil {
		csi.RegisterNodeServer(g, svc.Node)
	}
	return &Server{opts: opts, grpc: g}
}

// Run serves until ctx is done, then stops gracefully within StopTimeout.
func (s *Server) Run(ctx context.Context) error {
	lis, err := Listen(s.opts.Endpoint)
	if err != nil {
		return err
	}
	return s.Serve(ctx, lis)
}

// Serve serves on an open listener until ctx is done.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	klog.InfoS("Serving CSI", "endpoint", s.opts.Endpoint)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	klog.InfoS("Stopping CSI server", "timeout", s.opts.StopTimeout)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(s.opts.StopTimeout):
		klog.InfoS("Graceful stop timed out, cutting calls")
		s.grpc.Stop()
	}
	return nil
}
