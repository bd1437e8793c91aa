// Package proc finds the helper processes a node plugin started (rbd-fuse,
// cfs-client) by their command lines, which is what survives a restart of
// the plugin: their PIDs are not the plugin's children any more.
package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Find returns the PIDs of live processes whose argument list satisfies
// match. Zombies (empty command line) and processes that exit while being
// read are skipped.
func Find(match func(args []string) bool) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		if match(strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
