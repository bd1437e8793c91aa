package manifests_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tkestack/tkestor-csi/tests/manifests"
)

// volumeSnapshotClass is snapshot.storage.k8s.io/v1 VolumeSnapshotClass, a
// CRD type, decoded here without its client library.
type volumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Driver            string            `json:"driver"`
	Parameters        map[string]string `json:"parameters,omitempty"`
	DeletionPolicy    string            `json:"deletionPolicy"`
}

// object is one decoded document and where it came from.
type object struct {
	source string
	obj    any
}

// bundle is every object of one set of manifests.
type bundle struct {
	objects []object
}

// strictDecoder fails on unknown and duplicate fields.
//
//nolint:gochecknoglobals // stateless
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// decodeStrict decodes one YAML document into its Kubernetes API type.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, errors.New("document has no apiVersion or kind")
	}

	if tm.APIVersion == "snapshot.storage.k8s.io/v1" && tm.Kind == "VolumeSnapshotClass" {
		var c volumeSnapshotClass
		if err := sigsyaml.UnmarshalStrict(doc, &c); err != nil {
			return nil, err
		}
		if c.Driver == "" || (c.DeletionPolicy != "Delete" && c.DeletionPolicy != "Retain") {
			return nil, fmt.Errorf("VolumeSnapshotClass %s: driver %q, deletionPolicy %q",
				c.Name, c.Driver, c.DeletionPolicy)
		}
		return &c, nil
	}

	obj, _, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// splitDocuments returns the YAML documents of data that hold more than
// comments.
func splitDocuments(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if hasContent(doc) {
			docs = append(docs, doc)
		}
	}
}

func hasContent(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return true
		}
	}
	return false
}

// decodeInto adds every document of data to b.
func (b *bundle) decodeInto(source string, data []byte) error {
	docs, err := splitDocuments(data)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	for i, doc := range docs {
		obj, err := decodeStrict(doc)
		if err != nil {
			return fmt.Errorf("%s, document %d: %w", source, i+1, err)
		}
		b.objects = append(b.objects, object{source: source, obj: obj})
	}
	return nil
}

// objectsOf returns the objects of type T in b.
func objectsOf[T any](b *bundle) []T {
	var out []T
	for _, o := range b.objects {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// kinds lists the kinds in b, sorted and unique.
func (b *bundle) kinds() []string {
	seen := map[string]bool{}
	for _, o := range b.objects {
		seen[kindOf(o.obj)] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kindOf(obj any) string {
	if c, ok := obj.(*volumeSnapshotClass); ok {
		return c.Kind
	}
	if ro, ok := obj.(runtime.Object); ok {
		if gvks, _, err := scheme.Scheme.ObjectKinds(ro); err == nil && len(gvks) > 0 {
			return gvks[0].Kind
		}
	}
	return fmt.Sprintf("%T", obj)
}

// repoRoot is the repository root (tests run in tests/manifests).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := manifests.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// plainBundle decodes deploy/kubernetes/<driver>/*.yaml.
func plainBundle(t *testing.T, driver string) *bundle {
	t.Helper()
	dir := filepath.Join(repoRoot(t), manifests.PlainDir, driver)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (err %v)", dir, err)
	}
	b := &bundle{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.decodeInto(filepath.Base(f), data); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// renderedBundle renders the chart with values and decodes the output of
// the templates under the given driver folder ("" for all).
func renderedBundle(t *testing.T, values map[string]any, driver string) *bundle {
	t.Helper()
	rendered, err := manifests.Render(filepath.Join(repoRoot(t), manifests.ChartDir),
		manifests.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{}
	for _, rel := range sortedKeys(rendered) {
		if driver != "" && !strings.HasPrefix(rel, driver+"/") {
			continue
		}
		if err := b.decodeInto(rel, []byte(rendered[rel])); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestEveryYAMLUnderDeployDecodesStrictly walks deploy/: plain manifests
// decode strictly into the API types, the chart's metadata into Helm's
// type, and the chart's templates and values are covered by rendering. Any
// other YAML file there fails the test, so nothing escapes the check.
func TestEveryYAMLUnderDeployDecodesStrictly(t *testing.T) {
	root := repoRoot(t)
	plain := 0

	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasSuffix(rel, ".yaml") && !strings.HasSuffix(rel, ".yml") {
			return nil
		}

		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, manifests.PlainDir+"/"):
			b := &bundle{}
			if err := b.decodeInto(rel, data); err != nil {
				t.Error(err)
			}
			if len(b.objects) == 0 {
				t.Errorf("%s holds no object", rel)
			}
			plain += len(b.objects)
		case rel == manifests.ChartDir+"/Chart.yaml":
			var md chartv2.Metadata
			if err := sigsyaml.UnmarshalStrict(data, &md); err != nil {
				t.Errorf("%s: %v", rel, err)
			} else if err := md.Validate(); err != nil {
				t.Errorf("%s: %v", rel, err)
			}
		case rel == manifests.ChartDir+"/values.yaml",
			strings.HasPrefix(rel, manifests.ChartDir+"/templates/"):
			// Checked by rendering (schema-validated values, strict engine).
		default:
			t.Errorf("%s: YAML file that no test decodes", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if plain == 0 {
		t.Fatal("no plain manifests found")
	}
	t.Logf("%d objects decoded strictly from %s", plain, manifests.PlainDir)
}

// TestPlainManifestKinds checks that each driver's folder holds the objects
// an install needs, and nothing the driver does not use.
func TestPlainManifestKinds(t *testing.T) {
	want := map[string][]string{
		"rbd": {"CSIDriver", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
			"Deployment", "Role", "RoleBinding", "Secret", "ServiceAccount", "StorageClass",
			"VolumeSnapshotClass"},
		"cfs": {"CSIDriver", "ClusterRole", "ClusterRoleBinding", "DaemonSet", "Deployment",
			"Role", "RoleBinding", "Secret", "ServiceAccount", "StorageClass"},
	}
	for _, driver := range manifests.Drivers {
		t.Run(driver, func(t *testing.T) {
			got := plainBundle(t, driver).kinds()
			if strings.Join(got, ",") != strings.Join(want[driver], ",") {
				t.Errorf("kinds %v, want %v", got, want[driver])
			}
		})
	}
}

// TestStrictDecoderRejects makes sure the decoder used above is strict.
func TestStrictDecoderRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{
			name: "unknown field in a Deployment",
			doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n" +
				"spec:\n  replica: 2\n  selector: {matchLabels: {a: b}}\n" +
				"  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i:v1.0.0}]}}\n",
		},
		{
			name: "unknown field in a container",
			doc: "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n" +
				"spec: {containers: [{name: c, image: i:v1.0.0, mountPropagation: Bidirectional}]}\n",
		},
		{
			name: "duplicate field",
			doc:  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		},
		{
			name: "unknown field in a VolumeSnapshotClass",
			doc: "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\n" +
				"metadata: {name: x}\ndriver: d\ndeletionPolicy: Delete\nparameter: {}\n",
		},
		{
			name: "VolumeSnapshotClass without a deletion policy",
			doc: "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\n" +
				"metadata: {name: x}\ndriver: d\n",
		},
		{
			name: "unregistered kind",
			doc:  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := decodeStrict([]byte(tc.doc)); err == nil {
				t.Fatal("decoded without error")
			}
		})
	}
}
