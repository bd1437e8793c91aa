package rbd

import (
	"time"

	utilexec "k8s.io/utils/exec"
)

// newKRBDMapper maps with the kernel RBD client (`rbd device map -t krbd`).
// noudev: the rbd CLI otherwise waits for a udev event, and hangs on nodes
// (and plugin containers) without udevd while the kernel maps anyway.
func newKRBDMapper(ex utilexec.Interface, stateDir string) *cliMapper {
	return &cliMapper{
		name:       MounterKRBD,
		deviceType: "krbd",
		exec:       ex,
		stateDir:   stateDir,
		mapOptions: func(req *MapRequest) ([]string, []string) {
			return append([]string{"noudev"}, req.Options...), nil
		},
		unmapOptions: []string{"noudev"},
		pollInterval: 200 * time.Millisecond,
	}
}
