package rbd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Secret is a cephx key. It prints as a placeholder, so a stray %v or a
// structured log value never shows it; only writeKeyFile reads it.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "<redacted>" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return "<redacted>" }

// MarshalLog implements logr.Marshaler.
func (Secret) MarshalLog() any { return "<redacted>" }

// MarshalJSON keeps the key out of anything encoded to JSON (records).
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"<redacted>"`), nil }

// MapRequest is what a mapper needs to attach one image on this node.
type MapRequest struct {
	// VolumeID keys the mapper's per-volume state (working directory,
	// nbd cookie).
	VolumeID  string
	Monitors  []string
	User      string
	Key       Secret
	Pool      string
	Namespace string
	Image     string
	ReadOnly  bool
	// Options are the StorageClass mapOptions (kernel or rbd-nbd options).
	Options []string
}

// spec returns pool[/namespace]/image.
func (r *MapRequest) spec() string {
	return imageSpec(r.Pool, r.Namespace, r.Image)
}

func imageSpec(pool, namespace, image string) string {
	if namespace != "" {
		return pool + "/" + namespace + "/" + image
	}
	return pool + "/" + image
}

// Mapping describes an attached image; it is kept in the node record and
// is all Unmap, Check and Refresh need (no credentials).
type Mapping struct {
	Mapper   string `json:"mapper"`
	Device   string `json:"device"`
	Spec     string `json:"spec"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// WorkDir (fuse) holds the rbd-fuse mount point, its conf and keyring.
	WorkDir string `json:"workDir,omitempty"`
	// File (fuse) is the image file on the rbd-fuse mount behind the loop
	// device.
	File string `json:"file,omitempty"`
	// Cookie (rbd-nbd) names the nbd attachment.
	Cookie string `json:"cookie,omitempty"`
}

// mapper attaches RBD images as block devices on this node. Every method
// is idempotent: Map finds an existing mapping of the same image, Unmap of
// something already gone succeeds.
type mapper interface {
	// Map attaches the image and returns its mapping.
	Map(ctx context.Context, req *MapRequest) (*Mapping, error)
	// Unmap detaches it and removes every file the mapper wrote.
	Unmap(ctx context.Context, m *Mapping) error
	// Check reports ErrMappingGone when the device no longer serves the
	// image (device detached, mapper process dead).
	Check(ctx context.Context, m *Mapping) error
	// Refresh waits until the device shows at least size bytes after the
	// image grew, and returns the device size.
	Refresh(ctx context.Context, m *Mapping, size int64) (int64, error)
}

// writeKeyFile writes the key to a new 0600 file in dir and returns its
// path; the caller removes it.
func writeKeyFile(dir string, key Secret) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create key directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "keyfile-*")
	if err != nil {
		return "", fmt.Errorf("create key file: %w", err)
	}
	_, err = f.WriteString(string(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write key file: %w", err)
	}
	return f.Name(), nil
}

// redact removes every occurrence of key from tool output before it goes
// into an error (some Ceph tools echo a malformed key back).
func redact(out []byte, key Secret) string {
	s := strings.TrimSpace(string(out))
	if key != "" {
		s = strings.ReplaceAll(s, string(key), "<redacted>")
	}
	const max = 512
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return s
}

// cephArgs are the connection arguments every rbd CLI call carries: the
// user, the monitors and the key file — never the key.
func cephArgs(req *MapRequest, keyFile string) []string {
	return []string{"--id", req.User, "-m", strings.Join(req.Monitors, ","), "--keyfile", keyFile}
}

// keyDir is where short-lived key files go.
func keyDir(stateDir string) string { return filepath.Join(stateDir, "keys") }
