package manifests_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/tkestack/tkestor-csi/pkg/cfs"
	"github.com/tkestack/tkestor-csi/pkg/rbd"
	"github.com/tkestack/tkestor-csi/tests/manifests"
)

// parseParameters runs a driver's own StorageClass parameter parser.
func parseParameters(driver string, params map[string]string) (bool, error) {
	switch driver {
	case "rbd":
		p, err := rbd.ParseVolumeParameters(params)
		return p != nil, err
	case "cfs":
		p, err := cfs.ParseVolumeParameters(params)
		return p != nil, err
	}
	panic("unknown driver " + driver)
}

// sentParameters is what external-provisioner passes to CreateVolume for a
// class: it drops the reserved csi.storage.k8s.io/ keys (secrets, fstype)
// and, with --extra-create-metadata, adds the claim's and volume's names
// (here those of the guide's Elasticsearch claim).
func sentParameters(sc *storagev1.StorageClass, dep *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for k, v := range sc.Parameters {
		if !strings.HasPrefix(k, reservedPrefix) {
			out[k] = v
		}
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		if sidecarName(c.Image) == "csi-provisioner" && argMap(c)["--extra-create-metadata"] == "true" {
			out[reservedPrefix+"pvc/name"] = "elasticsearch-master-elasticsearch-master-0"
			out[reservedPrefix+"pvc/namespace"] = "efk"
			out[reservedPrefix+"pv/name"] = "pvc-405fc7b2-82eb-4eda-a6b7-e54d1713cbeb"
		}
	}
	return out
}

// TestStorageClassParametersParse: the guide's classes, as shipped in the
// manifests, are accepted by the drivers' real parameter parsers, both as
// written and as the provisioner sends them.
func TestStorageClassParametersParse(t *testing.T) {
	for _, driver := range manifests.Drivers {
		t.Run(driver, func(t *testing.T) {
			b := plainBundle(t, driver)
			dep := objectsOf[*appsv1.Deployment](b)[0]
			scs := objectsOf[*storagev1.StorageClass](b)
			if len(scs) == 0 {
				t.Fatal("no StorageClass")
			}
			for _, sc := range scs {
				views := map[string]map[string]string{
					"as written":                    sc.Parameters,
					"as the provisioner sends them": sentParameters(sc, dep),
				}
				for view, params := range views {
					ok, err := parseParameters(driver, params)
					if err != nil || !ok {
						t.Errorf("%s parameters %s: %v rejected (%v)", sc.Name, view, params, err)
					}
				}
			}
		})
	}
}

// TestStorageClassVariantsParse: the guide's RBD class as admins will
// meet it: with the commented-out `mounter: rbd-nbd` switched on, and with
// imageFormat exactly as the page prints it (an escaped \"2\", which YAML
// reads as those four characters) when pasted verbatim.
func TestStorageClassVariantsParse(t *testing.T) {
	sc := objectsOf[*storagev1.StorageClass](plainBundle(t, "rbd"))[0]
	variants := map[string]map[string]string{
		"mounter rbd-nbd":            {"mounter": "rbd-nbd"},
		"imageFormat as on the page": {"imageFormat": `\"2\"`},
	}
	for name, change := range variants {
		params := map[string]string{}
		for k, v := range sc.Parameters {
			params[k] = v
		}
		for k, v := range change {
			params[k] = v
		}
		if _, err := parseParameters("rbd", params); err != nil {
			t.Errorf("%s: rejected: %v", name, err)
		}
	}
}

// TestParsersRejectUnknownKeys: both parsers work from an allow-list, so a
// misspelt key is an error rather than silently ignored.
func TestParsersRejectUnknownKeys(t *testing.T) {
	for _, driver := range manifests.Drivers {
		t.Run(driver, func(t *testing.T) {
			sc := objectsOf[*storagev1.StorageClass](plainBundle(t, driver))[0]
			params := map[string]string{"notAParameter": "x"}
			for k, v := range sc.Parameters {
				params[k] = v
			}
			if _, err := parseParameters(driver, params); err == nil {
				t.Error("unknown key notAParameter accepted")
			}
		})
	}
}
