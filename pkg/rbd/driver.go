// Package rbd is the Ceph RBD CSI driver: block volumes provisioned through
// librados/librbd and mapped on nodes by krbd, rbd-nbd or a userspace
// mapper (rbd-fuse and a loop device).
package rbd

import (
	"context"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/identity"
	"github.com/tkestack/tkestor-csi/pkg/common/metrics"
	"github.com/tkestack/tkestor-csi/pkg/common/server"
)

// DefaultDriverName is the CSI name used when --drivername is not given.
const DefaultDriverName = "rbd.csi.tkestor.io"

// Options configure the RBD driver.
type Options struct {
	DriverName string
	NodeID     string
	Version    string
	Mode       server.Mode
	// ClusterConfig is the path of the ceph-csi style cluster list.
	ClusterConfig string
	// StateDir holds node-side records.
	StateDir string
	// TakeoverGrace: how long a dead holder keeps an RWO image before it
	// may be fenced and taken over; 0 disables automatic takeover.
	TakeoverGrace time.Duration
	// Lease: a holder renews its heartbeat every third of it; a holder
	// whose heartbeat stood still for Lease+TakeoverGrace is dead (if no
	// client of the image is left either). 0 means DefaultLease.
	Lease time.Duration
	// FenceExpiry is how long the clients of a taken-over holder stay
	// blocklisted; 0 means DefaultFenceExpiry.
	FenceExpiry time.Duration
	// NodeSecretDir holds userID and userKey files the node plugin
	// registers itself with (for ControllerPublish); empty falls back to
	// ControllerSecretDir.
	NodeSecretDir string
	// ControllerSecretDir holds files userID and userKey (a mounted
	// Secret): the controller's credentials for calls that carry no
	// secrets (ListVolumes, ListSnapshots, GetCapacity, Probe).
	ControllerSecretDir string
	// LeaseDuration is how long a controller's backend lock on an image
	// outlives its last renewal (0: DefaultLeaseDuration). A crashed
	// controller blocks other replicas' calls on its images that long.
	LeaseDuration time.Duration
	// Metrics records backend call latency; nil records nothing.
	Metrics *metrics.Recorder
}

// Driver holds the services of one RBD plugin process.
type Driver struct {
	opts       Options
	identity   *identity.Server
	controller *ControllerServer
	node       *NodeServer
}

// NewDriver builds the services the mode asks for.
func NewDriver(opts Options) (*Driver, error) {
	d := &Driver{opts: opts}
	var err error
	if opts.Mode.Controller() {
		if d.controller, err = newControllerServer(opts); err != nil {
			return nil, err
		}
	}
	if opts.Mode.Node() {
		if d.node, err = newNodeServer(opts); err != nil {
			d.Close()
			return nil, err
		}
	}
	d.identity = identity.New(identity.Options{
		Name:            opts.DriverName,
		Version:         opts.Version,
		Controller:      opts.Mode.Controller(),
		OnlineExpansion: true,
		Ready:           d.Ready,
	})
	return d, nil
}

// Services returns the gRPC services to register.
func (d *Driver) Services() server.Services {
	svc := server.Services{Identity: d.identity}
	if d.controller != nil {
		svc.Controller = d.controller
	}
	if d.node != nil {
		svc.Node = d.node
	}
	return svc
}

// Ready reports whether the backend can serve: the cluster config parses
// and (controller) the clusters answer.
func (d *Driver) Ready(ctx context.Context) error {
	if d.controller != nil {
		if err := d.controller.ready(ctx); err != nil {
			return err
		}
	}
	if d.node != nil {
		return d.node.ready(ctx)
	}
	return nil
}

// Close releases cluster connections.
func (d *Driver) Close() {
	if d.controller != nil {
		d.controller.close()
	}
	if d.node != nil {
		d.node.close()
	}
}
