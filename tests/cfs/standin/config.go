package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Environment variables the stand-in reads (none exist for the real client).
const (
	// EnvDataRoot is the directory holding one backing directory per
	// volume. Every stand-in that should share data must use the same one.
	EnvDataRoot = "CFS_STANDIN_DATA_ROOT"
	// EnvRetryUnit scales the master retry back-off: the real client tries
	// five times, sleeping 1, 2, 3, 4, 5 units of 5 s (75 s in all).
	EnvRetryUnit = "CFS_STANDIN_RETRY_UNIT"
	// EnvConfInterval is how often the mounted client re-reads the volume
	// and exits if it is gone (real client: 2 min).
	EnvConfInterval = "CFS_STANDIN_CONF_INTERVAL"
	// EnvStatfsInterval is how often the capacity reported by statfs is
	// refreshed (real client: 5 min).
	EnvStatfsInterval = "CFS_STANDIN_STATFS_INTERVAL"
	// EnvSubtype replaces "cubefs" in the fstype (fuse.<subtype>) and in the
	// default source (<subtype>-<vol>), e.g. "chubaofs" as 2.5 showed.
	EnvSubtype = "CFS_STANDIN_SUBTYPE"
)

// KeyDataRoot is a stand-in-only config key; it overrides EnvDataRoot.
const KeyDataRoot = "standinDataRoot"

// DefaultDataRoot is used when neither the key nor the variable is set.
const DefaultDataRoot = "/var/tmp/cfs-standin-data"

// defaultLogDir is the real client's log directory when logDir is unset.
const defaultLogDir = "/var/log/cubefs"

// Config is the subset of the client's mount options the stand-in uses.
// Other keys (consulAddr, exporterPort, enableXattr, ...) are accepted and
// ignored, as the real client ignores keys it does not know.
type Config struct {
	MountPoint     string
	VolName        string
	Owner          string
	MasterAddr     string
	LogDir         string
	LogLevel       string
	SubDir         string
	FileSystemName string
	ProfPort       string
	ExporterPort   string
	ConsulAddr     string
	Rdonly         bool
	DataRoot       string
}

// LoadConfig reads a client config file. Like the real parser it accepts
// strings, numbers and booleans for every key (cubefs-csi writes strings).
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(raw)
}

// ParseConfig parses the JSON text of a client config.
func ParseConfig(raw []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid config file: %v", err)
	}
	get := func(key string) string { return valueString(m[key]) }
	c := &Config{
		MountPoint: get("mountPoint"), VolName: get("volName"), Owner: get("owner"),
		MasterAddr: get("masterAddr"), LogDir: get("logDir"), LogLevel: get("logLevel"),
		SubDir: get("subdir"), FileSystemName: get("fileSystemName"),
		ProfPort: get("profPort"), ExporterPort: get("exporterPort"),
		ConsulAddr: get("consulAddr"), DataRoot: get(KeyDataRoot),
	}
	c.Rdonly, _ = strconv.ParseBool(get("rdonly"))
	if c.MountPoint == "" || c.VolName == "" || c.Owner == "" || c.MasterAddr == "" {
		return nil, fmt.Errorf("invalid config file: lack of mandatory fields, "+
			"mountPoint(%v), volName(%v), owner(%v), masterAddr(%v)",
			c.MountPoint, c.VolName, c.Owner, c.MasterAddr)
	}
	return c, nil
}

// valueString renders a JSON value as the real config getter would.
func valueString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}

// Masters splits masterAddr ("h1:p1,h2:p2") into addresses.
func (c *Config) Masters() []string {
	var out []string
	for _, a := range strings.Split(c.MasterAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// ResolvedDataRoot is the config key, else EnvDataRoot, else the default.
func (c *Config) ResolvedDataRoot() string {
	if c.DataRoot != "" {
		return c.DataRoot
	}
	if v := os.Getenv(EnvDataRoot); v != "" {
		return v
	}
	return DefaultDataRoot
}

// ResolvedLogDir is logDir, or the real client's default.
func (c *Config) ResolvedLogDir() string {
	if c.LogDir != "" {
		return c.LogDir
	}
	return defaultLogDir
}
