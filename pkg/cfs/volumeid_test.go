package cfs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestVolumeIDRoundTrip(t *testing.T) {
	t.Parallel()
	long := []string{
		"master-0.master-service.chubaofs.svc.cluster.local:17010",
		"master-1.master-service.chubaofs.svc.cluster.local:17010",
	}
	tests := []struct {
		name    string
		masters []string
		inline  bool
	}{
		{"seed", []string{"172.21.64.14:32102"}, true},
		{"three masters", []string{"10.0.0.3:17010", "10.0.0.1:17010", "10.0.0.2:17010"}, true},
		{"ipv6", []string{"[fd00::1]:17010"}, true},
		{"too long for inline", long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := newVolumeID(backendName("pvc-0f6a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"), tt.masters)
			s := id.String()
			if len(s) > maxIDLen {
				t.Fatalf("ID %q is %d bytes", s, len(s))
			}
			if got := strings.Contains(s, "@"); got != tt.inline {
				t.Fatalf("ID %q inline = %v, want %v", s, got, tt.inline)
			}
			back, err := parseVolumeID(s)
			if err != nil {
				t.Fatalf("parse %q: %v", s, err)
			}
			if back.Name != id.Name || back.Cluster != id.Cluster || back.lockKey() != id.lockKey() {
				t.Fatalf("parse %q = %+v, want %+v", s, back, id)
			}
		})
	}
}

func TestVolumeIDStrict(t *testing.T) {
	t.Parallel()
	good := newVolumeID("tkestor-pvc-1", []string{"m1:1", "m2:2"}).String()
	bad := []string{
		"", "fake-vol-id", "cfs1-", "cfs2-tkestor-pvc-1@m1:1",
		"cfs1-tkestor-pvc-1@m2:2,m1:1",        // unsorted
		"cfs1-tkestor-pvc-1@m1:1,m1:1",        // duplicate
		"cfs1-tkestor-pvc-1@M1:1",             // not lower case
		"cfs1-tkestor-pvc-1@m1",               // no port
		"cfs1--bad@m1:1",                      // bad volume name
		"cfs1-tkestor-pvc-1#0123",             // short hash
		"cfs1-tkestor-pvc-1#0123456789ABCDEF", // upper-case hash
		good + " ",
		"cfs1-" + strings.Repeat("a", 130) + "@m:1",
	}
	for _, s := range bad {
		if _, err := parseVolumeID(s); !errors.Is(err, errBadID) {
			t.Errorf("parseVolumeID(%q) = %v, want errBadID", s, err)
		}
	}
	if _, err := parseVolumeID(good); err != nil {
		t.Errorf("parseVolumeID(%q) = %v", good, err)
	}
}

func TestBackendName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		request string
		want    string // exact, or prefix when ending in '*'
	}{
		{"pvc-0f6a1b2c-3d4e-5f60-7182-93a4b5c6d7e8", "tkestor-pvc-0f6a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"},
		{"sanity-node-full", "tkestor-sanity-node-full"},
		{"Upper_Case", "tkestor-upper-case.*"},
		{"a.b", "tkestor-a-b.*"},
		{strings.Repeat("x", 56), "tkestor-" + strings.Repeat("x", 44) + ".*"},
		{"---", "tkestor-vol.*"},
		{"名字", "tkestor-vol.*"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := backendName(tt.request)
		if !volNameRE.MatchString(got) || !isOurVolume(got) || len(got) > maxVolName {
			t.Errorf("backendName(%q) = %q is not a valid volume name", tt.request, got)
		}
		if p, ok := strings.CutSuffix(tt.want, "*"); ok {
			if !strings.HasPrefix(got, p) || len(got) != len(p)+nameHashLen {
				t.Errorf("backendName(%q) = %q, want %s<hash>", tt.request, got, p)
			}
		} else if got != tt.want {
			t.Errorf("backendName(%q) = %q, want %q", tt.request, got, tt.want)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q both map to %q", prev, tt.request, got)
		}
		seen[got] = tt.request
		if backendName(tt.request) != got {
			t.Errorf("backendName(%q) is not deterministic", tt.request)
		}
	}
	// Names that clean to the same text still differ by their hash.
	if backendName("A_b") == backendName("a.b") {
		t.Error("cleaning collision not separated by the hash")
	}
	for i := 0; i < 1000; i++ {
		n := backendName(fmt.Sprintf("Claim_%d", i))
		if _, dup := seen[n]; dup {
			t.Fatalf("collision on %s", n)
		}
		seen[n] = ""
	}
}
