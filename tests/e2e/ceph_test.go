package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// cephEnv is the test cluster as tests/lib/with-ceph.sh exports it.
type cephEnv struct {
	conf, clusterID, pool, user, keyFile, clusterConfig string
}

func needCeph(t *testing.T) cephEnv {
	t.Helper()
	env := cephEnv{
		conf:          os.Getenv("CEPH_CONF"),
		clusterID:     os.Getenv("TKESTOR_CLUSTER_ID"),
		pool:          os.Getenv("TKESTOR_POOL"),
		user:          os.Getenv("TKESTOR_CSI_USER"),
		keyFile:       os.Getenv("TKESTOR_CSI_KEY_FILE"),
		clusterConfig: os.Getenv("TKESTOR_CSI_CONFIG"),
	}
	if env.conf == "" || env.pool == "" || env.keyFile == "" {
		t.Skip("no test Ceph cluster: run under tests/lib/with-ceph.sh (make e2e)")
	}
	return env
}

func (e cephEnv) secrets(t *testing.T) map[string]string {
	t.Helper()
	key, err := os.ReadFile(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"userID": e.user, "userKey": strings.TrimSpace(string(key))}
}

func (e cephEnv) params() map[string]string {
	return map[string]string{
		"clusterID": e.clusterID, "pool": e.pool, "imageFeatures": "layering",
		"mounter": "fuse", "csi.storage.k8s.io/fstype": "ext4",
	}
}

// controllerSecretDir writes the userID/userKey files the controller reads
// for calls without secrets.
func (e cephEnv) controllerSecretDir(t *testing.T, dir string) string {
	t.Helper()
	d := filepath.Join(dir, "ctrl-secret")
	s := e.secrets(t)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range s {
		if err := os.WriteFile(filepath.Join(d, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// rbdArgs are the plugin flags for this cluster.
func (e cephEnv) rbdArgs(t *testing.T, dir, mode, node string) []string {
	t.Helper()
	return []string{
		"--driver=rbd", "--mode=" + mode, "--nodeid=" + node,
		"--cluster-config=" + e.clusterConfig,
		"--controller-secret-dir=" + e.controllerSecretDir(t, dir),
		"--state-dir=" + filepath.Join(dir, "state-"+node),
	}
}

func (e cephEnv) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], append([]string{"-c", e.conf}, args[1:]...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// poolObjects lists what a user would look at to find leaks: images, trash
// entries and every RADOS object in the pool.
type poolObjects struct {
	Images, Trash, Objects []string
}

func (e cephEnv) inventory(t *testing.T) poolObjects {
	t.Helper()
	var inv poolObjects
	inv.Images = lines(e.run(t, "rbd", "ls", e.pool))
	var trash []struct{ Name string }
	if err := json.Unmarshal([]byte(e.run(t, "rbd", "trash", "ls", "--all", "--format=json", e.pool)), &trash); err != nil {
		t.Fatal(err)
	}
	for _, tr := range trash {
		inv.Trash = append(inv.Trash, tr.Name)
	}
	for _, o := range lines(e.run(t, "rados", "-p", e.pool, "ls", "--all")) {
		// The node registry (one object per pool, written by every node
		// plugin) is not per volume: it appears with the first node plugin.
		if !strings.HasSuffix(o, "tkestor.csi.nodes") {
			inv.Objects = append(inv.Objects, o)
		}
	}
	sort.Strings(inv.Objects)
	return inv
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// assertSameInventory fails when the pool holds anything it did not hold
// before the test: a leaked image, trash entry or bookkeeping object.
func assertSameInventory(t *testing.T, e cephEnv, before poolObjects) {
	t.Helper()
	after := e.inventory(t)
	if extra := diff(after.Images, before.Images); len(extra) > 0 {
		t.Errorf("images left in pool %s: %v", e.pool, extra)
	}
	if extra := diff(after.Trash, before.Trash); len(extra) > 0 {
		t.Errorf("trash entries left in pool %s: %v", e.pool, extra)
	}
	if extra := withoutPoolDirectories(diff(after.Objects, before.Objects)); len(extra) > 0 {
		t.Errorf("RADOS objects left in pool %s: %v", e.pool, extra)
	}
}

func diff(a, b []string) []string {
	have := map[string]bool{}
	for _, s := range b {
		have[s] = true
	}
	var out []string
	for _, s := range a {
		if !have[s] {
			out = append(out, s)
		}
	}
	return out
}

// poolDirectories are per-pool objects that outlive every volume: librbd's
// own, created on first use (rbd_directory by the first image, rbd_trash by
// the first removal, rbd_children by the first clone), and the driver's
// node registry (one object per pool, an entry per node plugin, not per
// volume). They are not leaks.
var poolDirectories = map[string]bool{ //nolint:gochecknoglobals // constant set
	"rbd_directory": true, "rbd_trash": true, "rbd_children": true, "rbd_info": true,
	"rbd_mirroring": true, "rbd_task": true, "tkestor.csi.nodes": true,
}

func withoutPoolDirectories(objects []string) []string {
	var out []string
	for _, o := range objects {
		if !poolDirectories[o] {
			out = append(out, o)
		}
	}
	return out
}
