package cfs

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
	"github.com/tkestack/tkestor-csi/pkg/common/metrics"
)

// clusterPool holds one master client per cluster (canonical master list).
// It also remembers which clusters this process has been told about: the
// configured ones, plus every one a request named since start. ListVolumes
// and GetCapacity without parameters look at those.
type clusterPool struct {
	mu         sync.Mutex
	clients    map[string]*master.Client // by cluster key
	configured map[string]bool
	opts       master.Options
}

func newClusterPool(rec *metrics.Recorder, callTimeout time.Duration) *clusterPool {
	opts := master.Options{CallTimeout: callTimeout}
	if rec != nil {
		opts.Observe = func(op string, start time.Time, err error) {
			rec.ObserveBackend("cfs-master"+op, start, err)
		}
	}
	return &clusterPool{clients: map[string]*master.Client{}, configured: map[string]bool{}, opts: opts}
}

// configure adds a cluster given in Options.
func (p *clusterPool) configure(list string) error {
	masters, err := parseMasters(list)
	if err != nil {
		return err
	}
	c, err := p.client(masters)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.configured[clusterKey(canonicalMasters(c.Addrs()))] = true
	return nil
}

// client returns the client of the cluster of masters, in canonical order.
func (p *clusterPool) client(masters []string) (*master.Client, error) {
	sorted := canonicalMasters(masters)
	key := clusterKey(sorted)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	c, err := master.New(sorted, p.opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	p.clients[key] = c
	return c, nil
}

// forID returns the client of the cluster an ID names. A hashed ID needs
// the masters from a secret (masterAddr), whose hash must match, or a
// cluster this process knows.
func (p *clusterPool) forID(id volumeID, secrets map[string]string) (*master.Client, error) {
	if id.Masters != nil {
		return p.client(id.Masters)
	}
	if list, ok := secrets[secretMasterAddr]; ok {
		masters, err := parseMasters(list)
		if err != nil {
			return nil, fmt.Errorf("%w: secret: %w", ErrInvalidArgument, err)
		}
		if clusterKey(canonicalMasters(masters)) != id.Cluster {
			return nil, fmt.Errorf("%w: the secret's %s is not the cluster volume %q was created on",
				ErrWrongState, secretMasterAddr, id.Name)
		}
		return p.client(masters)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id.Cluster]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: volume ID %q names its masters by hash: give %s in the secret",
		ErrWrongState, id.String(), secretMasterAddr)
}

// known returns the clients of every cluster seen so far, in key order.
func (p *clusterPool) known() []*master.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.clients))
	for k := range p.clients {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*master.Client, 0, len(keys))
	for _, k := range keys {
		out = append(out, p.clients[k])
	}
	return out
}

// configuredClients returns the clients of the configured clusters.
func (p *clusterPool) configuredClients() []*master.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*master.Client
	for k := range p.configured {
		out = append(out, p.clients[k])
	}
	return out
}

// close drops idle connections of every client.
func (p *clusterPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.Close()
	}
}
