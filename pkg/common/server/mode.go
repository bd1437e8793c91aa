package server

import "fmt"

// Mode says which CSI services one process serves.
type Mode string

const (
	// ModeController serves Identity and Controller (the Deployment).
	ModeController Mode = "controller"
	// ModeNode serves Identity and Node (the DaemonSet).
	ModeNode Mode = "node"
	// ModeAll serves everything in one process (tests, csi-sanity, demo).
	ModeAll Mode = "all"
)

// ParseMode validates a --mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeController, ModeNode, ModeAll:
		return m, nil
	}
	return "", fmt.Errorf("--mode must be controller, node or all, got %q", s)
}

// Controller reports whether the mode serves the Controller service.
func (m Mode) Controller() bool { return m == ModeController || m == ModeAll }

// Node reports whether the mode serves the Node service.
func (m Mode) Node() bool { return m == ModeNode || m == ModeAll }
