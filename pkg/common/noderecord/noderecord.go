// Package noderecord keeps node-side bookkeeping for both drivers: one
// small JSON record per staged volume, written atomically (temporary file,
// fsync, rename) with mode 0600 under the plugin's state directory, and
// read back by unstage, expand, stats and restart recovery. Records are
// keyed by a hash of the volume ID, so any ID is a safe file name.
package noderecord

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound reports that no record exists for a volume.
var ErrNotFound = errors.New("no node record for volume")

// version is the envelope format; readers refuse newer ones.
const version = 1

const suffix = ".json"

// envelope is what is written to disk; Data is the driver's own record.
type envelope struct {
	Version  int             `json:"version"`
	VolumeID string          `json:"volumeID"`
	Data     json.RawMessage `json:"data"`
}

// Store is a directory of records.
type Store struct {
	dir string
}

// New returns a store in dir, creating it (0700) when missing.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create record directory %q: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Key returns the file-name-safe key of a volume ID: 32 hex digits of its
// SHA-256. Drivers use it for per-volume working directories too.
func Key(volumeID string) string {
	sum := sha256.Sum256([]byte(volumeID))
	return hex.EncodeToString(sum[:16])
}

// Path returns the record file of a volume.
func (s *Store) Path(volumeID string) string {
	return filepath.Join(s.dir, Key(volumeID)+suffix)
}

// Save writes data as the record of volumeID, replacing any previous one
// atomically: a crash leaves either the old record or the new one.
func (s *Store) Save(volumeID string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	b, err := json.MarshalIndent(envelope{Version: version, VolumeID: volumeID, Data: raw}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	return writeAtomic(s.Path(volumeID), b)
}

// Load reads the record of volumeID into data; ErrNotFound when there is
// none.
func (s *Store) Load(volumeID string, data any) error {
	env, err := s.read(s.Path(volumeID))
	if err != nil {
		return err
	}
	if env.VolumeID != volumeID {
		return fmt.Errorf("record %s belongs to volume %q, not %q", s.Path(volumeID), env.VolumeID, volumeID)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("decode record %s: %w", s.Path(volumeID), err)
	}
	return nil
}

// Remove deletes the record of volumeID; a missing record is fine.
func (s *Store) Remove(volumeID string) error {
	err := os.Remove(s.Path(volumeID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove record: %w", err)
	}
	return syncDir(s.dir)
}

// List returns the volume IDs that have records, for restart recovery.
// Unreadable files are skipped and reported in the error, which is
// returned together with the IDs that could be read.
func (s *Store) List() ([]string, error) {
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	var ids []string
	var errs []error
	for _, n := range names {
		if n.IsDir() || !strings.HasSuffix(n.Name(), suffix) {
			continue
		}
		env, err := s.read(filepath.Join(s.dir, n.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, env.VolumeID)
	}
	return ids, errors.Join(errs...)
}

func (s *Store) read(path string) (*envelope, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", path, err)
	}
	if env.Version < 1 || env.Version > version {
		return nil, fmt.Errorf("record %s has unknown version %d", path, env.Version)
	}
	return &env, nil
}

// writeAtomic writes b to path through a 0600 temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory.
func writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary record: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install record: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open record directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync record directory: %w", err)
	}
	return nil
}
