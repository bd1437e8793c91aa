package cfs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
)

// Keys of the cfs-client JSON config (CubeFS proto/mount_options.go) that
// the driver writes; nothing else ever goes in. profPort and exporterPort
// are left out on purpose: unset, the client serves neither, so several
// clients on one node never race for a port.
const (
	confMountPoint = "mountPoint"
	confVolName    = "volName"
	confOwner      = "owner"
	confMasterAddr = "masterAddr"
	confLogDir     = "logDir"
	confLogLevel   = "logLevel"
	confConsulAddr = "consulAddr"
	confReadOnly   = "rdonly"
)

// clientConfig is what one staging's client is told.
type clientConfig struct {
	MountPoint string
	VolName    string
	Owner      master.Owner
	Masters    []string
	LogDir     string
	LogLevel   string
	ConsulAddr string
	ReadOnly   bool
}

// values renders the config as the client reads it: every value a string,
// as cubefs-csi writes it and every release parses it.
func (c clientConfig) values() map[string]string {
	v := map[string]string{
		confMountPoint: c.MountPoint,
		confVolName:    c.VolName,
		confOwner:      c.Owner.Reveal(),
		confMasterAddr: strings.Join(c.Masters, ","),
		confLogDir:     c.LogDir,
		confReadOnly:   strconv.FormatBool(c.ReadOnly),
	}
	if c.LogLevel != "" {
		v[confLogLevel] = c.LogLevel
	}
	if c.ConsulAddr != "" {
		v[confConsulAddr] = c.ConsulAddr
	}
	return v
}

// writeClientConfig writes the config to path with mode 0600 (it holds the
// owner), through a temporary file so a crash never leaves half a file.
func writeClientConfig(path string, c clientConfig) error {
	b, err := json.MarshalIndent(c.values(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode client config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".client-*.json")
	if err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err = tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	return nil
}
