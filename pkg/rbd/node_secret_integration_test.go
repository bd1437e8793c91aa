package rbd

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/server"
)

// TestIntegrationNodeSecretNotLogged stages with the real key and with two
// planted wrong ones (well-formed, and one rbd-fuse echoes back when it
// cannot parse it), all through the RPC logging interceptor at -v=5, and
// checks that no key shows in the logs, in an error, in the argv of the
// rbd-fuse process we started, or in any file left after unstage.
func TestIntegrationNodeSecretNotLogged(t *testing.T) {
	env := needCeph(t)
	var logs bytes.Buffer
	flags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(flags)
	_ = flags.Set("v", "5")
	_ = flags.Set("logtostderr", "false")
	klog.SetOutput(&logs)
	t.Cleanup(func() {
		_ = flags.Set("v", "0")
		_ = flags.Set("logtostderr", "true")
		klog.SetOutput(nil)
	})

	raw := append([]byte{1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 0}, []byte("planted-secret-1")...)
	planted := base64.StdEncoding.EncodeToString(raw)
	malformed := base64.StdEncoding.EncodeToString([]byte("planted-malformed-0123456"))
	secrets := []string{env.key, planted, malformed}
	v := newITVolume(t, env, "it-secret", "ext4", false, 64<<20)

	// Wrong keys fail, and say so without the key.
	var texts []string
	for _, key := range []string{planted, malformed} {
		err := v.stageVia(key)
		if err == nil {
			t.Fatal("stage with a wrong key succeeded")
		}
		texts = append(texts, err.Error())
	}
	// A key rbd-fuse cannot parse is echoed in its stderr: the mapper's
	// error must still not carry it.
	_, err := v.ns.fuse().Map(context.Background(), &MapRequest{
		VolumeID: v.id, Monitors: []string{os.Getenv("TKESTOR_CEPH_MON")}, User: env.user,
		Key: Secret(malformed), Pool: env.pool, Image: v.image,
	})
	if err == nil {
		t.Fatal("rbd-fuse accepted a malformed key")
	}
	if !strings.Contains(err.Error(), "<redacted>") {
		t.Errorf("rbd-fuse's echo of the key was not seen or not redacted: %v", err)
	}
	texts = append(texts, err.Error())
	v.assertNoLeftovers(t)

	// The right key: staged, and the running rbd-fuse has no key on argv.
	if err := v.stageVia(env.key); err != nil {
		t.Fatal(err)
	}
	pids := fuseProcesses(v.ns.stateDir)
	if len(pids) != 1 {
		t.Fatalf("rbd-fuse processes for the volume: %v, want one", pids)
	}
	for _, pid := range pids {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(cmdline))
	}
	v.checkPrivateFiles(t)
	texts = append(texts, v.filesUnder(t, v.ns.records.Dir())...)

	if _, err := v.ns.NodeUnstageVolume(context.Background(),
		&csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging}); err != nil {
		t.Fatal(err)
	}
	v.assertNoLeftovers(t)
	texts = append(texts, v.filesUnder(t, v.ns.stateDir)...)

	klog.Flush()
	texts = append(texts, logs.String())
	if !strings.Contains(logs.String(), "NodeStageVolume") {
		t.Fatal("the log capture saw no RPC; the test proves nothing")
	}
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("a key leaked into %q", text)
			}
		}
	}
}

// stageVia runs NodeStage with key through the logging interceptors.
func (v *itVolume) stageVia(key string) error {
	req := &csi.NodeStageVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, VolumeCapability: v.capability(),
		VolumeContext: map[string]string{VolCtxPool: v.env.pool, VolCtxMounter: MounterFuse},
		Secrets:       map[string]string{"userID": v.env.user, "userKey": key},
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Node/NodeStageVolume"}
	handler := func(ctx context.Context, r any) (any, error) {
		return v.ns.NodeStageVolume(ctx, r.(*csi.NodeStageVolumeRequest))
	}
	_, err := server.RequestContext(context.Background(), req, info,
		func(ctx context.Context, r any) (any, error) { return server.LogRPC(nil)(ctx, r, info, handler) })
	return err
}

// checkPrivateFiles asserts the fuse working directory is 0700 and the
// conf and keyring in it 0600.
func (v *itVolume) checkPrivateFiles(t *testing.T) {
	t.Helper()
	p := v.ns.fuse().paths(v.id)
	for path, want := range map[string]os.FileMode{p.dir: 0o700, p.conf: 0o600, p.keyring: 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}
}

// filesUnder returns the contents of every regular file under dir, not
// descending into mounts (the rbd-fuse mount holds the image).
func (v *itVolume) filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a vanished file is fine
		}
		if d.IsDir() && path != dir {
			if e, _ := v.ns.mounter.Lookup(path); e != nil {
				return filepath.SkipDir
			}
		}
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(path)
			out = append(out, string(b))
		}
		return nil
	})
	return out
}
