package cfs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseVolumeParameters(t *testing.T) {
	t.Parallel()
	seed := map[string]string{ // the guide's StorageClass, unchanged
		"masterAddr": "172.21.64.14:32102",
		"owner":      "csiuser",
		"consulAddr": "172.21.64.14:30831",
		"logLevel":   "debug",
	}
	p, err := ParseVolumeParameters(seed)
	if err != nil {
		t.Fatalf("seed StorageClass: %v", err)
	}
	if len(p.Masters) != 1 || p.Masters[0] != "172.21.64.14:32102" || p.Owner.Reveal() != "csiuser" ||
		p.ConsulAddr != "172.21.64.14:30831" || p.LogLevel != "debug" {
		t.Fatalf("seed parsed as %+v", p)
	}

	full := map[string]string{
		"masterAddr": " m1:17010, M2:17010,m1:17010", "volType": "0", "zoneName": "z1,z2",
		"crossZone": "true", "subdir": "/a/./b/", "readOnly": "true", "consulAddr": "http://c:8500",
		"csi.storage.k8s.io/provisioner-secret-name":       "s",
		"csi.storage.k8s.io/node-stage-secret-namespace":   "ns",
		"csi.storage.k8s.io/controller-expand-secret-name": "s",
		"csi.storage.k8s.io/pvc/name":                      "claim",
		"csi.storage.k8s.io/pv/name":                       "pvc-1",
	}
	p, err = ParseVolumeParameters(full)
	if err != nil {
		t.Fatalf("full: %v", err)
	}
	if strings.Join(p.Masters, ",") != "m1:17010,m2:17010" || p.Subdir != "a/b" || !p.ReadOnly ||
		*p.CrossZone != true || *p.VolType != 0 || !p.Owner.IsZero() {
		t.Fatalf("full parsed as %+v", p)
	}

	tests := []struct {
		name   string
		params map[string]string
		inErr  string
	}{
		{"no masterAddr", map[string]string{"owner": "x"}, "masterAddr"},
		{"unknown key", map[string]string{"masterAddr": "m:1", "profPort": "1"}, `"profPort"`},
		{"volName is not ours to take", map[string]string{"masterAddr": "m:1", "volName": "v"}, `"volName"`},
		{"unknown reserved key", map[string]string{"masterAddr": "m:1", "csi.storage.k8s.io/fstype": "ext4"}, "fstype"},
		{"bad master", map[string]string{"masterAddr": "http://m:1"}, "masterAddr"},
		{"empty master entry", map[string]string{"masterAddr": "m:1,"}, "empty"},
		{"bad owner", map[string]string{"masterAddr": "m:1", "owner": "csi-user"}, "owner"},
		{"bad logLevel", map[string]string{"masterAddr": "m:1", "logLevel": "trace"}, "logLevel"},
		{"bad volType", map[string]string{"masterAddr": "m:1", "volType": "2"}, "volType"},
		{"bad crossZone", map[string]string{"masterAddr": "m:1", "crossZone": "maybe"}, "crossZone"},
		{"subdir climbs", map[string]string{"masterAddr": "m:1", "subdir": "a/../../etc"}, "subdir"},
		{"bad consul", map[string]string{"masterAddr": "m:1", "consulAddr": "ftp://c"}, "consulAddr"},
		{"bad zone", map[string]string{"masterAddr": "m:1", "zoneName": "z 1"}, "zoneName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseVolumeParameters(tt.params)
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.inErr) {
				t.Fatalf("err = %v, want InvalidArgument naming %s", err, tt.inErr)
			}
		})
	}
}

func TestBadOwnerNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := ParseVolumeParameters(map[string]string{"masterAddr": "m:1", "owner": "secret-Owner-Value"})
	if err == nil || strings.Contains(err.Error(), "secret-Owner-Value") {
		t.Fatalf("err = %v", err)
	}
}
