// Package rwo holds the ReadWriteOnce scenarios of both drivers: two node
// plugin processes of the real binary (bin/tkestor-csi) against one backend.
// `make e2e-rwo` runs them with -args -races=N.
package rwo

import "flag"

// races is how many times a race scenario repeats (make e2e-rwo RACES=N).
// Shared by the rbd and cfs scenarios; define no other flag of this name.
var races = flag.Int("races", 200, "repetitions of each two-node race") //nolint:gochecknoglobals // test flag
