package cfs

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
)

// StorageClass parameter keys: the guide's (masterAddr, owner, consulAddr,
// logLevel) plus the named options users need. Nothing else is accepted,
// and nothing is copied blindly into the FUSE client's config.
const (
	paramMasterAddr = "masterAddr"
	paramOwner      = "owner"
	paramConsulAddr = "consulAddr"
	paramLogLevel   = "logLevel"
	paramVolType    = "volType"
	paramZoneName   = "zoneName"
	paramCrossZone  = "crossZone"
	paramSubdir     = "subdir"
	paramReadOnly   = "readOnly"
)

// Secret keys. The owner may come from a secret instead of the
// StorageClass; masterAddr in a secret resolves volume IDs that name their
// masters by hash only.
const (
	secretOwner      = "owner"
	secretMasterAddr = "masterAddr"
)

// reservedPrefix is the prefix of keys Kubernetes sidecars own.
const reservedPrefix = "csi.storage.k8s.io/"

// reservedRE matches the sidecars' secret references and the provisioner's
// --extra-create-metadata keys.
var reservedRE = regexp.MustCompile(`^csi\.storage\.k8s\.io/(` + //nolint:gochecknoglobals // constant
	`(provisioner|controller-publish|node-stage|node-publish|controller-expand|node-expand)` +
	`-secret-(name|namespace)|pvc/name|pvc/namespace|pv/name)$`)

const maxMasters = 16

// Accepted values.
var (
	logLevels  = map[string]bool{"debug": true, "info": true, "warn": true, "error": true} //nolint:gochecknoglobals // constant set
	zoneNameRE = regexp.MustCompile(`^[A-Za-z0-9_.,-]{1,128}$`)                            //nolint:gochecknoglobals // constant
)

// VolumeParameters are the StorageClass parameters, validated.
type VolumeParameters struct {
	// Masters is the master list as written (order kept, duplicates gone).
	Masters []string
	// Owner is set when the parameters name one; a secret may instead.
	Owner      master.Owner
	ConsulAddr string
	LogLevel   string
	// VolType is nil unless set (0 replica, 1 erasure coded).
	VolType   *int
	ZoneName  string
	CrossZone *bool
	// Subdir is a directory inside the volume to mount instead of its
	// root, cleaned and without a leading slash; empty for the root.
	Subdir   string
	ReadOnly bool
}

// ParseVolumeParameters validates StorageClass parameters against the
// allow-list. An unknown key is an error that names it; masterAddr is
// required. Owner values never appear in errors.
func ParseVolumeParameters(params map[string]string) (*VolumeParameters, error) {
	p := &VolumeParameters{}
	for _, key := range sortedKeys(params) {
		if err := p.set(key, params[key]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
	}
	if len(p.Masters) == 0 {
		return nil, fmt.Errorf("%w: parameter %q is required", ErrInvalidArgument, paramMasterAddr)
	}
	return p, nil
}

// set validates one parameter.
func (p *VolumeParameters) set(key, value string) error {
	var err error
	switch key {
	case paramMasterAddr:
		p.Masters, err = parseMasters(value)
	case paramOwner:
		if p.Owner, err = master.NewOwner(value); err != nil {
			err = fmt.Errorf("parameter %q: %w", key, err)
		}
	case paramConsulAddr:
		p.ConsulAddr, err = parseConsulAddr(value)
	case paramLogLevel:
		p.LogLevel, err = parseLogLevel(value)
	case paramVolType:
		p.VolType, err = parseVolType(value)
	case paramZoneName:
		if !zoneNameRE.MatchString(value) {
			err = fmt.Errorf("parameter %q must be zone names of letters, digits, '_', '.', '-' or ','", key)
		}
		p.ZoneName = value
	case paramCrossZone:
		var b bool
		b, err = parseBool(key, value)
		p.CrossZone = &b
	case paramSubdir:
		p.Subdir, err = parseSubdir(value)
	case paramReadOnly:
		p.ReadOnly, err = parseBool(key, value)
	default:
		if !reservedRE.MatchString(key) {
			err = fmt.Errorf("unknown parameter %q", key)
		}
	}
	return err
}

// parseMasters splits a comma-separated host:port list.
func parseMasters(value string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range strings.Split(value, ",") {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			return nil, fmt.Errorf("parameter %q has an empty entry", paramMasterAddr)
		}
		if err := master.CheckAddress(a); err != nil {
			return nil, fmt.Errorf("parameter %q: %w", paramMasterAddr, err)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) > maxMasters {
		return nil, fmt.Errorf("parameter %q lists more than %d masters", paramMasterAddr, maxMasters)
	}
	return out, nil
}

// parseConsulAddr accepts host:port or an http(s) URL.
func parseConsulAddr(value string) (string, error) {
	bad := fmt.Errorf("parameter %q must be host:port or an http(s) URL", paramConsulAddr)
	if len(value) > 256 || strings.ContainsAny(value, " \t\r\n\",") {
		return "", bad
	}
	if master.CheckAddress(value) == nil {
		return value, nil
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", bad
	}
	return value, nil
}

func parseLogLevel(value string) (string, error) {
	v := strings.ToLower(value)
	if !logLevels[v] {
		return "", fmt.Errorf("parameter %q must be debug, info, warn or error", paramLogLevel)
	}
	return v, nil
}

func parseVolType(value string) (*int, error) {
	switch value {
	case "0", "1":
		n, _ := strconv.Atoi(value)
		return &n, nil
	}
	return nil, fmt.Errorf("parameter %q must be 0 (replica) or 1 (erasure coded)", paramVolType)
}

func parseBool(key, value string) (bool, error) {
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("parameter %q must be true or false", key)
	}
	return b, nil
}

// parseSubdir cleans a directory inside the volume; ".." may not climb.
func parseSubdir(value string) (string, error) {
	bad := fmt.Errorf("parameter %q must be a directory inside the volume", paramSubdir)
	if len(value) > 1024 || strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", bad
	}
	for _, part := range strings.Split(value, "/") {
		if part == ".." {
			return "", bad
		}
	}
	return strings.TrimPrefix(path.Clean("/"+value), "/"), nil
}

// isReserved reports whether key belongs to the Kubernetes sidecars.
func isReserved(key string) bool { return strings.HasPrefix(key, reservedPrefix) }

// parseOnly validates parameters for ValidateVolumeCapabilities.
func parseOnly(params map[string]string) error {
	_, err := ParseVolumeParameters(params)
	return err
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
