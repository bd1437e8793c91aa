// Package identity implements the CSI Identity service shared by both drivers.
package identity

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/klog/v2"
)

// Options describe the plugin to the container orchestrator.
type Options struct {
	// Name is the CSI driver name, for example rbd.csi.tkestor.io.
	Name string
	// Version is the build version.
	Version string
	// Controller is true when this process serves the Controller service.
	Controller bool
	// OnlineExpansion is true when volumes can grow while in use.
	OnlineExpansion bool
	// Ready reports whether the plugin can serve now; nil means always.
	// Probe answers "not ready" (never an error) while it fails, so a
	// liveness probe does not restart a plugin that waits for its backend.
	Ready func(ctx context.Context) error
}

// probeTimeout bounds one Probe: the livenessprobe sidecar gives up after
// about a second, and a backend that takes longer is not ready.
const probeTimeout = 800 * time.Millisecond

// Server is the CSI Identity service.
type Server struct {
	csi.UnimplementedIdentityServer
	opts Options

	// One readiness check runs at a time; concurrent Probes wait for it
	// instead of piling up calls on a backend that is down.
	mu       sync.Mutex
	inflight chan struct{}
	lastErr  error
}

var _ csi.IdentityServer = (*Server)(nil)

// New returns an Identity service.
func New(opts Options) *Server {
	return &Server{opts: opts}
}

// GetPluginInfo returns the driver name and version.
func (is *Server) GetPluginInfo(
	context.Context, *csi.GetPluginInfoRequest,
) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: is.opts.Name, VendorVersion: is.opts.Version}, nil
}

// GetPluginCapabilities advertises the controller service and expansion.
func (is *Server) GetPluginCapabilities(
	context.Context, *csi.GetPluginCapabilitiesRequest,
) (*csi.GetPluginCapabilitiesResponse, error) {
	var caps []*csi.PluginCapability
	if is.opts.Controller {
		caps = append(caps, serviceCap(csi.PluginCapability_Service_CONTROLLER_SERVICE))
	}
	if is.opts.OnlineExpansion {
		caps = append(caps, &csi.PluginCapability{
			Type: &csi.PluginCapability_VolumeExpansion_{
				VolumeExpansion: &csi.PluginCapability_VolumeExpansion{
					Type: csi.PluginCapability_VolumeExpansion_ONLINE,
				},
			},
		})
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe reports readiness honestly: not ready while the backend cannot
// serve, or cannot say so within probeTimeout.
func (is *Server) Probe(ctx context.Context, _ *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	if is.opts.Ready == nil {
		return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
	}
	if err := is.check(ctx); err != nil {
		klog.FromContext(ctx).V(2).Info("Plugin not ready", "reason", err.Error())
		return &csi.ProbeResponse{Ready: wrapperspb.Bool(false)}, nil
	}
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

// check runs (or joins) one readiness check and waits for it at most
// probeTimeout. A slow check keeps running in the background, bounded by
// its own deadline, and its answer serves the next Probe.
func (is *Server) check(ctx context.Context) error {
	is.mu.Lock()
	done := is.inflight
	if done == nil {
		done = make(chan struct{})
		is.inflight = done
		go is.runCheck(done)
	}
	is.mu.Unlock()

	timer := time.NewTimer(probeTimeout)
	defer timer.Stop()
	select {
	case <-done:
		is.mu.Lock()
		defer is.mu.Unlock()
		return is.lastErr
	case <-timer.C:
		return errors.New("readiness check did not finish in time")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (is *Server) runCheck(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := is.opts.Ready(ctx)
	is.mu.Lock()
	is.lastErr, is.inflight = err, nil
	is.mu.Unlock()
	close(done)
}

func serviceCap(t csi.PluginCapability_Service_Type) *csi.PluginCapability {
	return &csi.PluginCapability{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: t}},
	}
}
