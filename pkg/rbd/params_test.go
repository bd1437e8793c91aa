package rbd

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	librbd "github.com/ceph/go-ceph/rbd"
)

// seedParams is the RBD StorageClass of the practice guide, verbatim: YAML
// delivers `imageFormat: \"2\"` with the backslashes and quotes.
func seedParams() map[string]string {
	return map[string]string{
		"clusterID":     "rook-ceph",
		"pool":          "replicapool",
		"imageFormat":   `\"2\"`,
		"imageFeatures": "layering",
		"csi.storage.k8s.io/provisioner-secret-name":      "rook-csi-rbd-provisioner",
		"csi.storage.k8s.io/provisioner-secret-namespace": "rook-ceph",
		"csi.storage.k8s.io/node-stage-secret-name":       "rook-csi-rbd-node",
		"csi.storage.k8s.io/node-stage-secret-namespace":  "rook-ceph",
		"csi.storage.k8s.io/fstype":                       "ext4",
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestParseVolumeParameters(t *testing.T) {
	t.Parallel()
	seedWant := &VolumeParameters{
		ClusterID: "rook-ceph", Pool: "replicapool", Features: librbd.FeatureLayering,
		FeatureNames: []string{"layering"}, FsType: FsExt4, Mounter: MounterKRBD,
	}
	minimal := map[string]string{"clusterID": "c", "pool": "p"}
	tests := []struct {
		name    string
		params  map[string]string
		want    *VolumeParameters
		wantKey string // the error must name this
	}{
		{name: "seed storage class", params: seedParams(), want: seedWant},
		{name: "seed with rbd-nbd mounter", params: with(seedParams(), "mounter", "rbd-nbd"),
			want: func() *VolumeParameters { w := *seedWant; w.Mounter = MounterNBD; return &w }()},
		{name: "defaults", params: minimal, want: &VolumeParameters{ClusterID: "c", Pool: "p",
			Features: librbd.FeatureLayering, FeatureNames: []string{"layering"}, FsType: FsExt4, Mounter: MounterKRBD}},
		{name: "everything", params: with(minimal, "dataPool", "ec", "imageFeatures",
			"layering, exclusive-lock,object-map,fast-diff,deep-flatten", "csi.storage.k8s.io/fstype", "xfs",
			"mounter", "fuse", "mkfsOptions", "-K -m crc=1", "mapOptions", "lock_on_read,queue_depth=1024",
			"unmapOptions", "force", "radosNamespace", "", "encrypted", "false", "thickProvision", "false",
			"imageFormat", "2",
			"csi.storage.k8s.io/pvc/name", "data", "csi.storage.k8s.io/pvc/namespace", "db",
			"csi.storage.k8s.io/pv/name", "pvc-1",
			"csi.storage.k8s.io/controller-expand-secret-name", "s",
			"csi.storage.k8s.io/controller-expand-secret-namespace", "ns"),
			want: &VolumeParameters{ClusterID: "c", Pool: "p", DataPool: "ec",
				Features: librbd.FeatureLayering | librbd.FeatureExclusiveLock | librbd.FeatureObjectMap |
					librbd.FeatureFastDiff | librbd.FeatureDeepFlatten,
				FeatureNames: []string{"deep-flatten", "exclusive-lock", "fast-diff", "layering", "object-map"},
				FsType:       FsXFS, Mounter: MounterFuse, MkfsOptions: "-K -m crc=1",
				MapOptions: "lock_on_read,queue_depth=1024", UnmapOptions: "force"}},
		{name: "quoted format", params: with(minimal, "imageFormat", `"2"`), want: nil},
		{name: "format 1", params: with(minimal, "imageFormat", "1"), wantKey: "imageFormat"},
		{name: "unknown key", params: with(minimal, "imageFeature", "layering"), wantKey: "imageFeature"},
		{name: "unknown csi key", params: with(minimal, "csi.storage.k8s.io/bogus", "x"), wantKey: "csi.storage.k8s.io/bogus"},
		{name: "no cluster", params: with(minimal, "clusterID", "<delete>"), wantKey: "clusterID"},
		{name: "no pool", params: with(minimal, "pool", "<delete>"), wantKey: "pool"},
		{name: "bad cluster", params: with(minimal, "clusterID", "a/b"), wantKey: "clusterID"},
		{name: "unknown feature", params: with(minimal, "imageFeatures", "layering,striping"), wantKey: "striping"},
		{name: "no layering", params: with(minimal, "imageFeatures", "exclusive-lock"), wantKey: "layering"},
		{name: "object-map without lock", params: with(minimal, "imageFeatures", "layering,object-map"),
			wantKey: "exclusive-lock"},
		{name: "journaling without lock", params: with(minimal, "imageFeatures", "layering,journaling"),
			wantKey: "exclusive-lock"},
		{name: "ext3", params: with(minimal, "csi.storage.k8s.io/fstype", "ext3"), wantKey: "fstype"},
		{name: "bad mounter", params: with(minimal, "mounter", "iscsi"), wantKey: "mounter"},
		{name: "namespace", params: with(minimal, "radosNamespace", "tenant"), wantKey: "radosNamespace"},
		{name: "encrypted", params: with(minimal, "encrypted", "true"), wantKey: "encrypted"},
		{name: "control char", params: with(minimal, "mkfsOptions", "-a\n-b"), wantKey: "mkfsOptions"},
		{name: "too long", params: with(minimal, "mapOptions", strings.Repeat("a", 600)), wantKey: "mapOptions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseVolumeParameters(tc.params)
			if tc.wantKey != "" {
				if !errors.Is(err, ErrInvalidParam) || !strings.Contains(err.Error(), tc.wantKey) {
					t.Fatalf("error %v, want ErrInvalidParam naming %q", err, tc.wantKey)
				}
				if codeOf(err).String() != "InvalidArgument" {
					t.Fatalf("code %s", codeOf(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckImageFormat(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2", `"2"`, `\"2\"`, " 2 ", "'2'"} {
		if err := checkImageFormat(v); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	for _, v := range []string{"", "1", `\"1\"`, "22", "two"} {
		if err := checkImageFormat(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestVolumeContextRoundTrip(t *testing.T) {
	t.Parallel()
	p, err := ParseVolumeParameters(with(seedParams(), "mounter", "fuse", "mkfsOptions", "-m0", "mapOptions", "ro"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := p.volumeContext("csi-vol-x")
	ctx["storage.kubernetes.io/csiProvisionerIdentity"] = "123-rbd" // the provisioner adds it
	vc, err := ParseVolumeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &VolumeContext{ClusterID: "rook-ceph", Pool: "replicapool", ImageName: "csi-vol-x", FsType: FsExt4,
		Mounter: MounterFuse, MkfsOptions: "-m0", MapOptions: "ro"}
	if !reflect.DeepEqual(vc, want) {
		t.Fatalf("got %+v, want %+v", vc, want)
	}
	empty, err := ParseVolumeContext(nil)
	if err != nil || empty.Mounter != MounterKRBD || empty.FsType != FsExt4 {
		t.Fatalf("empty context: %+v, %v", empty, err)
	}
	for _, bad := range []map[string]string{
		{VolCtxMounter: "iscsi"}, {VolCtxFsType: "btrfs"}, {VolCtxClusterID: "a b"}, {VolCtxMapOptions: "a\x00"},
	} {
		if _, err := ParseVolumeContext(bad); !errors.Is(err, ErrInvalidParam) {
			t.Errorf("%v: error %v", bad, err)
		}
	}
}
