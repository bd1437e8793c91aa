package cfs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/locks"
)

// masterCallTimeout caps one request to one master; the RPC's deadline
// applies on top of it.
const masterCallTimeout = 10 * time.Second

// ControllerServer is the CSI Controller service of the ChubaoFS driver.
// It keeps no state of its own that matters after a restart: volume IDs
// name the backend volume and its masters, and the master is asked.
type ControllerServer struct {
	csi.UnimplementedControllerServer
	opts      Options
	locks     *locks.KeyLocks
	clusters  *clusterPool
	published *publishTable
}

var _ csi.ControllerServer = (*ControllerServer)(nil)

// newControllerServer builds the controller; the clusters named in
// Options.Masters are known from the start (for ListVolumes, GetCapacity
// and readiness).
func newControllerServer(opts Options) (*ControllerServer, error) {
	cs := &ControllerServer{
		opts:      opts,
		locks:     locks.New(),
		clusters:  newClusterPool(opts.Metrics, masterCallTimeout),
		published: newPublishTable(),
	}
	for _, list := range opts.Masters {
		if err := cs.clusters.configure(list); err != nil {
			return nil, fmt.Errorf("configured masters %q: %w", list, err)
		}
	}
	return cs, nil
}

// ready reports whether every configured cluster answers; without
// configured clusters there is nothing to ask until a request names one.
func (cs *ControllerServer) ready(ctx context.Context) error {
	var errs []error
	for _, c := range cs.clusters.configuredClients() {
		if _, err := c.Cluster(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close drops idle master connections.
func (cs *ControllerServer) close() { cs.clusters.close() }

// lock takes the in-flight lock of key or reports ErrInProgress.
func (cs *ControllerServer) lock(key string) (func(), error) {
	if !cs.locks.TryAcquire(key) {
		return nil, fmt.Errorf("%w: %s", ErrInProgress, key)
	}
	return func() { cs.locks.Release(key) }, nil
}

// ControllerGetCapabilities lists what the controller does.
func (cs *ControllerServer) ControllerGetCapabilities(
	context.Context, *csi.ControllerGetCapabilitiesRequest,
) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_READONLY,
		csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}
