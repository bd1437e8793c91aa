package server

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, network, address string
		wantErr              bool
	}{
		{"unix:///csi/csi.sock", "unix", "/csi/csi.sock", false},
		{"tcp://127.0.0.1:10000", "tcp", "127.0.0.1:10000", false},
		{"/csi/csi.sock", "", "", true},
		{"http://x", "", "", true},
		{"unix://", "", "", true},
	}
	for _, tc := range tests {
		n, a, err := ParseEndpoint(tc.in)
		if (err != nil) != tc.wantErr || n != tc.network || a != tc.address {
			t.Errorf("ParseEndpoint(%q) = %q, %q, %v", tc.in, n, a, err)
		}
	}
}

func TestListenStaleAndLiveSockets(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	// A stale socket file (nobody listening) is replaced.
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	defer first.Close()
	go func() {
		for {
			c, err := first.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// A live socket is refused, and left in place.
	if _, err := Listen("unix://" + sock); !errors.Is(err, ErrEndpointInUse) {
		t.Fatalf("second Listen = %v, want ErrEndpointInUse", err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Fatalf("first server no longer reachable: %v", err)
	} else {
		_ = c.Close()
	}
}
