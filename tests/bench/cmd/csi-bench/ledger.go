package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ledger remembers everything the benchmark made and has not yet taken
// down, so that an interrupted or failing run still cleans up after itself.
type ledger struct {
	mu     sync.Mutex
	vols   map[*volume]side
	snaps  map[*snapshot]side
	staged map[*staged]side
	// attached are volumes set up for the node phase but not staged.
	attached map[*staged]side
	// failed are create requests that failed; a retry may still have made
	// the volume (a timed-out CreateVolume finishes later).
	failed map[string]side
}

func newLedger() *ledger {
	return &ledger{
		vols:     map[*volume]side{},
		snaps:    map[*snapshot]side{},
		staged:   map[*staged]side{},
		attached: map[*staged]side{},
		failed:   map[string]side{},
	}
}

func (l *ledger) addVol(s side, v *volume) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.vols[v] = s
}

func (l *ledger) dropVol(v *volume) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.vols, v)
}

func (l *ledger) addFailed(s side, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed[name] = s
}

func (l *ledger) addSnap(s side, sn *snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snaps[sn] = s
}

func (l *ledger) dropSnap(sn *snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.snaps, sn)
}

func (l *ledger) setAttached(s side, st *staged, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		l.attached[st] = s
	} else {
		delete(l.attached, st)
	}
}

func (l *ledger) setStaged(s side, st *staged, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		l.staged[st] = s
	} else {
		delete(l.staged, st)
	}
}

// cleanup takes down whatever is left, newest layer first: mounts,
// attachments, snapshots, volumes, then volumes whose create failed. It
// returns one line per object it could not remove.
func (l *ledger) cleanup(timeout time.Duration) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var left []string
	try := func(what string, f func(ctx context.Context) error) bool {
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err = f(ctx)
			cancel()
			if err == nil {
				return true
			}
			time.Sleep(time.Second)
		}
		left = append(left, fmt.Sprintf("%s: %v", what, err))
		return false
	}
	for st, s := range l.staged {
		if try(s.name()+" unstage "+st.vol.name, func(ctx context.Context) error {
			_, err := s.unpublishUnstage(ctx, st)
			return err
		}) {
			delete(l.staged, st)
			l.attached[st] = s
		}
	}
	for st, s := range l.attached {
		if try(s.name()+" detach "+st.vol.name, func(ctx context.Context) error {
			return s.detach(ctx, st)
		}) {
			delete(l.attached, st)
		}
	}
	for sn, s := range l.snaps {
		if try(s.name()+" snapshot "+sn.name, func(ctx context.Context) error {
			return s.deleteSnapshot(ctx, sn)
		}) {
			delete(l.snaps, sn)
		}
	}
	for v, s := range l.vols {
		if try(s.name()+" volume "+v.name, func(ctx context.Context) error {
			return s.deleteVolume(ctx, v)
		}) {
			delete(l.vols, v)
		}
	}
	for name, s := range l.failed {
		what := s.name() + " volume " + name + " (create failed; a retry to find and delete it failed too)"
		if try(what, func(ctx context.Context) error { return removeByName(ctx, s, name) }) {
			delete(l.failed, name)
		}
	}
	return left
}

// removeByName deletes a volume known only by its request name: for a CSI
// driver, CreateVolume again (idempotent: it returns the volume if the
// failed call made it after all) and delete the result; for the floor,
// remove the image of that name.
func removeByName(ctx context.Context, s side, name string) error {
	if s.name() == sideFloor {
		return s.deleteVolume(ctx, &volume{name: name, id: name})
	}
	v, err := s.createVolume(ctx, name)
	if err != nil {
		switch status.Code(err) {
		case codes.InvalidArgument, codes.Unimplemented, codes.AlreadyExists:
			return nil // the driver refuses the request itself: it never made one
		}
		return err
	}
	if err := s.deleteVolume(ctx, v); err != nil {
		return errors.Join(fmt.Errorf("volume %s", v.id), err)
	}
	return nil
}
