package manifests_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/tests/manifests"
)

// TestManifestFlagsAcceptedByBinary builds the real binary and hands it the
// arguments of every plugin container in the plain manifests, followed by
// -h: the flag parser reads them all and stops at -h, so an unknown flag or
// a value of the wrong type shows up here rather than in a crash-looping
// pod.
func TestManifestFlagsAcceptedByBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin (cgo, go-ceph)")
	}
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "tkestor-csi")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-tags", "pacific", "-o", bin, "./cmd/tkestor-csi")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tkestor-csi: %v\n%s", err, out)
	}

	for _, driver := range manifests.Drivers {
		for _, spec := range podSpecs(plainBundle(t, driver)) {
			plugin := container(t, spec.Containers, pluginContainer)
			args := append(append([]string{}, plugin.Args...), "-h")
			out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			for _, bad := range []string{"provided but not defined", "invalid value", "invalid boolean", "bad flag syntax"} {
				if strings.Contains(string(out), bad) {
					t.Errorf("%s %v: the binary refuses its arguments:\n%s", driver, plugin.Args, out)
					break
				}
			}
		}
	}
}
