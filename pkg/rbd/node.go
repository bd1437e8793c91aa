package rbd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	utilexec "k8s.io/utils/exec"

	"github.com/tkestack/tkestor-csi/pkg/common/failpoint"
	"github.com/tkestack/tkestor-csi/pkg/common/locks"
	"github.com/tkestack/tkestor-csi/pkg/common/mount"
	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// NodeServer is the CSI Node service of the RBD driver: it maps images
// with the mapper the volume's `mounter` names, formats and mounts them at
// the staging path, and bind-mounts them into pods.
type NodeServer struct {
	csi.UnimplementedNodeServer

	nodeID   string
	stateDir string
	locks    *locks.KeyLocks
	mounter  *mount.Mounter
	records  *noderecord.Store
	mappers  map[string]mapper
	resolver volumeResolver
	owner    ownership
	// conns are RADOS connections made with stage credentials.
	conns *connCache
	// watch lists image watchers (nil: client addresses are not recorded).
	watch watcherLister
	// hit marks a step boundary (failpoint.Hit; crash tests replace it).
	hit func(point string)
	// stop ends the background loops (heartbeat, registration).
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

var _ csi.NodeServer = (*NodeServer)(nil)

// stageSpec is what NodeStage learns from a request: where the image is,
// how to reach it and how to present it.
type stageSpec struct {
	ClusterID   string
	Monitors    []string
	Pool        string
	Namespace   string
	Image       string
	User        string
	Key         Secret
	FsType      string
	Mounter     string
	MkfsOptions []string
	MapOptions  []string
}

// volumeResolver turns a volume ID, its volume context and the stage
// secrets into a stageSpec (cluster config, ID decoding, parameters).
type volumeResolver interface {
	resolve(ctx context.Context, volumeID string, volCtx, secrets map[string]string) (*stageSpec, error)
	// checkID reports an error (mapped to NotFound) for an ID that cannot
	// name any volume of this driver.
	checkID(volumeID string) error
}

// ownership enforces single-node access on the node path (hold*.go).
// claim runs in NodeStage after validation and the record, before the
// image is mapped; mapped right after the map (it records the mapper's
// client and re-checks the hold); release in NodeUnstage after the unmap;
// renew from the heartbeat loop.
type ownership interface {
	claim(ctx context.Context, rec *stageRecord, spec *stageSpec) error
	mapped(ctx context.Context, rec *stageRecord) error
	release(ctx context.Context, rec *stageRecord) error
	renew(ctx context.Context, rec *stageRecord) error
	// lostReason says why a staged volume's hold was lost ("" if not).
	lostReason(volumeID string) string
}

// noOwnership claims nothing (unit tests without a cluster).
type noOwnership struct{}

func (noOwnership) claim(context.Context, *stageRecord, *stageSpec) error { return nil }
func (noOwnership) mapped(context.Context, *stageRecord) error            { return nil }
func (noOwnership) release(context.Context, *stageRecord) error           { return nil }
func (noOwnership) renew(context.Context, *stageRecord) error             { return nil }
func (noOwnership) lostReason(string) string                              { return "" }

func newNodeServer(opts Options) (*NodeServer, error) {
	resolver, err := newVolumeResolver(opts)
	if err != nil {
		return nil, err
	}
	ns, err := newNodeServerWith(opts, mount.New(), utilexec.New(), resolver)
	if err != nil {
		return nil, err
	}
	ns.startBackground(opts)
	return ns, nil
}

// newNodeServerWith builds a node server over the given mounter and exec
// (fakes in unit tests).
func newNodeServerWith(
	opts Options, m *mount.Mounter, ex utilexec.Interface, resolver volumeResolver,
) (*NodeServer, error) {
	if opts.NodeID == "" {
		return nil, fmt.Errorf("node ID is required")
	}
	stateDir := filepath.Join(opts.StateDir, "rbd")
	records, err := noderecord.New(filepath.Join(stateDir, "records"))
	if err != nil {
		return nil, err
	}
	conns := newConnCache(ConnOptions{})
	ns := &NodeServer{
		conns:    conns,
		watch:    &cephWatchers{conns: conns},
		nodeID:   opts.NodeID,
		stateDir: stateDir,
		locks:    locks.New(),
		mounter:  m,
		records:  records,
		mappers: map[string]mapper{
			MounterKRBD: newKRBDMapper(ex, stateDir),
			MounterNBD:  newNBDMapper(ex, stateDir),
			MounterFuse: newFuseMapper(ex, m, stateDir),
		},
		resolver: resolver,
		hit:      failpoint.Hit,
		stop:     make(chan struct{}),
	}
	ns.owner = newCephOwnership(opts.NodeID, stateDir, conns, holdOptions{
		Lease: opts.Lease, Grace: opts.TakeoverGrace, FenceExpiry: opts.FenceExpiry,
	}, ns.saveRecord)
	return ns, nil
}

// startBackground starts the hold heartbeat and the node registration;
// close stops them.
func (ns *NodeServer) startBackground(opts Options) {
	lease := opts.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	ns.wg.Add(1)
	go func() {
		defer ns.wg.Done()
		ns.renewLoop(lease/3, ns.stop)
	}()
	if reg := newRegistrar(opts, ns.conns); reg != nil {
		reg.start(ns.stop, &ns.wg)
	}
}

// ready reports whether the node can stage volumes: its state directory
// must be writable.
func (ns *NodeServer) ready(context.Context) error {
	f, err := os.CreateTemp(ns.records.Dir(), ".probe-*")
	if err != nil {
		return fmt.Errorf("state directory not writable: %w", err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// close shuts the node's RADOS connections; mappings outlive the plugin
// process on purpose.
func (ns *NodeServer) close() {
	ns.stopOnce.Do(func() { close(ns.stop) })
	ns.wg.Wait()
	ns.conns.close()
}

// mapperFor returns the mapper a mounter value names; empty means krbd.
func (ns *NodeServer) mapperFor(name string) (mapper, error) {
	if name == "" {
		name = MounterKRBD
	}
	m, ok := ns.mappers[name]
	if !ok {
		return nil, fmt.Errorf("%w: mounter %q (want %s, %s or %s)",
			ErrInvalidParam, name, MounterKRBD, MounterNBD, MounterFuse)
	}
	return m, nil
}

// NodeGetCapabilities advertises stage/unstage, stats, volume health (the
// successor of VOLUME_CONDITION in this CSI spec), expansion and the
// single-node multi/single-writer modes.
func (ns *NodeServer) NodeGetCapabilities(
	context.Context, *csi.NodeGetCapabilitiesRequest,
) (*csi.NodeGetCapabilitiesResponse, error) {
	types := []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}
	caps := make([]*csi.NodeServiceCapability, 0, len(types))
	for _, t := range types {
		caps = append(caps, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo returns this node's ID.
func (ns *NodeServer) NodeGetInfo(
	context.Context, *csi.NodeGetInfoRequest,
) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: ns.nodeID}, nil
}
