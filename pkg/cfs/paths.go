package cfs

import (
	"fmt"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// checkPaths rejects staging and target paths that are not absolute and
// clean (a ".." path would mount a volume over a host directory); pairs
// are field name, value.
func checkPaths(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := mount.CheckPath(pairs[i], pairs[i+1]); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
	}
	return nil
}
