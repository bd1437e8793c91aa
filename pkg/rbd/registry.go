package rbd

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/ceph/go-ceph/rados"
	"k8s.io/klog/v2"
)

// The node registry. ControllerPublish must tell a node that exists from
// one that never did (csi-sanity: "should fail when the node does not
// exist"), and the controller has no Kubernetes API on its RPC path. So
// node plugins register themselves in each cluster they can reach: at
// start and then every registryInterval, a node writes its ID into the
// omap of the object registryObject in every RBD pool (one that
// `rbd pool init` initialised: it holds rbd_info) its credentials may
// write. ControllerPublish looks the node up in the volume's pool, so a
// pool made later is found at the node's next round.
//
// The value is a JSON nodeRegistration whose time doubles as a sign of
// life of the plugin, shown by `tkestor-csi holder show`. Entries are never
// removed: a node that left the cluster stays "known", which only means
// ControllerPublish to it succeeds and its NodeStage never comes.
const (
	registryObject   = "tkestor.csi.nodes"
	registryInterval = time.Minute
	// registryFirstWait bounds the first round at plugin start, so that a
	// ControllerPublish right after the plugin is up finds it.
	registryFirstWait = 15 * time.Second
)

// nodeRegistration is one node's registry entry.
type nodeRegistration struct {
	Node    string    `json:"node"`
	Renewed time.Time `json:"renewed"`
}

// registrar registers one node plugin.
type registrar struct {
	node      string
	clusters  *clusterConfig
	secretDir string
	conns     *connCache
}

// newRegistrar returns nil when the node has no credentials of its own
// (--node-secret-dir, else --controller-secret-dir).
func newRegistrar(opts Options, conns *connCache) *registrar {
	dir := opts.NodeSecretDir
	if dir == "" {
		dir = opts.ControllerSecretDir
	}
	if dir == "" {
		klog.InfoS("Node registration is off (no --node-secret-dir): ControllerPublishVolume will refuse this node",
			"nodeID", opts.NodeID)
		return nil
	}
	return &registrar{node: opts.NodeID, clusters: newClusterConfig(opts.ClusterConfig), secretDir: dir, conns: conns}
}

// start registers at once, waiting up to registryFirstWait for that
// round (so a ControllerPublish right after the plugin is up finds the
// node, and an unreachable cluster does not keep the plugin from serving),
// and then every registryInterval until stop closes. wg tracks the loop.
func (r *registrar) start(stop <-chan struct{}, wg *sync.WaitGroup) {
	first := make(chan struct{})
	go func() {
		defer close(first)
		r.registerAll()
	}()
	select {
	case <-first:
	case <-time.After(registryFirstWait):
		klog.InfoS("Node registration is slow; serving meanwhile", "nodeID", r.node)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-first
		tick := time.NewTicker(registryInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				r.registerAll()
			}
		}
	}()
}

func (r *registrar) registerAll() {
	creds, err := credentialsFromDir(r.secretDir)
	if err != nil {
		klog.ErrorS(err, "Node registration: no usable credentials", "dir", r.secretDir)
		return
	}
	clusters, err := r.clusters.all()
	if err != nil {
		klog.ErrorS(err, "Node registration: no cluster config")
		return
	}
	for _, info := range clusters {
		ctx, cancel := context.WithTimeout(context.Background(), registryInterval/2)
		n, err := r.registerIn(ctx, info, creds)
		cancel()
		if err != nil {
			klog.ErrorS(err, "Node registration failed", "clusterID", info.ClusterID, "nodeID", r.node)
			continue
		}
		klog.V(4).InfoS("Node registered", "clusterID", info.ClusterID, "nodeID", r.node, "pools", n)
	}
}

// registerIn writes the node's entry into every RBD pool of one cluster
// it may write to, and returns how many pools that was.
func (r *registrar) registerIn(ctx context.Context, info ClusterInfo, creds Credentials) (int, error) {
	conn, release, err := r.conns.get(ctx, info.Monitors, creds)
	if err != nil {
		return 0, err
	}
	defer release()
	pools, err := conn.ListPools()
	if err != nil {
		if isBlocklisted(err) {
			r.conns.evict(info.Monitors, creds)
		}
		return 0, fmt.Errorf("list pools: %w", err)
	}
	value, _ := json.Marshal(nodeRegistration{Node: r.node, Renewed: time.Now().UTC()})
	n := 0
	for _, pool := range pools {
		ok, err := registerInPool(conn, pool, r.node, value)
		if err != nil {
			if isBlocklisted(err) {
				r.conns.evict(info.Monitors, creds)
				return n, err
			}
			klog.V(4).InfoS("Node not registered in pool", "pool", pool, "err", err.Error())
		}
		if ok {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("no RBD pool of cluster %q accepted the registration", info.ClusterID)
	}
	return n, nil
}

// registerInPool writes the entry if pool is an RBD pool.
func registerInPool(conn *rados.Conn, pool, node string, value []byte) (bool, error) {
	io, err := conn.OpenIOContext(pool)
	if err != nil {
		return false, err
	}
	defer io.Destroy()
	if _, err := io.Stat("rbd_info"); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	if err := io.SetOmap(registryObject, map[string][]byte{node: value}); err != nil {
		return false, err
	}
	return true, nil
}

// lookupNode reads a node's registry entry in the pool of io; nil when
// the node never registered there.
func lookupNode(io *rados.IOContext, node string) (*nodeRegistration, error) {
	op := rados.CreateReadOp()
	defer op.Release()
	step := op.GetOmapValuesByKeys([]string{node})
	if err := op.Operate(io, registryObject, rados.OperationNoFlag); err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read node registry: %w", err)
	}
	kv, err := step.Next()
	if err != nil {
		return nil, fmt.Errorf("read node registry: %w", err)
	}
	if kv == nil || kv.Key != node {
		return nil, nil
	}
	var reg nodeRegistration
	if err := json.Unmarshal(kv.Value, &reg); err != nil {
		return &nodeRegistration{Node: node}, nil //nolint:nilerr // registered, just unreadable
	}
	return &reg, nil
}

// checkNodeRegistered is ControllerPublish's test: NotFound for a node
// that never registered in the volume's pool.
func checkNodeRegistered(ref imageRef, node string) error {
	reg, err := lookupNode(ref.io, node)
	if err != nil {
		return err
	}
	if reg == nil {
		return fmt.Errorf("%w: node %q has not registered in pool %q of cluster %q (its node plugin "+
			"registers with the credentials of --node-secret-dir once it runs)",
			ErrNodeNotFound, node, ref.pool, ref.id.ClusterID)
	}
	return nil
}
