package rbd

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/ceph/go-ceph/rados"
	"k8s.io/klog/v2"
)

// Backend locks close the race between controller processes (two replicas,
// or a restarted one whose old call still runs): every mutating operation
// on an image holds a RADOS exclusive lock on the object
// "csi.lock.<image>" in the image's pool. The lock is a lease: it expires
// its duration (Options.LeaseDuration, DefaultLeaseDuration) after the last
// renewal, so a crashed holder blocks retries (Aborted) for at most that
// long; the holder renews it every third of the duration and stops working
// (ErrLeaseLost) once it is less than a quarter of it from expiry without a
// renewal. Releasing deletes the lock
// object (which drops the lock with it) after a must-renew proves we still
// hold it, so no bookkeeping object is left behind.
const (
	lockObjectPrefix = "csi.lock."
	lockName         = "tkestor.csi"
	// DefaultLeaseDuration is how long a backend lock outlives its last
	// renewal unless Options.LeaseDuration says otherwise.
	DefaultLeaseDuration = 30 * time.Second

	lockFlagMustRenew = byte(1 << 1) // LIBRADOS_LOCK_FLAG_MUST_RENEW
)

// lease is one held backend lock.
type lease struct {
	io       *rados.IOContext
	oid      string
	cookie   string
	duration time.Duration

	mu      sync.Mutex
	renewed time.Time
	lost    error
	stop    chan struct{}
	done    chan struct{}
}

// acquireLease takes the backend lock of image in pool, or returns
// ErrInProgress when another operation holds it.
func acquireLease(conn *rados.Conn, pool, image, op string, duration time.Duration) (*lease, error) {
	io, err := conn.OpenIOContext(pool)
	if err != nil {
		return nil, fmt.Errorf("open pool %q for lock: %w", pool, err)
	}
	l := &lease{io: io, oid: lockObjectPrefix + image, cookie: newCookie(), duration: duration}
	start := time.Now()
	ret, err := io.LockExclusive(l.oid, lockName, l.cookie, op, duration, nil)
	switch {
	case err != nil:
		io.Destroy()
		return nil, fmt.Errorf("lock %q in pool %q: %w", l.oid, pool, err)
	case ret == -int(syscall.EBUSY) || ret == -int(syscall.EEXIST):
		io.Destroy()
		return nil, fmt.Errorf("%w: image %q in pool %q is locked by another operation", ErrInProgress, image, pool)
	}
	l.renewed = start
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.renewLoop()
	return l, nil
}

func newCookie() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return hex.EncodeToString(b)
}

func (l *lease) renewLoop() {
	defer close(l.done)
	tick := time.NewTicker(l.duration / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			if err := l.renew(); err != nil {
				return
			}
		}
	}
}

// renew extends the lease only if we still hold it.
func (l *lease) renew() error {
	start := time.Now()
	flags := lockFlagMustRenew
	ret, err := l.io.LockExclusive(l.oid, lockName, l.cookie, "", l.duration, &flags)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && ret == 0 {
		l.renewed = start
		return nil
	}
	if err == nil {
		err = syscall.Errno(-ret)
	}
	if l.lost == nil {
		l.lost = fmt.Errorf("%w: renew %q: %v", ErrLeaseLost, l.oid, err)
	}
	return l.lost
}

// check fails once the lease is lost or too close to expiry to start
// another step safely.
func (l *lease) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if time.Since(l.renewed) > l.duration-l.duration/4 {
		return fmt.Errorf("%w: %q not renewed for %s", ErrLeaseLost, l.oid, time.Since(l.renewed).Round(time.Second))
	}
	return nil
}

// release ends the lease and deletes the lock object, if still ours.
func (l *lease) release() {
	close(l.stop)
	<-l.done
	defer l.io.Destroy()
	if err := l.renew(); err != nil {
		klog.InfoS("Backend lock lost before release; leaving it", "object", l.oid, "err", err)
		return
	}
	if err := l.io.Delete(l.oid); err != nil && !isNotFound(err) {
		klog.ErrorS(err, "Deleting backend lock object failed; it expires unused", "object", l.oid)
	}
}

// leases is the set an operation holds (its target and maybe a source).
type leases []*lease

func (ls leases) check() error {
	for _, l := range ls {
		if err := l.check(); err != nil {
			return err
		}
	}
	return nil
}

func (ls leases) release() {
	for i := len(ls) - 1; i >= 0; i-- {
		ls[i].release()
	}
}
