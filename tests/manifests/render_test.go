package manifests_test

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/tkestack/tkestor-csi/tests/manifests"
)

// TestPlainManifestsMatchChart: deploy/kubernetes is the chart rendered
// with its defaults (`make manifests` regenerates it).
func TestPlainManifestsMatchChart(t *testing.T) {
	diffs, err := manifests.Check(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if len(diffs) > 0 {
		t.Log("run `make manifests` and commit the result")
	}
}

// TestRenderDefaults: the default render holds both drivers and passes the
// same cross-checks as the plain files.
func TestRenderDefaults(t *testing.T) {
	for _, driver := range manifests.Drivers {
		t.Run(driver, func(t *testing.T) {
			crossCheck(t, renderedBundle(t, nil, driver), driver)
		})
	}
}

// TestRenderCustomValues renders the chart with non-default values, decodes
// the result strictly, cross-checks it, and checks that each value landed.
func TestRenderCustomValues(t *testing.T) {
	tests := []struct {
		name    string
		values  map[string]any
		drivers []string
		absent  []string
		check   func(t *testing.T, b *bundle, driver string)
	}{
		{
			name: "take over the guide's driver names on a relocated kubelet",
			values: map[string]any{
				"kubeletDir":       "/var/lib/k0s/kubelet/",
				"logLevel":         5,
				"logFormat":        "json",
				"rwoTakeoverGrace": "0",
				"controller":       map[string]any{"replicas": 3, "extraCreateMetadata": false},
				"image":            map[string]any{"tag": "v0.2.1"},
				"rbd":              map[string]any{"driverName": "rook-ceph.rbd.csi.ceph.com", "metricsPort": 19090},
				"cfs":              map[string]any{"driverName": "csi.chubaofs.com", "cfsClient": "/opt/cfs/bin/cfs-client"},
			},
			drivers: []string{"rbd", "cfs"},
			check: func(t *testing.T, b *bundle, driver string) {
				dep := objectsOf[*appsv1.Deployment](b)[0]
				ds := objectsOf[*appsv1.DaemonSet](b)[0]
				if *dep.Spec.Replicas != 3 {
					t.Errorf("replicas %d", *dep.Spec.Replicas)
				}
				node := argMap(container(t, ds.Spec.Template.Spec.Containers, pluginContainer))
				want := map[string]string{"-v": "5", "--logging-format": "json", "--rwo-takeover-grace": "0"}
				if driver == "rbd" {
					want["--metrics-address"] = ":19090"
				} else {
					want["--cfs-client"] = "/opt/cfs/bin/cfs-client"
				}
				for k, v := range want {
					if node[k] != v {
						t.Errorf("node %s=%q, want %q", k, node[k], v)
					}
				}
				for _, c := range ds.Spec.Template.Spec.Containers {
					if c.Name == pluginContainer && !strings.HasSuffix(c.Image, ":v0.2.1") {
						t.Errorf("plugin image %s", c.Image)
					}
				}
				for _, v := range ds.Spec.Template.Spec.Volumes {
					if hp := v.HostPath; hp != nil && strings.HasPrefix(hp.Path, "/var/lib/kubelet") {
						t.Errorf("volume %s still on /var/lib/kubelet", v.Name)
					}
				}
				prov := argMap(container(t, dep.Spec.Template.Spec.Containers, "csi-provisioner"))
				if _, on := prov["--extra-create-metadata"]; on {
					t.Error("--extra-create-metadata still set")
				}
			},
		},
		{
			name: "rbd only, attacher reads secrets, no examples",
			values: map[string]any{
				"cfs":                  map[string]any{"enabled": false},
				"attacherReadsSecrets": true,
				"rbd": map[string]any{
					"secrets":       map[string]any{"create": false},
					"snapshotClass": map[string]any{"create": false},
					"storageClass":  map[string]any{"create": false},
					"node":          map[string]any{"updateStrategy": "OnDelete"},
				},
			},
			drivers: []string{"rbd"},
			absent:  []string{"cfs"},
			check: func(t *testing.T, b *bundle, driver string) {
				if n := len(objectsOf[*storagev1.StorageClass](b)) + len(objectsOf[*volumeSnapshotClass](b)); n != 0 {
					t.Errorf("%d classes rendered with create=false", n)
				}
				ds := objectsOf[*appsv1.DaemonSet](b)[0]
				if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
					t.Errorf("update strategy %s", ds.Spec.UpdateStrategy.Type)
				}
				found := false
				for _, r := range objectsOf[*rbacv1.ClusterRole](b) {
					if strings.HasSuffix(r.Name, "-attacher") {
						for _, rule := range r.Rules {
							found = found || strings.Join(rule.Resources, ",") == "secrets"
						}
					}
				}
				if !found {
					t.Error("attacher ClusterRole has no secrets rule")
				}
			},
		},
		{
			name:    "cfs only under another release name",
			values:  map[string]any{"rbd": map[string]any{"enabled": false}, "fullnameOverride": "storage"},
			drivers: []string{"cfs"},
			absent:  []string{"rbd"},
			check: func(t *testing.T, b *bundle, driver string) {
				for _, o := range objectsOf[*appsv1.DaemonSet](b) {
					if o.Name != "storage-cfs-node" {
						t.Errorf("DaemonSet %s", o.Name)
					}
				}
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, driver := range tc.drivers {
				t.Run(driver, func(t *testing.T) {
					b := renderedBundle(t, tc.values, driver)
					crossCheck(t, b, driver)
					tc.check(t, b, driver)
				})
			}
			for _, driver := range tc.absent {
				if b := renderedBundle(t, tc.values, driver); len(b.objects) > 0 {
					t.Errorf("%s disabled but %d objects rendered", driver, len(b.objects))
				}
			}
		})
	}
}

// TestRenderRejectsBadValues: values that would produce a broken or unsafe
// install fail the render (schema or template checks).
func TestRenderRejectsBadValues(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
	}{
		{"floating plugin tag", map[string]any{"image": map[string]any{"tag": "latest"}}},
		{"empty sidecar tag", map[string]any{"sidecars": map[string]any{"provisioner": map[string]any{"tag": ""}}}},
		{"misspelt value", map[string]any{"kubeletdir": "/var/lib/kubelet"}},
		{"misspelt driver value", map[string]any{"rbd": map[string]any{"drivername": "x"}}},
		{"relative kubelet dir", map[string]any{"kubeletDir": "var/lib/kubelet"}},
		{"unknown update strategy", map[string]any{
			"cfs": map[string]any{"node": map[string]any{"updateStrategy": "Rolling"}},
		}},
		{"bad takeover grace", map[string]any{"rwoTakeoverGrace": "five minutes"}},
		{"bad log format", map[string]any{"logFormat": "xml"}},
	}
	chart := filepath.Join(repoRoot(t), manifests.ChartDir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifests.Render(chart, manifests.Options{Values: tc.values})
			if err == nil {
				t.Fatal("rendered without error")
			}
			t.Logf("refused: %v", err)
		})
	}
}
