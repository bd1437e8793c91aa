package rbd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"
)

// itRegisterNodes writes registry entries as the nodes' plugins would, and
// removes them when the test ends.
func itRegisterNodes(t *testing.T, io *rados.IOContext, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		value, _ := json.Marshal(nodeRegistration{Node: n, Renewed: time.Now().UTC()})
		if err := io.SetOmap(registryObject, map[string][]byte{n: value}); err != nil {
			t.Fatalf("register %s: %v", n, err)
		}
	}
	t.Cleanup(func() {
		if err := io.RmOmapKeys(registryObject, nodes); err != nil {
			t.Errorf("unregister %v: %v", nodes, err)
		}
	})
}

// TestIntegrationNodeRegistry registers a node plugin the way it does at
// start (every RBD pool its credentials can write) and looks it up the
// way ControllerPublish does.
func TestIntegrationNodeRegistry(t *testing.T) {
	env := needCeph(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{secretUserID: env.user, secretUserKey: env.key} {
		if err := os.WriteFile(filepath.Join(secret, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conns := newConnCache(ConnOptions{})
	defer conns.close()
	node := "it-registry-" + randSuffix(t)
	reg := newRegistrar(Options{NodeID: node, NodeSecretDir: secret, ClusterConfig: env.clusterConfig}, conns)
	reg.registerAll()

	io := env.ioctx(t)
	got, err := lookupNode(io, node)
	if err != nil || got == nil || got.Node != node || time.Since(got.Renewed) > time.Minute {
		t.Fatalf("lookup after registration: %+v, %v", got, err)
	}
	ref := imageRef{id: VolumeID{ClusterID: env.clusterID}, pool: env.pool, io: io}
	if err := checkNodeRegistered(ref, node); err != nil {
		t.Fatalf("registered node refused: %v", err)
	}
	err = checkNodeRegistered(ref, node+"-never")
	if !errors.Is(err, ErrNodeNotFound) || codeOf(err).String() != "NotFound" {
		t.Fatalf("unregistered node: %v", err)
	}
	if err := io.RmOmapKeys(registryObject, []string{node}); err != nil {
		t.Fatal(err)
	}
}
