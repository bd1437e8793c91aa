package rbd

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseClusterConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		want    int    // clusters, when valid
		wantErr string // substring of the error
	}{
		{name: "test cluster", json: `[{"clusterID":"tkestor-test","monitors":["127.0.0.1:6789"]}]`, want: 1},
		{name: "two", json: `[{"clusterID":"a","monitors":["m1:6789","m2"]},{"clusterID":"b","monitors":["[v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0]"]}]`, want: 2},
		{name: "ceph-csi extras", json: `[{"clusterID":"rook-ceph","monitors":["10.0.0.1:6789"],"namespace":"rook-ceph",
			"cephFS":{"subvolumeGroup":""},"rbd":{"radosNamespace":"","mirrorDaemonCount":1},"readAffinity":{"enabled":false}}]`, want: 1},
		{name: "empty list", json: `[]`, want: 0},
		{name: "unknown field", json: `[{"clusterID":"a","monitors":["m"],"monitor":"x"}]`, wantErr: "monitor"},
		{name: "not a list", json: `{"clusterID":"a"}`, wantErr: "cluster config"},
		{name: "trailing", json: `[] []`, wantErr: "trailing"},
		{name: "duplicate", json: `[{"clusterID":"a","monitors":["m"]},{"clusterID":"a","monitors":["n"]}]`, wantErr: "twice"},
		{name: "no monitors", json: `[{"clusterID":"a","monitors":[]}]`, wantErr: "monitors is empty"},
		{name: "missing monitors", json: `[{"clusterID":"a"}]`, wantErr: "monitors is empty"},
		{name: "empty monitor", json: `[{"clusterID":"a","monitors":[""]}]`, wantErr: "monitor"},
		{name: "no cluster", json: `[{"monitors":["m"]}]`, wantErr: "clusterID is empty"},
		{name: "long cluster", json: fmt.Sprintf(`[{"clusterID":%q,"monitors":["m"]}]`, strings.Repeat("c", 37)), wantErr: "longer"},
		{name: "slash cluster", json: `[{"clusterID":"a/b","monitors":["m"]}]`, wantErr: "may only contain"},
		{name: "namespace", json: `[{"clusterID":"a","monitors":["m"],"rbd":{"radosNamespace":"t"}}]`, wantErr: "radosNamespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseClusterConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %v, %v; want %d clusters", got, err, tc.want)
			}
		})
	}
}

func TestClusterConfigReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.json")
	write := func(s string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	cfg := newClusterConfig(path)
	if _, err := cfg.lookup("a"); err == nil {
		t.Fatal("missing file gave no error")
	}
	base := time.Now().Add(-time.Hour)
	write(`[{"clusterID":"a","monitors":["m1"]}]`, base)
	info, err := cfg.lookup("a")
	if err != nil || info.Monitors[0] != "m1" {
		t.Fatalf("lookup: %v %v", info, err)
	}
	if _, err := cfg.lookup("b"); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("unknown cluster: %v", err)
	}
	write(`[{"clusterID":"a","monitors":["m2"]},{"clusterID":"b","monitors":["m3"]}]`, base.Add(time.Minute))
	info, err = cfg.lookup("a")
	if err != nil || info.Monitors[0] != "m2" {
		t.Fatalf("after update: %v %v", info, err)
	}
	all, err := cfg.all()
	if err != nil || len(all) != 2 || all[0].ClusterID != "a" {
		t.Fatalf("all: %v %v", all, err)
	}
	write(`[{"clusterID":"a"`, base.Add(2*time.Minute))
	if _, err := cfg.lookup("a"); err == nil {
		t.Fatal("a broken update was not reported")
	}
	if _, err := newClusterConfig("").load(); err == nil {
		t.Fatal("no path gave no error")
	}
}

// cephxKey builds a well-formed cephx secret.
func cephxKey(secret string) string {
	raw := append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(secret)), 0}, secret...)
	return base64.StdEncoding.EncodeToString(raw)
}

func TestCredentialsFromSecrets(t *testing.T) {
	t.Parallel()
	key := cephxKey("sixteen-byte-key")
	other := cephxKey("another-16b-key!")
	badKey := base64.StdEncoding.EncodeToString([]byte("not a cephx key at all"))
	tests := []struct {
		name    string
		secrets map[string]string
		want    Credentials
		wantErr string
	}{
		{"user", map[string]string{"userID": "csi", "userKey": key}, Credentials{"csi", key}, ""},
		{"client prefix", map[string]string{"userID": "client.csi", "userKey": key + "\n"}, Credentials{"csi", key}, ""},
		{"admin", map[string]string{"adminID": "admin", "adminKey": other}, Credentials{"admin", other}, ""},
		{"user wins", map[string]string{"userID": "csi", "userKey": key, "adminID": "admin", "adminKey": other},
			Credentials{"csi", key}, ""},
		{"no key", map[string]string{"userID": "csi"}, Credentials{}, `"userKey"`},
		{"no id", map[string]string{"userKey": key}, Credentials{}, `"userID"`},
		{"admin no key", map[string]string{"adminID": "admin"}, Credentials{}, `"adminKey"`},
		{"empty", nil, Credentials{}, `"userID"`},
		{"not base64", map[string]string{"userID": "csi", "userKey": "%%%" + key}, Credentials{}, `"userKey"`},
		{"not cephx", map[string]string{"userID": "csi", "userKey": badKey}, Credentials{}, `"userKey"`},
		{"bad id", map[string]string{"userID": "c si", "userKey": key}, Credentials{}, `"userID"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CredentialsFromSecrets(tc.secrets)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrMissingCredentials) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				for _, k := range []string{key, other, badKey} {
					if strings.Contains(err.Error(), k) {
						t.Fatalf("error %q shows a key", err)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	creds := Credentials{ID: "csi", Key: key}
	for _, s := range []string{creds.String(), fmt.Sprintf("%v %+v %#v %s", creds, creds, creds, creds)} {
		if strings.Contains(s, key) {
			t.Fatalf("formatted credentials show the key: %s", s)
		}
	}
}

func TestCredentialsFromDir(t *testing.T) {
	t.Parallel()
	key := cephxKey("sixteen-byte-key")
	dir := t.TempDir()
	if _, err := credentialsFromDir(dir); !errors.Is(err, ErrMissingCredentials) {
		t.Fatalf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "userID"), []byte("csi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "userKey"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := credentialsFromDir(dir)
	if err != nil || got != (Credentials{ID: "csi", Key: key}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := credentialsFromDir(""); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("no dir: %v", err)
	}
}
