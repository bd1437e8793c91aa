package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
	"github.com/tkestack/tkestor-csi/pkg/rbd"
)

// Options are the command line of the plugin, parsed once and validated up
// front; nothing else reads flags.
type Options struct {
	Driver         string
	Mode           server.Mode
	Endpoint       string
	NodeID         string
	DriverName     string
	MetricsAddress string
	LoggingFormat  string

	// ClusterConfig is the ceph-csi style JSON list of clusters (rbd).
	ClusterConfig string
	// ControllerSecretDir holds userID/userKey files for the rbd controller
	// calls that carry no secrets (ListVolumes, GetCapacity).
	ControllerSecretDir string
	// StateDir keeps node-side records (stage records, holder leases).
	StateDir string
	// CFSClient is the path of the ChubaoFS FUSE client binary.
	CFSClient string
	// TakeoverGrace is how long a dead holder of a single-node volume keeps
	// it before another node may fence it and take over; 0 disables
	// automatic takeover.
	TakeoverGrace time.Duration
	// RWOLease is how long a single-node lease lasts without renewal
	// (cfs: holders renew every third of it and fence themselves when
	// they cannot; rbd: holders renew their heartbeat every third of it).
	RWOLease time.Duration
	// RWOFenceExpiry is how long the rbd driver keeps a taken-over
	// holder's Ceph clients blocklisted.
	RWOFenceExpiry time.Duration
	// NodeSecretDir holds userID/userKey files the rbd node plugin
	// registers itself with (ControllerPublish refuses unregistered
	// nodes); empty falls back to ControllerSecretDir.
	NodeSecretDir string
	// CFSMasters are ChubaoFS clusters the controller knows from the start,
	// each a comma-separated master list (the flag may be repeated).
	CFSMasters masterLists
	// BackendLease is the rbd controller's lock lease on an image.
	BackendLease time.Duration
	// RPCTimeout bounds every RPC that arrives without a shorter deadline.
	RPCTimeout time.Duration
}

// masterLists collects every --cfs-master-addr.
type masterLists []string

func (m *masterLists) String() string { return strings.Join(*m, ";") }

func (m *masterLists) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty master list")
	}
	*m = append(*m, v)
	return nil
}

const (
	driverRBD = "rbd"
	driverCFS = "cfs"
)

func (o *Options) addFlags(fs *flag.FlagSet, mode *string) {
	fs.StringVar(&o.Driver, "driver", "", "which driver to run: rbd or cfs")
	fs.StringVar(mode, "mode", "", "which services to serve: controller, node or all")
	fs.StringVar(&o.Endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint, unix:///path or tcp://host:port")
	fs.StringVar(&o.NodeID, "nodeid", "", "this node's ID (required in node and all modes)")
	fs.StringVar(&o.DriverName, "drivername", "", "CSI driver name (default rbd.csi.tkestor.io or cfs.csi.tkestor.io)")
	fs.StringVar(&o.MetricsAddress, "metrics-address", "", "serve /metrics and /healthz on this address (off when empty)")
	fs.StringVar(&o.LoggingFormat, "logging-format", "text", "log format: text or json")
	fs.StringVar(&o.ClusterConfig, "cluster-config", "/etc/tkestor-csi/config.json", "rbd: JSON list of {clusterID, monitors}")
	fs.StringVar(&o.ControllerSecretDir, "controller-secret-dir", "",
		"rbd: directory with userID and userKey files (a mounted Secret) for ListVolumes and GetCapacity")
	fs.StringVar(&o.StateDir, "state-dir", "/var/lib/tkestor-csi", "node: directory for stage records")
	fs.StringVar(&o.CFSClient, "cfs-client", "/usr/bin/cfs-client", "cfs: path of the ChubaoFS FUSE client")
	fs.DurationVar(&o.TakeoverGrace, "rwo-takeover-grace", 5*time.Minute,
		"how long a dead holder keeps a single-node volume before another node fences it and takes over; 0 disables")
	fs.DurationVar(&o.RWOLease, "rwo-lease", 30*time.Second,
		"how long a single-node hold lasts without renewal (rbd and cfs); holders renew every third of it")
	fs.DurationVar(&o.RWOFenceExpiry, "rwo-fence-expiry", rbd.DefaultFenceExpiry,
		"rbd: how long a taken-over holder's Ceph clients stay blocklisted (osd blocklist add ... EXPIRE)")
	fs.StringVar(&o.NodeSecretDir, "node-secret-dir", "",
		"rbd node: directory with userID and userKey files (a mounted Secret) to register the node "+
			"in the cluster with (default: --controller-secret-dir)")
	fs.Var(&o.CFSMasters, "cfs-master-addr",
		"cfs: a cluster's masters (comma-separated host:port) for ListVolumes, GetCapacity and readiness; repeatable")
	fs.DurationVar(&o.BackendLease, "backend-lease", 30*time.Second,
		"rbd controller: how long its lock on an image outlives the last renewal (a crashed controller blocks that long)")
	fs.DurationVar(&o.RPCTimeout, "rpc-timeout", 2*time.Minute, "upper bound for one RPC")
}

// Validate checks the options and fills defaults that depend on others.
func (o *Options) Validate(mode string) error {
	m, err := server.ParseMode(mode)
	if err != nil {
		return err
	}
	o.Mode = m
	switch o.Driver {
	case driverRBD, driverCFS:
	case "":
		return errors.New("--driver is required (rbd or cfs)")
	default:
		return fmt.Errorf("--driver must be rbd or cfs, got %q", o.Driver)
	}
	if o.DriverName == "" {
		o.DriverName = o.Driver + ".csi.tkestor.io"
	}
	if o.Mode.Node() && o.NodeID == "" {
		return errors.New("--nodeid is required in node and all modes")
	}
	if _, _, err := server.ParseEndpoint(o.Endpoint); err != nil {
		return fmt.Errorf("--endpoint: %w", err)
	}
	if o.LoggingFormat != "text" && o.LoggingFormat != "json" {
		return fmt.Errorf("--logging-format must be text or json, got %q", o.LoggingFormat)
	}
	if o.TakeoverGrace < 0 || o.RPCTimeout <= 0 || o.BackendLease < 3*time.Second {
		return errors.New("--rwo-takeover-grace must be >= 0, --rpc-timeout > 0 and --backend-lease >= 3s")
	}
	if o.RWOFenceExpiry < time.Hour {
		return fmt.Errorf("--rwo-fence-expiry must be at least 1h, got %s", o.RWOFenceExpiry)
	}
	if o.RWOLease < time.Second {
		return fmt.Errorf("--rwo-lease must be at least 1s, got %s", o.RWOLease)
	}
	return nil
}
