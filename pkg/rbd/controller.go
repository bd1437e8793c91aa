package rbd

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/locks"
)

// The controller in brief (details beside the code they describe):
//
//   - IDs (volid.go): "0001-<v|s>-<len>-<clusterID>-<pool ID>-<hash>", the
//     hash being 128 bits of SHA-256 of the CSI name, so the image name
//     (csi-vol-<hash> or csi-snap-<hash>) follows from the name alone and
//     every retry, restart or second replica lands on the same image.
//   - Records (image.go): each image carries its own back-pointer (CSI name,
//     content source, creation time) and, last of all, a commit marker
//     naming itself. A create finds the image missing (make it), without a
//     record of its own (an interrupted attempt: remove and make again),
//     recorded but not committed (finish the remaining idempotent steps), or
//     committed (compare: same size range and source, or AlreadyExists).
//   - Locks: an in-process try-lock per name and per image (Aborted at
//     once), and a RADOS lease per image (lease.go) so two controller
//     processes never work on one image at once.
//   - Snapshots and clones (controller_snapshot.go, controller_clone.go,
//     reap.go): clone-v2 children; a deleted image with children waits in
//     the RBD trash and is purged when its last child goes. Nothing of ours
//     is left in a pool once every volume and snapshot is deleted.
//   - Failpoints between all steps (failpoints.go) for the crash tests.

// ControllerServer is the CSI Controller service of the RBD driver.
type ControllerServer struct {
	csi.UnimplementedControllerServer

	opts     Options
	clusters *clusterConfig
	conns    *connCache
	// locks is the in-process in-flight set. Keys: "create/<name>",
	// "snapshot/<name>" and "image/<cluster>/<pool ID>/<image>"; an
	// operation takes every image it changes or reads from, so delete,
	// clone-from, snapshot-of, expand and publish of one image exclude
	// each other. Backend leases (lease.go) do the same across processes.
	locks *locks.KeyLocks
}

var _ csi.ControllerServer = (*ControllerServer)(nil)

// controllerCaps are the capabilities the controller honours.
var controllerCaps = []csi.ControllerServiceCapability_RPC_Type{ //nolint:gochecknoglobals // constant list
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csi.ControllerServiceCapability_RPC_PUBLISH_READONLY,
	csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

func newControllerServer(opts Options) (*ControllerServer, error) {
	cfg := newClusterConfig(opts.ClusterConfig)
	if _, err := cfg.load(); err != nil {
		// Not fatal: the ConfigMap may arrive later; Probe reports it.
		klog.ErrorS(err, "Cluster config not usable yet", "path", opts.ClusterConfig)
	}
	return &ControllerServer{
		opts:     opts,
		clusters: cfg,
		conns:    newConnCache(ConnOptions{}),
		locks:    locks.New(),
	}, nil
}

// ready checks the cluster config and, with controller credentials, that
// every cluster answers.
func (cs *ControllerServer) ready(ctx context.Context) error {
	clusters, err := cs.clusters.all()
	if err != nil {
		return err
	}
	if cs.opts.ControllerSecretDir == "" {
		return nil
	}
	creds, err := credentialsFromDir(cs.opts.ControllerSecretDir)
	if err != nil {
		return err
	}
	for _, info := range clusters {
		s, err := cs.sessionFor(ctx, info, creds)
		if err != nil {
			return err
		}
		// A monitor round trip: a cached connection alone proves nothing.
		_, _, err = s.conn.MonCommand([]byte(`{"prefix":"df","format":"json"}`))
		s.close()
		if err != nil {
			return fmt.Errorf("cluster %q: %w", info.ClusterID, err)
		}
	}
	return nil
}

func (cs *ControllerServer) close() {
	cs.conns.close()
}

// ControllerGetCapabilities lists what the controller honours.
func (cs *ControllerServer) ControllerGetCapabilities(
	context.Context, *csi.ControllerGetCapabilitiesRequest,
) (*csi.ControllerGetCapabilitiesResponse, error) {
	caps := make([]*csi.ControllerServiceCapability, 0, len(controllerCaps))
	for _, c := range controllerCaps {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{
				Rpc: &csi.ControllerServiceCapability_RPC{Type: c},
			},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// tryLock takes in-process keys or fails with ErrInProgress; the caller
// defers release of the same keys.
func (cs *ControllerServer) tryLock(what string, keys ...string) error {
	if !cs.locks.TryAcquireAll(keys...) {
		return fmt.Errorf("%w: %s", ErrInProgress, what)
	}
	return nil
}

// leaseDuration is the backend lock lease: short in crash tests, so a
// killed holder's lock lapses quickly; the default elsewhere.
func (cs *ControllerServer) leaseDuration() time.Duration {
	if cs.opts.LeaseDuration > 0 {
		return cs.opts.LeaseDuration
	}
	return DefaultLeaseDuration
}

// lease takes the backend locks of the images an operation changes.
func (cs *ControllerServer) lease(s *session, op string, refs ...imageRef) (leases, error) {
	var ls leases
	for _, r := range refs {
		l, err := acquireLease(s.conn, r.pool, r.id.Image, op, cs.leaseDuration())
		if err != nil {
			ls.release()
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// observe records one backend operation in the metrics (nil: nothing).
func (cs *ControllerServer) observe(operation string, start time.Time, err *error) {
	cs.opts.Metrics.ObserveBackend("rbd."+operation, start, *err)
}

func missing(field string) error {
	return fmt.Errorf("%w: %s", ErrMissingField, field)
}
