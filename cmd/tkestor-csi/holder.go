package main

import (
	"fmt"
	"os"
)

// runHolder is the operator subcommand for single-node volume holders.
// TODO: show and release (with fencing) are not written yet; until then an
// operator cannot inspect or break a stale hold from this binary.
func runHolder(args []string) int {
	fmt.Fprintln(os.Stderr, "tkestor-csi holder: not available in this build yet")
	return 2
}
