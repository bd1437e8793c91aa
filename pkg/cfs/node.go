package cfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/locks"
	"github.com/tkestack/tkestor-csi/pkg/common/mount"
	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// NodeServer is the CSI Node service of the ChubaoFS driver: one FUSE
// client per staged volume, bind mounts for pods, and a record per staged
// volume under the state directory so that a restarted plugin can remount.
type NodeServer struct {
	csi.UnimplementedNodeServer
	opts     Options
	locks    *locks.KeyLocks
	mounter  *mount.Mounter
	records  *noderecord.Store
	workDir  string
	client   fuseClient
	clusters *clusterPool
	holder   Holder
}

var _ csi.NodeServer = (*NodeServer)(nil)

// newNodeServer prepares the state directory: <StateDir>/cfs holds the
// records and, per staged volume, the client config (0600) and logs.
func newNodeServer(opts Options) (*NodeServer, error) {
	if opts.StateDir == "" {
		return nil, errors.New("cfs node: a state directory is required")
	}
	if opts.ClientPath == "" {
		return nil, errors.New("cfs node: the path of cfs-client is required")
	}
	workDir := filepath.Join(opts.StateDir, "cfs")
	records, err := noderecord.New(filepath.Join(workDir, "records"))
	if err != nil {
		return nil, fmt.Errorf("cfs node: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(workDir, "volumes"), 0o700); err != nil {
		return nil, fmt.Errorf("cfs node: %w", err)
	}
	ns := &NodeServer{
		opts:     opts,
		locks:    locks.New(),
		mounter:  mount.New(),
		records:  records,
		workDir:  workDir,
		client:   &execClient{path: opts.ClientPath},
		clusters: newClusterPool(opts.Metrics, masterCallTimeout),
	}
	ns.holder = newLeaseHolder(opts.NodeID, opts.Lease, opts.TakeoverGrace, ns.fence)
	return ns, nil
}

// ready reports whether the FUSE client binary can be run.
func (ns *NodeServer) ready(context.Context) error {
	fi, err := os.Stat(ns.opts.ClientPath)
	if err != nil {
		return fmt.Errorf("cfs-client: %w", err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("cfs-client %s is not executable", ns.opts.ClientPath)
	}
	return nil
}

// close drops idle master connections and stops renewing leases. FUSE
// clients keep running: they serve pods and outlive the plugin process
// where the container allows (a restarted plugin resumes the renewals).
func (ns *NodeServer) close() {
	ns.clusters.close()
	if h, ok := ns.holder.(*leaseHolder); ok {
		h.close()
	}
}

// lock takes the in-flight lock of a volume or reports ErrInProgress.
func (ns *NodeServer) lock(volumeID string) (func(), error) {
	if !ns.locks.TryAcquire(volumeID) {
		return nil, fmt.Errorf("%w: volume %q", ErrInProgress, volumeID)
	}
	return func() { ns.locks.Release(volumeID) }, nil
}

// volumeDir is the per-volume working directory (config, logs).
func (ns *NodeServer) volumeDir(volumeID string) string {
	return filepath.Join(ns.workDir, "volumes", noderecord.Key(volumeID))
}

// NodeGetCapabilities lists what the node does.
func (ns *NodeServer) NodeGetCapabilities(
	context.Context, *csi.NodeGetCapabilitiesRequest,
) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		caps = append(caps, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo names this node. ChubaoFS volumes have no topology.
func (ns *NodeServer) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: ns.opts.NodeID}, nil
}
