// Package cfs is the ChubaoFS (CubeFS) CSI driver: file volumes provisioned
// through the master's REST API and mounted on nodes by the FUSE client.
package cfs

import (
	"context"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/identity"
	"github.com/tkestack/tkestor-csi/pkg/common/metrics"
	"github.com/tkestack/tkestor-csi/pkg/common/server"
)

// DefaultDriverName is the CSI name used when --drivername is not given.
const DefaultDriverName = "cfs.csi.tkestor.io"

// Options configure the ChubaoFS driver.
type Options struct {
	DriverName string
	NodeID     string
	Version    string
	Mode       server.Mode
	// ClientPath is the path of the cfs-client FUSE binary.
	ClientPath string
	// StateDir holds node-side records.
	StateDir string
	// TakeoverGrace: how long a dead holder keeps an RWO volume before it
	// may be fenced and taken over; 0 disables automatic takeover.
	TakeoverGrace time.Duration
	// Lease is how long a single-node lease lasts without renewal
	// (DefaultLease when 0); holders renew every third of it.
	Lease time.Duration
	// Metrics records backend call latency; nil records nothing.
	Metrics *metrics.Recorder
	// Masters lists clusters the controller knows from the start, each a
	// comma-separated master list. ListVolumes and GetCapacity without
	// parameters cover these plus every cluster a request named since
	// the process started; readiness asks these.
	Masters []string
}

// Driver holds the services of one ChubaoFS plugin process.
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
		go d.node.resumeLeases(context.Background())
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

// Ready reports whether the backend can serve (node: the client binary is
// there; controller: every cluster in Options.Masters answers).
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
