package main

import (
	"context"

	"github.com/tkestack/tkestor-csi/pkg/cfs"
	"github.com/tkestack/tkestor-csi/pkg/common/metrics"
	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/pkg/rbd"
)

// backend is what main needs of a driver.
type backend interface {
	Services() server.Services
	Ready(ctx context.Context) error
	Close()
}

func newBackend(opts *Options, rec *metrics.Recorder) (backend, error) {
	if opts.Driver == driverCFS {
		return cfs.NewDriver(cfs.Options{
			DriverName:    opts.DriverName,
			NodeID:        opts.NodeID,
			Version:       version,
			Mode:          opts.Mode,
			StateDir:      opts.StateDir,
			ClientPath:    opts.CFSClient,
			TakeoverGrace: opts.TakeoverGrace,
			Lease:         opts.RWOLease,
			Masters:       opts.CFSMasters,
			Metrics:       rec,
		})
	}
	return rbd.NewDriver(rbd.Options{
		DriverName:          opts.DriverName,
		NodeID:              opts.NodeID,
		Version:             version,
		Mode:                opts.Mode,
		ClusterConfig:       opts.ClusterConfig,
		ControllerSecretDir: opts.ControllerSecretDir,
		LeaseDuration:       opts.BackendLease,
		StateDir:            opts.StateDir,
		TakeoverGrace:       opts.TakeoverGrace,
		Lease:               opts.RWOLease,
		FenceExpiry:         opts.RWOFenceExpiry,
		NodeSecretDir:       opts.NodeSecretDir,
		Metrics:             rec,
	})
}
