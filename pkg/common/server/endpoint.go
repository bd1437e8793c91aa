package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ErrBadEndpoint reports an endpoint that is neither unix:// nor tcp://.
var ErrBadEndpoint = errors.New("endpoint must be unix:///path or tcp://host:port")

// ParseEndpoint splits "unix:///csi/csi.sock" or "tcp://127.0.0.1:10000" into
// the network and address net.Listen takes.
func ParseEndpoint(endpoint string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("%w: got %q", ErrBadEndpoint, endpoint)
	}
	switch strings.ToLower(scheme) {
	case "unix":
		return "unix", rest, nil
	case "tcp":
		return "tcp", rest, nil
	}
	return "", "", fmt.Errorf("%w: got %q", ErrBadEndpoint, endpoint)
}

// ErrEndpointInUse reports a unix socket another live process serves.
var ErrEndpointInUse = errors.New("endpoint in use by another process")

// Listen opens the endpoint. A socket file left by a crashed process is
// removed first, so a plugin can start again on its path; a socket some
// live process still answers on is left alone (taking it over would strand
// that process, and its later exit would unlink our socket).
func Listen(endpoint string) (net.Listener, error) {
	network, address, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if conn, err := net.DialTimeout("unix", address, time.Second); err == nil {
			_ = conn.Close()
			return nil, fmt.Errorf("%w: %s", ErrEndpointInUse, address)
		}
		if err := os.Remove(address); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %q: %w", address, err)
		}
	}
	return net.Listen(network, address)
}
