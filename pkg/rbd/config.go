package rbd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Secret keys of the CSI secrets (the ceph-csi names).
const (
	secretUserID   = "userID"
	secretUserKey  = "userKey"
	secretAdminID  = "adminID"
	secretAdminKey = "adminKey"
)

const (
	// maxClusterIDLen keeps a volume ID within CSI's 128 bytes.
	maxClusterIDLen = 36
	// maxConfigBytes bounds the cluster config file we read.
	maxConfigBytes = 1 << 20
)

// clusterIDPattern is what a clusterID may contain: it is part of volume
// IDs and of log lines, so no separators beyond '-', '_' and '.'.
var clusterIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ClusterInfo is one entry of the cluster config: a clusterID and the
// monitors to reach it.
type ClusterInfo struct {
	ClusterID string
	Monitors  []string
}

// clusterEntry is the JSON form. ceph-csi configs carry more fields for
// other drivers and features; they are accepted and ignored, except
// rbd.radosNamespace, which this driver does not support yet.
type clusterEntry struct {
	ClusterID    string          `json:"clusterID"`
	Monitors     []string        `json:"monitors"`
	Namespace    json.RawMessage `json:"namespace,omitempty"`
	CephFS       json.RawMessage `json:"cephFS,omitempty"`
	NFS          json.RawMessage `json:"nfs,omitempty"`
	ReadAffinity json.RawMessage `json:"readAffinity,omitempty"`
	RBD          *struct {
		RadosNamespace       string          `json:"radosNamespace,omitempty"`
		NetNamespaceFilePath json.RawMessage `json:"netNamespaceFilePath,omitempty"`
		MirrorDaemonCount    json.RawMessage `json:"mirrorDaemonCount,omitempty"`
	} `json:"rbd,omitempty"`
}

// ParseClusterConfig decodes a ceph-csi style cluster list strictly:
// unknown fields, duplicate or malformed clusterIDs and empty monitor
// lists are errors.
func ParseClusterConfig(data []byte) (map[string]ClusterInfo, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []clusterEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("cluster config: trailing data after the JSON list")
	}
	out := make(map[string]ClusterInfo, len(entries))
	for i, e := range entries {
		if err := validateClusterEntry(e); err != nil {
			return nil, fmt.Errorf("cluster config entry %d: %w", i, err)
		}
		if _, dup := out[e.ClusterID]; dup {
			return nil, fmt.Errorf("cluster config: clusterID %q listed twice", e.ClusterID)
		}
		out[e.ClusterID] = ClusterInfo{ClusterID: e.ClusterID, Monitors: append([]string(nil), e.Monitors...)}
	}
	return out, nil
}

func validateClusterEntry(e clusterEntry) error {
	if err := validateClusterID(e.ClusterID); err != nil {
		return err
	}
	if len(e.Monitors) == 0 {
		return fmt.Errorf("clusterID %q: monitors is empty", e.ClusterID)
	}
	for _, m := range e.Monitors {
		if m == "" || strings.ContainsAny(m, " \t\r\n;") {
			return fmt.Errorf("clusterID %q: bad monitor address %q", e.ClusterID, m)
		}
	}
	if e.RBD != nil && e.RBD.RadosNamespace != "" {
		return fmt.Errorf("clusterID %q: rbd.radosNamespace is not supported yet", e.ClusterID)
	}
	return nil
}

func validateClusterID(id string) error {
	switch {
	case id == "":
		return errors.New("clusterID is empty")
	case len(id) > maxClusterIDLen:
		return fmt.Errorf("clusterID %q is longer than %d characters", id, maxClusterIDLen)
	case !clusterIDPattern.MatchString(id):
		return fmt.Errorf("clusterID %q may only contain letters, digits, '.', '_' and '-'", id)
	}
	return nil
}

// clusterConfig re-reads the cluster config file when it changes (a
// ConfigMap update swaps a symlink; stat follows it), so monitors can move
// without a restart. A file that stops parsing is an error, not a silent
// fallback to stale monitors.
type clusterConfig struct {
	path string

	mu       sync.Mutex
	modTime  time.Time
	size     int64
	clusters map[string]ClusterInfo
}

func newClusterConfig(path string) *clusterConfig {
	return &clusterConfig{path: path}
}

