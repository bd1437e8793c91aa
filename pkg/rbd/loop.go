package rbd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tkestack/tkestor-csi/pkg/common/proc"
)

// loopDevicesFor returns the loop devices whose backing file is file, read
// from /sys/block/loop*/loop/backing_file.
func loopDevicesFor(file string) ([]string, error) {
	return loopDevicesMatching(func(backing string) bool { return backing == file })
}

// loopDevicesUnder returns the loop devices backed by a file in dir.
func loopDevicesUnder(dir string) ([]string, error) {
	return loopDevicesMatching(func(backing string) bool { return filepath.Dir(backing) == dir })
}

func loopDevicesMatching(match func(backing string) bool) ([]string, error) {
	dirs, err := filepath.Glob("/sys/block/loop*")
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "loop", "backing_file"))
		if errors.Is(err, os.ErrNotExist) {
			continue // not attached
		}
		if err != nil {
			return nil, fmt.Errorf("read loop backing file: %w", err)
		}
		if match(strings.TrimSpace(string(b))) {
			devs = append(devs, "/dev/"+filepath.Base(d))
		}
	}
	return devs, nil
}

// loopBackingFile returns the file behind a loop device.
func loopBackingFile(device string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(device), "loop", "backing_file"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// loopReadOnly reports whether a loop device is attached read-only.
func loopReadOnly(device string) bool {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(device), "ro"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// fuseProcesses returns the PIDs of rbd-fuse processes whose command line
// names a path under dir (our per-volume working directories).
func fuseProcesses(dir string) []int {
	return proc.Find(func(args []string) bool {
		if filepath.Base(args[0]) != "rbd-fuse" {
			return false
		}
		for _, a := range args[1:] {
			if a == dir || strings.HasPrefix(a, dir+string(filepath.Separator)) {
				return true
			}
		}
		return false
	})
}
