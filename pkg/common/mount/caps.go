package mount

import (
	"os"
	"strconv"
	"strings"
)

// capSysResource is the bit of CAP_SYS_RESOURCE in the capability sets.
const capSysResource = 24

// HasCapSysResource reports whether this process may use ext4's online
// resize ioctl, which the kernel guards with CAP_SYS_RESOURCE (xfs_growfs
// needs CAP_SYS_ADMIN only). Containers that drop it can grow xfs online
// but not ext4.
func HasCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		return err == nil && v&(1<<capSysResource) != 0
	}
	return false
}
