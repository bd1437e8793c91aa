package rbd

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	librbd "github.com/ceph/go-ceph/rbd"
)

// StorageClass parameter keys (the names ceph-csi users already write).
const (
	paramClusterID      = "clusterID"
	paramPool           = "pool"
	paramDataPool       = "dataPool"
	paramImageFeatures  = "imageFeatures"
	paramImageFormat    = "imageFormat"
	paramFsType         = "csi.storage.k8s.io/fstype"
	paramMounter        = "mounter"
	paramMkfsOptions    = "mkfsOptions"
	paramMapOptions     = "mapOptions"
	paramUnmapOptions   = "unmapOptions"
	paramRadosNamespace = "radosNamespace"
	paramEncrypted      = "encrypted"
	paramThickProvision = "thickProvision"

	// csiPrefix starts keys the sidecars add: secret references and the
	// --extra-create-metadata keys.
	csiPrefix = "csi.storage.k8s.io/"
)

// extraMetadataKeys are added by external-provisioner (--extra-create-metadata)
// and external-snapshotter; accepted and ignored.
var extraMetadataKeys = map[string]bool{ //nolint:gochecknoglobals // constant set
	csiPrefix + "pvc/name":                   true,
	csiPrefix + "pvc/namespace":              true,
	csiPrefix + "pv/name":                    true,
	csiPrefix + "volumesnapshot/name":        true,
	csiPrefix + "volumesnapshot/namespace":   true,
	csiPrefix + "volumesnapshotcontent/name": true,
}

// Volume context keys: CreateVolume returns them, NodeStage reads them
// with ParseVolumeContext.
const (
	// VolCtxClusterID names the cluster in the cluster config.
	VolCtxClusterID = "clusterID"
	// VolCtxPool is the pool name at creation (the volume ID holds the ID).
	VolCtxPool = "pool"
	// VolCtxImageName is the RBD image name.
	VolCtxImageName = "imageName"
	// VolCtxFsType is the StorageClass filesystem; the capability's
	// fs_type, when set, wins.
	VolCtxFsType = "fsType"
	// VolCtxMounter is krbd, rbd-nbd or fuse.
	VolCtxMounter = "mounter"
	// VolCtxMkfsOptions are extra mkfs arguments, space separated.
	VolCtxMkfsOptions = "mkfsOptions"
	// VolCtxMapOptions are mapper options (krbd -o / rbd-nbd options).
	VolCtxMapOptions = "mapOptions"
	// VolCtxUnmapOptions are unmap options.
	VolCtxUnmapOptions = "unmapOptions"
)

// Mounters (the "mounter" parameter).
const (
	// MounterKRBD maps with the kernel rbd module (rbd map).
	MounterKRBD = "krbd"
	// MounterNBD maps with rbd-nbd.
	MounterNBD = "rbd-nbd"
	// MounterFuse exposes the image with rbd-fuse and attaches a loop device.
	MounterFuse = "fuse"
)

// Filesystems.
const (
	// FsExt4 is the default filesystem.
	FsExt4 = "ext4"
	// FsXFS is xfs.
	FsXFS = "xfs"
)

// DefaultImageFeatures is used when imageFeatures is not given.
const DefaultImageFeatures = "layering"

// maxOptionLen bounds free-form option strings handed to node commands.
const maxOptionLen = 512

// imageFeatures are the features a StorageClass may ask for, with the
// features each one needs.
var imageFeatures = map[string]struct { //nolint:gochecknoglobals // constant table
	bit   uint64
	needs []string
}{
	"layering":       {librbd.FeatureLayering, nil},
	"exclusive-lock": {librbd.FeatureExclusiveLock, nil},
	"object-map":     {librbd.FeatureObjectMap, []string{"exclusive-lock"}},
	"fast-diff":      {librbd.FeatureFastDiff, []string{"object-map"}},
	"deep-flatten":   {librbd.FeatureDeepFlatten, nil},
	"journaling":     {librbd.FeatureJournaling, []string{"exclusive-lock"}},
}

// VolumeParameters are the parsed StorageClass parameters.
type VolumeParameters struct {
	ClusterID string
	Pool      string
	DataPool  string
	// Features is the librbd feature bit set; FeatureNames the sorted names.
	Features     uint64
	FeatureNames []string
	FsType       string
	Mounter      string
	MkfsOptions  string
	MapOptions   string
	UnmapOptions string
}

