package rbd

import (
	"time"

	utilexec "k8s.io/utils/exec"

	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
)

// nbdReattachTimeout is how long the kernel keeps an nbd device waiting
// for a restarted rbd-nbd to reattach before failing its I/O.
const nbdReattachTimeout = "300"

// newNBDMapper maps with rbd-nbd (`rbd device map -t nbd`): librbd in a
// user-space daemon behind /dev/nbdX, over the netlink interface. The
// cookie (a hash of the volume ID) names the attachment so a restarted
// daemon can reattach to the same device. io-timeout=0 lets I/O wait out
// an OSD failover instead of failing the filesystem.
func newNBDMapper(ex utilexec.Interface, stateDir string) *cliMapper {
	return &cliMapper{
		name:       MounterNBD,
		deviceType: "nbd",
		exec:       ex,
		stateDir:   stateDir,
		mapOptions: func(req *MapRequest) ([]string, []string) {
			opts := []string{"try-netlink", "reattach-timeout=" + nbdReattachTimeout, "io-timeout=0"}
			return append(opts, req.Options...), []string{"--cookie", noderecord.Key(req.VolumeID)}
		},
		pollInterval: 200 * time.Millisecond,
	}
}
