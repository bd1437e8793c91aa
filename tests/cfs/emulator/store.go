package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// store owns the State. With a state file, every access takes an exclusive
// flock and re-reads the file, so several emulator processes (or a restarted
// one) act as one master; without one, the state lives in memory.
type store struct {
	mu   sync.Mutex
	path string
	mem  *State
}

func newStore(path string, now time.Time) *store {
	s := &store{path: path}
	if path == "" {
		s.mem = newState(now)
	}
	return s
}

// update runs fn on the current state and persists what fn changed.
func (s *store) update(now time.Time, fn func(st *State)) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.path == "" {
		fn(s.mem)
		return nil
	}

	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()

	st, raw, err := loadState(s.path, now)
	if err != nil {
		return err
	}
	fn(st)
	return saveIfChanged(s.path, st, raw)
}

// lockFile takes an exclusive flock on path, creating it if needed.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// loadState reads the state file; a missing or empty file is a new cluster.
func loadState(path string, now time.Time) (*State, []byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(raw) == 0) {
		return newState(now), nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read state: %w", err)
	}
	st := &State{}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	if st.Vols == nil {
		st.Vols = map[string]*Volume{}
	}
	if st.Users == nil {
		st.Users = map[string]*User{}
	}
	return st, raw, nil
}

// saveIfChanged writes st atomically (temp file + rename) unless it
// serialises to exactly what was read.
func saveIfChanged(path string, st *State, old []byte) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if bytes.Equal(raw, old) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