// ParseVolumeParameters validates StorageClass parameters. Unknown keys
// are errors naming the key (InvalidArgument).
func ParseVolumeParameters(params map[string]string) (*VolumeParameters, error) {
	p := &VolumeParameters{FsType: FsExt4, Mounter: MounterKRBD}
	features := DefaultImageFeatures
	for _, key := range sortedKeys(params) {
		value := params[key]
		var err error
		switch key {
		case paramClusterID:
			p.ClusterID = value
		case paramPool:
			p.Pool = value
		case paramDataPool:
			p.DataPool = value
		case paramImageFeatures:
			features = value
		case paramImageFormat:
			err = checkImageFormat(value)
		case paramFsType:
			p.FsType, err = parseFsType(value)
		case paramMounter:
			p.Mounter, err = parseMounter(value)
		case paramMkfsOptions:
			p.MkfsOptions, err = parseOption(key, value)
		case paramMapOptions:
			p.MapOptions, err = parseOption(key, value)
		case paramUnmapOptions:
			p.UnmapOptions, err = parseOption(key, value)
		case paramRadosNamespace:
			if value != "" {
				err = fmt.Errorf("%w: %s is not supported yet", ErrInvalidParam, key)
			}
		case paramEncrypted, paramThickProvision:
			if value != "" && value != "false" {
				err = fmt.Errorf("%w: %s=%q is not supported", ErrInvalidParam, key, value)
			}
		default:
			err = checkSidecarKey(key)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.requireLocation(); err != nil {
		return nil, err
	}
	if err := checkOptions(p.FsType, p.MkfsOptions, p.MapOptions, p.UnmapOptions); err != nil {
		return nil, err
	}
	var err error
	p.Features, p.FeatureNames, err = parseFeatures(features)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *VolumeParameters) requireLocation() error {
	if p.ClusterID == "" {
		return fmt.Errorf("%w: parameter %q is required", ErrInvalidParam, paramClusterID)
	}
	if err := validateClusterID(p.ClusterID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidParam, err)
	}
	if p.Pool == "" {
		return fmt.Errorf("%w: parameter %q is required", ErrInvalidParam, paramPool)
	}
	for _, pool := range []string{p.Pool, p.DataPool} {
		if strings.ContainsAny(pool, " \t\r\n/@") {
			return fmt.Errorf("%w: bad pool name %q", ErrInvalidParam, pool)
		}
	}
	return nil
}

// checkSidecarKey accepts the csi.storage.k8s.io/ keys sidecars use:
// secret references and the extra create metadata.
func checkSidecarKey(key string) error {
	if extraMetadataKeys[key] {
		return nil
	}
	if rest, ok := strings.CutPrefix(key, csiPrefix); ok &&
		(strings.HasSuffix(rest, "-secret-name") || strings.HasSuffix(rest, "-secret-namespace")) {
		return nil
	}
	return fmt.Errorf("%w: unknown parameter %q", ErrInvalidParam, key)
}

// checkImageFormat accepts "2", also quoted as "\"2\"" or `\"2\"`: the
// practice guide's StorageClass writes `imageFormat: \"2\"`, which YAML
// delivers with the backslashes and quotes.
func checkImageFormat(value string) error {
	v := strings.TrimSpace(value)
	v = strings.TrimPrefix(strings.TrimSuffix(v, `\"`), `\"`)
	v = strings.Trim(v, `"'`)
	if v != "2" {
		return fmt.Errorf("%w: %s must be 2, got %q", ErrInvalidParam, paramImageFormat, value)
	}
	return nil
}

func parseFsType(value string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(value)); v {
	case "", FsExt4:
		return FsExt4, nil
	case FsXFS:
		return FsXFS, nil
	}
	return "", fmt.Errorf("%w: %s must be ext4 or xfs, got %q", ErrInvalidParam, paramFsType, value)
}

func parseMounter(value string) (string, error) {
	switch v := strings.TrimSpace(value); v {
	case "", MounterKRBD, "rbd":
		return MounterKRBD, nil
	case MounterNBD, "nbd":
		return MounterNBD, nil
	case MounterFuse, "rbd-fuse":
		return MounterFuse, nil
	}
	return "", fmt.Errorf("%w: %s must be %s, %s or %s, got %q",
		ErrInvalidParam, paramMounter, MounterKRBD, MounterNBD, MounterFuse, value)
}

