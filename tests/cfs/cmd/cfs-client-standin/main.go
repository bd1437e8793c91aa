// Command cfs-client-standin is a TEST-ONLY stand-in for ChubaoFS/CubeFS's
// cfs-client: same invocation (-c CONFIG, -f), same config keys, same
// "Mount failed: ..." failures and exit codes, but the volume's files come
// from a shared local directory (see package tests/cfs/standin).
package main

import (
	"os"

	"github.com/tkestack/tkestor-csi/tests/cfs/standin"
)

func main() {
	os.Exit(standin.Main(os.Args[1:], os.Stdout, os.Stderr))
}
