package rbd

import (
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/access"
	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// capabilityInfo is a validated volume capability.
type capabilityInfo struct {
	rule       access.Rule
	block      bool
	fsType     string
	mountFlags []string
	mode       csi.VolumeCapability_AccessMode_Mode
}

// checkCapability validates a capability against the access rules and the
// mount flags against injection.
func checkCapability(c *csi.VolumeCapability) (*capabilityInfo, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: volume_capability", ErrMissingField)
	}
	rule, kind, err := access.Capability(true, c)
	if err != nil {
		return nil, err
	}
	info := &capabilityInfo{rule: rule, block: kind == access.RBDBlock, mode: c.GetAccessMode().GetMode()}
	if mnt := c.GetMount(); mnt != nil {
		info.fsType = mnt.GetFsType()
		info.mountFlags = mnt.GetMountFlags()
		if err := mount.ValidateMountFlags(info.mountFlags); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCapability, err)
		}
		if info.fsType != "" && info.fsType != mount.FsExt4 && info.fsType != mount.FsXFS {
			return nil, fmt.Errorf("%w: %w: %q", ErrBadCapability, mount.ErrUnsupportedFsType, info.fsType)
		}
	}
	return info, nil
}

// required returns ErrMissingField naming the first empty field; pairs
// are name, value. The paths the plugin mounts on (staging_target_path,
// target_path) must also be absolute and clean; a volume_path is only
// looked up, so a bad one is simply not found.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return fmt.Errorf("%w: %s", ErrMissingField, pairs[i])
		}
		if strings.HasSuffix(pairs[i], "target_path") {
			if err := mount.CheckPath(pairs[i], pairs[i+1]); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidParam, err)
			}
		}
	}
	return nil
}
