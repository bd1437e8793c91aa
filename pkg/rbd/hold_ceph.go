package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
)

// holdTarget is one image's hold lock and records, reached through one
// RADOS connection. Every call opens the image briefly: a plugin must not
// keep images open (an open image is a watcher, which other nodes read as
// "in use").
type holdTarget struct {
	conn   *rados.Conn
	io     *rados.IOContext
	pool   string
	image  string
	header string
	done   func()
}

// openHoldTarget connects and finds the image's header object; a missing
// pool or image is ErrVolumeNotFound.
func openHoldTarget(
	ctx context.Context, conns *connCache, monitors []string, creds Credentials, pool, namespace, image string,
) (*holdTarget, error) {
	conn, release, err := conns.get(ctx, monitors, creds)
	if err != nil {
		return nil, err
	}
	t := &holdTarget{conn: conn, pool: pool, image: image, done: release}
	if t.io, err = conn.OpenIOContext(pool); err != nil {
		release()
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: pool %q does not exist", ErrVolumeNotFound, pool)
		}
		return nil, fmt.Errorf("open pool %q: %w", pool, err)
	}
	t.io.SetNamespace(namespace)
	img, err := librbd.OpenImageReadOnly(t.io, image, librbd.NoSnapshot)
	if err != nil {
		t.close()
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: image %s/%s", ErrVolumeNotFound, pool, image)
		}
		return nil, fmt.Errorf("open image %s/%s: %w", pool, image, err)
	}
	id, err := img.GetId()
	_ = img.Close() // read-only: nothing to flush
	if err != nil {
		t.close()
		return nil, fmt.Errorf("id of image %s/%s: %w", pool, image, err)
	}
	t.header = "rbd_header." + id
	return t, nil
}

func (t *holdTarget) close() {
	if t.io != nil {
		t.io.Destroy()
	}
	t.done()
}