// parseOption checks a free-form option string: printable, bounded, and
// never something a node command could read as a new flag set on its own.
func parseOption(key, value string) (string, error) {
	if len(value) > maxOptionLen {
		return "", fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidParam, key, maxOptionLen)
	}
	for _, r := range value {
		if r < 0x20 || r > 0x7e {
			return "", fmt.Errorf("%w: %s contains a non-printable character", ErrInvalidParam, key)
		}
	}
	return strings.TrimSpace(value), nil
}

// parseFeatures turns "layering,exclusive-lock" into feature bits,
// checking names and dependencies. layering is required: snapshots and
// clones are built on it.
func parseFeatures(value string) (uint64, []string, error) {
	set := make(map[string]bool)
	for _, name := range strings.Split(value, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if _, ok := imageFeatures[name]; !ok {
			return 0, nil, fmt.Errorf("%w: unknown image feature %q in %s", ErrInvalidParam, name, paramImageFeatures)
		}
		set[name] = true
	}
	if !set["layering"] {
		return 0, nil, fmt.Errorf("%w: %s must include layering (snapshots and clones need it)",
			ErrInvalidParam, paramImageFeatures)
	}
	var bits uint64
	names := make([]string, 0, len(set))
	for name := range set {
		for _, need := range imageFeatures[name].needs {
			if !set[need] {
				return 0, nil, fmt.Errorf("%w: image feature %s needs %s", ErrInvalidParam, name, need)
			}
		}
		bits |= imageFeatures[name].bit
		names = append(names, name)
	}
	sort.Strings(names)
	return bits, names, nil
}

// volumeContext is what CreateVolume hands to NodeStage.
func (p *VolumeParameters) volumeContext(image string) map[string]string {
	ctx := map[string]string{
		VolCtxClusterID: p.ClusterID,
		VolCtxPool:      p.Pool,
		VolCtxImageName: image,
		VolCtxFsType:    p.FsType,
		VolCtxMounter:   p.Mounter,
	}
	for key, value := range map[string]string{
		VolCtxMkfsOptions:  p.MkfsOptions,
		VolCtxMapOptions:   p.MapOptions,
		VolCtxUnmapOptions: p.UnmapOptions,
	} {
		if value != "" {
			ctx[key] = value
		}
	}
	return ctx
}

// VolumeContext is the node-relevant part of a volume's context.
type VolumeContext struct {
	ClusterID    string
	Pool         string
	ImageName    string
	FsType       string
	Mounter      string
	MkfsOptions  string
	MapOptions   string
	UnmapOptions string
}

// ParseVolumeContext reads the volume context NodeStage receives. Keys it
// does not know are ignored (the provisioner adds its own, and static PVs
// carry ceph-csi's), but the values of known keys are validated.
func ParseVolumeContext(volCtx map[string]string) (*VolumeContext, error) {
	vc := &VolumeContext{
		ClusterID: volCtx[VolCtxClusterID],
		Pool:      volCtx[VolCtxPool],
		ImageName: volCtx[VolCtxImageName],
	}
	var err error
	if vc.FsType, err = parseFsType(volCtx[VolCtxFsType]); err != nil {
		return nil, err
	}
	if vc.Mounter, err = parseMounter(volCtx[VolCtxMounter]); err != nil {
		return nil, err
	}
	for key, dst := range map[string]*string{
		VolCtxMkfsOptions:  &vc.MkfsOptions,
		VolCtxMapOptions:   &vc.MapOptions,
		VolCtxUnmapOptions: &vc.UnmapOptions,
	} {
		if *dst, err = parseOption(key, volCtx[key]); err != nil {
			return nil, err
		}
	}
	if err := checkOptions(vc.FsType, vc.MkfsOptions, vc.MapOptions, vc.UnmapOptions); err != nil {
		return nil, err
	}
	if vc.ClusterID != "" {
		if err := validateClusterID(vc.ClusterID); err != nil {
			return nil, fmt.Errorf("%w: volume context: %v", ErrInvalidParam, err)
		}
	}
	return vc, nil
}

// parseOnly validates parameters for ValidateVolumeCapabilities.
func parseOnly(params map[string]string) error {
	_, err := ParseVolumeParameters(params)
	return err
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
