package mount

import (
	"errors"
	"fmt"
	"path/filepath"
)

// ErrBadPath reports a staging or target path that is not absolute and
// clean. Kubelet always sends clean absolute paths; anything else ("..",
// a relative path) would let a caller mount a volume over a host
// directory such as /etc, or make Unstage remove one.
var ErrBadPath = errors.New("path must be absolute and clean")

// CheckPath validates a path a CSI caller gave for field.
func CheckPath(field, path string) error {
	if path == "" {
		return nil // the caller's required-field check names it
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || path == "/" {
		return fmt.Errorf("%w: %s %q", ErrBadPath, field, path)
	}
	return nil
}
