// Package locks holds per-key in-flight sets: a second call for a key that
// is already being worked on is refused at once (the caller returns Aborted
// and the sidecar retries), never queued behind the first.
package locks

import "sync"

// KeyLocks is a set of keys currently being operated on.
type KeyLocks struct {
	mu   sync.Mutex
	held map[string]struct{}
}

// New returns an empty set.
func New() *KeyLocks {
	return &KeyLocks{held: make(map[string]struct{})}
}

// TryAcquire takes key and reports true, or reports false when it is held.
func (l *KeyLocks) TryAcquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[key]; busy {
		return false
	}
	l.held[key] = struct{}{}
	return true
}

// TryAcquireAll takes every key or none.
func (l *KeyLocks) TryAcquireAll(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if _, busy := l.held[k]; busy {
			return false
		}
	}
	for _, k := range keys {
		l.held[k] = struct{}{}
	}
	return true
}

// Release frees keys.
func (l *KeyLocks) Release(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.held, k)
	}
}
