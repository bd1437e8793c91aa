// Package csiclient is a thin CSI client for the project's tools (demo,
// end-to-end tests, benchmark): one connection, the three services, and
// request builders for the calls Kubernetes makes.
package csiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Client talks to one CSI endpoint.
type Client struct {
	conn       *grpc.ClientConn
	Identity   csi.IdentityClient
	Controller csi.ControllerClient
	Node       csi.NodeClient
}

// Dial connects to unix:///path or tcp://host:port.
func Dial(endpoint string) (*Client, error) {
	target := endpoint
	if rest, ok := strings.CutPrefix(endpoint, "tcp://"); ok {
		target = rest
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	return &Client{
		conn:       conn,
		Identity:   csi.NewIdentityClient(conn),
		Controller: csi.NewControllerClient(conn),
		Node:       csi.NewNodeClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Ready waits until Probe answers ready or ctx ends.
func (c *Client) Ready(ctx context.Context) error {
	resp, err := c.Identity.Probe(ctx, &csi.ProbeRequest{})
	if err != nil {
		return err
	}
	if !resp.GetReady().GetValue() {
		return fmt.Errorf("plugin not ready")
	}
	return nil
}

// ReadSecrets reads a flat JSON object of secrets from a 0600 file.
func ReadSecrets(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	secrets := map[string]string{}
	if err := json.Unmarshal(data, &secrets); err != nil {
		return nil, fmt.Errorf("secrets file %s: not a JSON object of strings", path)
	}
	return secrets, nil
}

// ParseParams turns "k=v,k2=v2" into a map.
func ParseParams(s string) (map[string]string, error) {
	params := map[string]string{}
	if s == "" {
		return params, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q is not key=value", kv)
		}
		params[k] = v
	}
	return params, nil
}

// MountCap is a filesystem capability with the given mode.
func MountCap(mode csi.VolumeCapability_AccessMode_Mode, fsType string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

// BlockCap is a raw block capability with the given mode.
func BlockCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}