// lock tries to take the hold lock: 0, -EEXIST (this client holds it
// already) or -EBUSY (someone else does).
func (t *holdTarget) lock(cookie string, exclusive bool, desc string) (int, error) {
	var ret int
	var err error
	if exclusive {
		ret, err = t.io.LockExclusive(t.header, holdLockName, cookie, desc, 0, nil)
	} else {
		ret, err = t.io.LockShared(t.header, holdLockName, cookie, holdLockTag, desc, 0, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("lock %s/%s: %w", t.pool, t.image, err)
	}
	return ret, nil
}

// lockers lists the hold lock's entries. go-ceph reads them into 1 KiB
// buffers: with dozens of shared holders the list does not fit (ERANGE).
func (t *holdTarget) lockers() (bool, []locker, error) {
	info, err := t.io.ListLockers(t.header, holdLockName)
	if err != nil {
		if isNotFound(err) {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("list hold lock of %s/%s: %w", t.pool, t.image, err)
	}
	out := make([]locker, 0, info.NumLockers)
	for i := 0; i < info.NumLockers && i < len(info.Clients) && i < len(info.Cookies); i++ {
		l := locker{Client: info.Clients[i], Cookie: info.Cookies[i]}
		if i < len(info.Addrs) {
			l.Addr = info.Addrs[i]
		}
		out = append(out, l)
	}
	return info.Exclusive, out, nil
}

// breakLock removes one entry; one that is already gone is fine.
func (t *holdTarget) breakLock(l locker) error {
	ret, err := t.io.BreakLock(t.header, holdLockName, l.Client, l.Cookie)
	if err == nil && ret == -int(syscall.EINVAL) {
		err = fmt.Errorf("bad client name %q", l.Client)
	}
	if err != nil {
		return fmt.Errorf("break hold lock entry %s/%s of %s/%s: %w", l.Client, l.Cookie, t.pool, t.image, err)
	}
	return nil
}

// unlockOwn removes every entry of node (of any claim: the entry's
// client may be a dead process of the node's plugin).
func (t *holdTarget) unlockOwn(node string) error {
	_, entries, err := t.lockers()
	if err != nil {
		return err
	}
	for _, l := range entries {
		if n, _ := cookieNode(l.Cookie); n == node {
			if err := t.breakLock(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// holds reports whether node has an entry.
func (t *holdTarget) holds(node string) (bool, []locker, error) {
	_, entries, err := t.lockers()
	if err != nil {
		return false, nil, err
	}
	for _, l := range entries {
		if n, _ := cookieNode(l.Cookie); n == node {
			return true, entries, nil
		}
	}
	return false, entries, nil
}

// view reads the lock, the holder records and the watchers. The image is
// opened read-only, which registers no watch of our own.
func (t *holdTarget) view() (holdView, map[string]string, error) {
	exclusive, entries, err := t.lockers()
	if err != nil {
		return holdView{}, nil, err
	}
	img, err := librbd.OpenImageReadOnly(t.io, t.image, librbd.NoSnapshot)
	if err != nil {
		return holdView{}, nil, fmt.Errorf("open image %s/%s: %w", t.pool, t.image, err)
	}
	defer func() { _ = img.Close() }() // read-only: nothing to flush
	meta, err := img.ListMetadata()
	if err != nil {
		return holdView{}, nil, fmt.Errorf("metadata of %s/%s: %w", t.pool, t.image, err)
	}
	ws, err := img.ListWatchers()
	if err != nil {
		return holdView{}, nil, fmt.Errorf("watchers of %s/%s: %w", t.pool, t.image, err)
	}
	self := int64(t.conn.GetInstanceID())
	var watchers []string
	for _, w := range ws {
		if w.Id != self {
			watchers = append(watchers, w.Addr)
		}
	}
	sort.Strings(watchers)
	records := parseHoldRecords(meta)
	beats, err := t.heartbeats()
	if err != nil {
		return holdView{}, nil, err
	}
	for node, r := range beats {
		records[node] = r // the heartbeat carries the whole record, newer
	}
	return holdView{Exclusive: exclusive, Lockers: entries, Records: records, Watchers: watchers}, meta, nil
}

// The heartbeat is an xattr of the header object holding the whole
// holdRecord (heartbeatXattrPrefix + nodeID), written with plain RADOS.
// Image metadata would go through librbd: every write bumps the header and
// notifies the image's clients, and on an image with the exclusive-lock
// feature it needs the lock, which a kernel client holding it has to hand
// over and take back: a stall of the database's I/O at every renewal. The
// image metadata keeps the record as of claim and map, for operators.
const heartbeatXattrPrefix = "tkestor.csi.heartbeat."

// heartbeats reads every node's heartbeat record.
func (t *holdTarget) heartbeats() (map[string]*holdRecord, error) {
	attrs, err := t.io.ListXattrs(t.header)
	if err != nil {
		return nil, fmt.Errorf("heartbeats of %s/%s: %w", t.pool, t.image, err)
	}
	out := map[string]*holdRecord{}
	for name, value := range attrs {
		node, ok := strings.CutPrefix(name, heartbeatXattrPrefix)
		if !ok {
			continue
		}
		var r holdRecord
		if json.Unmarshal(value, &r) == nil && r.Node == node {
			out[node] = &r
		}
	}
	return out, nil
}

// writeHeartbeat stores a node's record as its heartbeat.
func (t *holdTarget) writeHeartbeat(r *holdRecord) error {
	if err := t.io.SetXattr(t.header, heartbeatXattrPrefix+r.Node, []byte(r.encode())); err != nil {
		return fmt.Errorf("heartbeat on %s/%s: %w", t.pool, t.image, err)
	}
	return nil
}

// removeHeartbeats drops the heartbeats of nodes; missing ones are fine.
func (t *holdTarget) removeHeartbeats(nodes ...string) error {
	for _, node := range nodes {
		err := t.io.RmXattr(t.header, heartbeatXattrPrefix+node)
		if err != nil && !isErrno(err, syscall.ENODATA) && !isNotFound(err) {
			return fmt.Errorf("remove heartbeat of %s on %s/%s: %w", node, t.pool, t.image, err)
		}
	}
	return nil
}

// updateMeta opens the image read-write and applies what change returns
// for the current metadata: keys to set and keys to remove.
func (t *holdTarget) updateMeta(change func(meta map[string]string) (map[string]string, []string)) (err error) {
	img, err := librbd.OpenImage(t.io, t.image, librbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s/%s: %w", t.pool, t.image, err)
	}
	defer func() {
		if cerr := img.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close image %s/%s: %w", t.pool, t.image, cerr)
		}
	}()
	meta, err := img.ListMetadata()
	if err != nil {
		return fmt.Errorf("metadata of %s/%s: %w", t.pool, t.image, err)
	}
	set, remove := change(meta)
	for _, key := range remove {
		if err := img.RemoveMetadata(key); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove metadata %q of %s/%s: %w", key, t.pool, t.image, err)
		}
	}
	for key, value := range set {
		if err := img.SetMetadata(key, value); err != nil {
			return fmt.Errorf("set metadata %q of %s/%s: %w", key, t.pool, t.image, err)
		}
	}
	return nil
}

// pluginAddrs is this connection's client address (what fencing this
// plugin would blocklist).
func (t *holdTarget) pluginAddrs() []string {
	a, err := t.conn.GetAddrs()
	if err != nil || a == "" {
		return nil
	}
	return strings.Split(strings.Trim(a, "[]"), ",")
}

// isBlocklisted reports the error a RADOS client gets once the cluster
// has blocklisted it (EBLOCKLISTED is ESHUTDOWN): only a new connection,
// with a new address, works again.
func isBlocklisted(err error) bool {
	return isErrno(err, syscall.ESHUTDOWN)
}

// writeHoldKey keeps the cephx key of a held volume in a 0600 file.
func writeHoldKey(stateDir, volumeID string, key Secret) error {
	path := holdKeyFile(stateDir, volumeID)
	if err := os.MkdirAll(keyDir(stateDir), 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	return writePrivate(path, string(key))
}

// readHoldKey reads it back; os.ErrNotExist when it is gone.
func readHoldKey(stateDir, volumeID string) (string, error) {
	b, err := readLimited(holdKeyFile(stateDir, volumeID), 4096)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// removeHoldKey deletes it; a missing file is fine.
func removeHoldKey(stateDir, volumeID string) error {
	err := os.Remove(holdKeyFile(stateDir, volumeID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove hold key file: %w", err)
	}
	return nil
}