// load returns the current clusters, re-parsing the file if it changed.
func (c *clusterConfig) load() (map[string]ClusterInfo, error) {
	if c.path == "" {
		return nil, errors.New("no cluster config file given (--cluster-config)")
	}
	fi, err := os.Stat(c.path)
	if err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clusters != nil && fi.ModTime().Equal(c.modTime) && fi.Size() == c.size {
		return c.clusters, nil
	}
	data, err := readLimited(c.path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	clusters, err := ParseClusterConfig(data)
	if err != nil {
		return nil, err
	}
	c.clusters, c.modTime, c.size = clusters, fi.ModTime(), fi.Size()
	return clusters, nil
}

// lookup returns one cluster.
func (c *clusterConfig) lookup(clusterID string) (ClusterInfo, error) {
	clusters, err := c.load()
	if err != nil {
		return ClusterInfo{}, err
	}
	info, ok := clusters[clusterID]
	if !ok {
		return ClusterInfo{}, fmt.Errorf("%w: clusterID %q is not in the cluster config", ErrUnknownCluster, clusterID)
	}
	return info, nil
}

// all returns every cluster, sorted by clusterID.
func (c *clusterConfig) all() ([]ClusterInfo, error) {
	clusters, err := c.load()
	if err != nil {
		return nil, err
	}
	out := make([]ClusterInfo, 0, len(clusters))
	for _, info := range clusters {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClusterID < out[j].ClusterID })
	return out, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// Credentials are a cephx user and key. The key never appears in a log, an
// error or an argv: String and GoString redact it.
type Credentials struct {
	// ID is the cephx user without the "client." prefix.
	ID string
	// Key is the base64 cephx secret.
	Key string
}

// String redacts the key.
func (c Credentials) String() string { return "Credentials{ID:" + c.ID + ", Key:<redacted>}" }

// GoString redacts the key in %#v.
func (c Credentials) GoString() string { return c.String() }

// CredentialsFromSecrets reads userID/userKey, or adminID/adminKey, from
// CSI secrets. Errors name the missing or malformed key, never a value.
func CredentialsFromSecrets(secrets map[string]string) (Credentials, error) {
	idKey, keyKey := secretUserID, secretUserKey
	if secrets[secretUserID] == "" && secrets[secretUserKey] == "" &&
		(secrets[secretAdminID] != "" || secrets[secretAdminKey] != "") {
		idKey, keyKey = secretAdminID, secretAdminKey
	}
	return newCredentials(secrets[idKey], secrets[keyKey], idKey, keyKey)
}

func newCredentials(id, key, idName, keyName string) (Credentials, error) {
	id = strings.TrimPrefix(strings.TrimSpace(id), "client.")
	key = strings.TrimSpace(key)
	switch {
	case id == "":
		return Credentials{}, fmt.Errorf("%w: secret %q is missing or empty", ErrMissingCredentials, idName)
	case strings.ContainsAny(id, " \t\r\n=,;/"):
		return Credentials{}, fmt.Errorf("%w: secret %q is not a valid cephx user name", ErrMissingCredentials, idName)
	case key == "":
		return Credentials{}, fmt.Errorf("%w: secret %q is missing or empty", ErrMissingCredentials, keyName)
	}
	if !isCephxKey(key) {
		return Credentials{}, fmt.Errorf("%w: secret %q is not a cephx key (base64, as in a keyring's \"key =\" line)",
			ErrMissingCredentials, keyName)
	}
	return Credentials{ID: id, Key: key}, nil
}

// isCephxKey checks the encoding of a cephx secret: base64 of a 16-bit
// type (1, AES), an 8-byte creation time, a 16-bit length and that many
// secret bytes. librados prints a key it cannot decode to stderr, so a
// malformed one must never reach it.
func isCephxKey(key string) bool {
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) < 12 {
		return false
	}
	keyType := int(raw[0]) | int(raw[1])<<8
	n := int(raw[10]) | int(raw[11])<<8
	return keyType == 1 && n > 0 && len(raw) == 12+n
}

// credentialsFromDir reads the files userID and userKey of a mounted
// Secret. It is read on every use, so a rotated Secret takes effect.
func credentialsFromDir(dir string) (Credentials, error) {
	if dir == "" {
		return Credentials{}, fmt.Errorf("%w: set --controller-secret-dir", ErrNotConfigured)
	}
	read := func(name string) (string, error) {
		data, err := readLimited(filepath.Join(dir, name), 4096)
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("%w: controller secret %q: %v", ErrNotConfigured, name, pathErrorOp(err))
		}
		return string(data), nil
	}
	id, err := read(secretUserID)
	if err != nil {
		return Credentials{}, err
	}
	key, err := read(secretUserKey)
	if err != nil {
		return Credentials{}, err
	}
	return newCredentials(id, key, secretUserID, secretUserKey)
}

// pathErrorOp keeps only the failing operation and errno of a path error.
func pathErrorOp(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return "unreadable"
}
