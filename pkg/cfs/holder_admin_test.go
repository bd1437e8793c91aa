package cfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/pkg/common/holder"
	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// The subcommand's backend: a report naming the holder, a refused release
// of a live lease (holder.ErrAlive), a release of another node refused,
// and a forced release that says what it did.
func TestHolderAdmin(t *testing.T) {
	env := newNodeEnv(t, emulator.Options{})
	t.Setenv("CFS_STANDIN_DATA_ROOT", env.dataRoot) // the command's client inherits it
	t.Setenv("CFS_STANDIN_RETRY_UNIT", "10ms")
	a := env.node(t, "node-a", t.TempDir())
	vol := env.volume(t, "pvc-holder-admin", nil)
	staging, _, _ := paths(t)
	ctx := context.Background()
	rwop := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	if _, err := a.NodeStageVolume(ctx, stageReq(vol, staging, rwop)); err != nil {
		t.Fatal(err)
	}

	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "owner"), []byte(testOwner+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin, err := NewHolderAdmin(HolderAdminOptions{SecretDir: secrets, ClientPath: standinPath,
		WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	rep, err := admin.Show(ctx, vol.VolumeId)
	if err != nil || len(rep.Holders) != 1 {
		t.Fatalf("show = %+v, %v", rep, err)
	}
	h := rep.Holders[0]
	if h.Node != "node-a" || !h.Alive || !h.Exclusive || h.Mode != "SINGLE_NODE_SINGLE_WRITER" ||
		h.Lease != DefaultLease {
		t.Errorf("holder = %+v", h)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text, time.Now()); err != nil || !strings.Contains(text.String(), "node-a") {
		t.Errorf("text report: %v\n%s", err, text.String())
	}

	_, err = admin.Release(ctx, vol.VolumeId, holder.ReleaseOptions{})
	if !errors.Is(err, holder.ErrAlive) {
		t.Fatalf("release of a live lease = %v, want ErrAlive", err)
	}
	if _, err := admin.Release(ctx, vol.VolumeId, holder.ReleaseOptions{Force: true, Node: "node-b"}); err == nil {
		t.Fatal("release of node b's hold succeeded while node a holds it")
	}
	rep, err = admin.Release(ctx, vol.VolumeId, holder.ReleaseOptions{Force: true, Node: "node-a"})
	if err != nil || len(rep.Actions) != 1 || !strings.Contains(rep.Actions[0], "released lease generation 2") {
		t.Fatalf("forced release = %+v, %v", rep, err)
	}
	rep, err = admin.Show(ctx, vol.VolumeId)
	if err != nil || len(rep.Holders) != 0 {
		t.Fatalf("show after the release = %+v, %v", rep, err)
	}

	// A wrong owner in the secret is refused before anything is mounted.
	if err := os.WriteFile(filepath.Join(secrets, "owner"), []byte("someoneelse"), 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := NewHolderAdmin(HolderAdminOptions{SecretDir: secrets, ClientPath: standinPath})
	if _, err := other.Show(ctx, vol.VolumeId); !errors.Is(err, ErrPermission) {
		t.Errorf("show with another owner = %v, want ErrPermission", err)
	}
	unstage(t, a, vol, staging)
}
