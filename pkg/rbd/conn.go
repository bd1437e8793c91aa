package rbd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ceph/go-ceph/rados"
	"k8s.io/klog/v2"
)

// ConnOptions tune the connection cache.
type ConnOptions struct {
	// OpTimeout bounds every monitor and OSD operation and the initial
	// connect, so no librados call can hang while a volume lock is held.
	OpTimeout time.Duration
	// IdleTimeout closes connections unused for this long.
	IdleTimeout time.Duration
}

// Defaults for ConnOptions.
const (
	DefaultOpTimeout   = 20 * time.Second
	DefaultIdleTimeout = 5 * time.Minute
)

// connCache shares one RADOS connection per (monitors, user, key) between
// calls. Connections are reference counted; a janitor closes idle ones.
type connCache struct {
	opts ConnOptions

	mu      sync.Mutex
	entries map[string]*connEntry
	stop    chan struct{}
	done    chan struct{}
}

type connEntry struct {
	ready    chan struct{} // closed when conn/err are set
	conn     *rados.Conn
	err      error
	refs     int
	lastUsed time.Time
	// evicted: out of the map; shut down when the last user releases it.
	evicted bool
}

func newConnCache(opts ConnOptions) *connCache {
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	c := &connCache{
		opts:    opts,
		entries: make(map[string]*connEntry),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.janitor()
	return c
}

// cacheKey identifies a connection. The key is hashed so that a rotated
// secret gets a new connection and the key itself is not kept as a map key.
func cacheKey(monitors []string, creds Credentials) string {
	mons := append([]string(nil), monitors...)
	sort.Strings(mons)
	sum := sha256.Sum256([]byte(creds.Key))
	return strings.Join(mons, ",") + "|" + creds.ID + "|" + hex.EncodeToString(sum[:8])
}

// get returns a connected client and a release func the caller must call.
func (c *connCache) get(ctx context.Context, monitors []string, creds Credentials) (*rados.Conn, func(), error) {
	key := cacheKey(monitors, creds)
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		e = &connEntry{ready: make(chan struct{})}
		c.entries[key] = e
	}
	e.refs++
	c.mu.Unlock()
	if !ok {
		e.conn, e.err = c.connect(monitors, creds)
		close(e.ready)
	}

	select {
	case <-e.ready:
	case <-ctx.Done():
		c.put(key, e)
		return nil, nil, ctx.Err()
	}
	if e.err != nil {
		c.put(key, e)
		return nil, nil, e.err
	}
	var once sync.Once
	return e.conn, func() { once.Do(func() { c.put(key, e) }) }, nil
}

// put drops a reference; a failed connection leaves the cache at once so
// the next call tries again, an evicted one is shut down by its last user.
func (c *connCache) put(key string, e *connEntry) {
	c.mu.Lock()
	e.refs--
	e.lastUsed = time.Now()
	select {
	case <-e.ready:
	default:
		c.mu.Unlock()
		return // still connecting; the connecting caller holds a reference
	}
	if e.err != nil && c.entries[key] == e {
		delete(c.entries, key)
	}
	shut := e.evicted && e.refs == 0 && e.conn != nil
	c.mu.Unlock()
	if shut {
		e.conn.Shutdown()
	}
}

// evict drops the connection of (monitors, creds): once the cluster has
// blocklisted a client (this node was fenced and came back), every call
// on it fails, and only a new connection, with a new address, works. The
// old one is shut down when its last user releases it.
func (c *connCache) evict(monitors []string, creds Credentials) {
	key := cacheKey(monitors, creds)
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		c.mu.Unlock()
		return
	}
	delete(c.entries, key)
	e.evicted = true
	var shut bool
	select {
	case <-e.ready:
		shut = e.refs == 0 && e.conn != nil
	default:
	}
	c.mu.Unlock()
	if shut {
		e.conn.Shutdown()
	}
	klog.InfoS("Dropped a Ceph connection the cluster blocklisted", "user", creds.ID)
}

// connect opens a connection. The key goes in through the "key" option:
// never argv, never a file, never a log line.
func (c *connCache) connect(monitors []string, creds Credentials) (*rados.Conn, error) {
	conn, err := rados.NewConnWithUser(creds.ID)
	if err != nil {
		return nil, fmt.Errorf("create rados client: %w", err)
	}
	timeout := strconv.Itoa(int(c.opts.OpTimeout.Seconds()))
	settings := [][2]string{
		{"log_to_stderr", "false"},
		{"err_to_stderr", "false"},
		{"mon_host", strings.Join(monitors, ",")},
		{"keyring", ""},
		{"key", creds.Key},
		{"rados_mon_op_timeout", timeout},
		{"rados_osd_op_timeout", timeout},
		{"client_mount_timeout", timeout},
		{"rbd_default_clone_format", "2"},
	}
	for _, kv := range settings {
		if err := conn.SetConfigOption(kv[0], kv[1]); err != nil {
			conn.Shutdown()
			return nil, fmt.Errorf("set rados option %s: %w", kv[0], err)
		}
	}
	if err := conn.Connect(); err != nil {
		conn.Shutdown()
		return nil, fmt.Errorf("connect to monitors %s as %q: %w", strings.Join(monitors, ","), creds.ID, err)
	}
	klog.V(2).InfoS("Connected to Ceph", "monitors", monitors, "user", creds.ID)
	return conn, nil
}

func (c *connCache) janitor() {
	defer close(c.done)
	tick := time.NewTicker(c.opts.IdleTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			c.closeIdle(time.Now().Add(-c.opts.IdleTimeout))
		}
	}
}

// closeIdle shuts connections nobody holds that were last used before t.
func (c *connCache) closeIdle(before time.Time) {
	c.mu.Lock()
	var idle []*rados.Conn
	for key, e := range c.entries {
		select {
		case <-e.ready:
		default:
			continue
		}
		if e.refs == 0 && e.lastUsed.Before(before) {
			delete(c.entries, key)
			if e.conn != nil {
				idle = append(idle, e.conn)
			}
		}
	}
	c.mu.Unlock()
	for _, conn := range idle {
		conn.Shutdown()
	}
	if len(idle) > 0 {
		klog.V(4).InfoS("Closed idle Ceph connections", "count", len(idle))
	}
}

// close stops the janitor and shuts every connection.
func (c *connCache) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.done
	c.mu.Lock()
	entries := c.entries
	c.entries = make(map[string]*connEntry)
	c.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.conn != nil {
			e.conn.Shutdown()
		}
	}
}
