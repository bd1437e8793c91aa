package rbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	utilexec "k8s.io/utils/exec"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// cephEnv is the test cluster from tests/ceph/cluster.sh env.
type cephEnv struct {
	conf, clusterID, pool, user, key, clusterConfig string
}

// needCeph skips unless the test cluster's environment is set and we are
// root (loop devices, FUSE, mounts).
func needCeph(t *testing.T) *cephEnv {
	t.Helper()
	e := &cephEnv{
		conf: os.Getenv("CEPH_CONF"), clusterID: os.Getenv("TKESTOR_CLUSTER_ID"),
		pool: os.Getenv("TKESTOR_POOL"), user: os.Getenv("TKESTOR_CSI_USER"),
		clusterConfig: os.Getenv("TKESTOR_CSI_CONFIG"),
	}
	keyFile := os.Getenv("TKESTOR_CSI_KEY_FILE")
	if e.conf == "" || e.clusterID == "" || e.pool == "" || e.user == "" || keyFile == "" || e.clusterConfig == "" {
		t.Skip("Ceph test cluster not configured (eval \"$(tests/ceph/cluster.sh env)\")")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices, FUSE and mounts")
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	e.key = strings.TrimSpace(string(b))
	return e
}

// ioctx connects as the CSI user and opens the pool.
func (e *cephEnv) ioctx(t *testing.T) *rados.IOContext {
	t.Helper()
	conn, err := rados.NewConnWithUser(e.user)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.ReadConfigFile(e.conf); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetConfigOption("key", e.key); err != nil {
		t.Fatal(err)
	}
	if err := conn.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Shutdown)
	ioctx, err := conn.OpenIOContext(e.pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ioctx.Destroy)
	return ioctx
}

// volume is one test image and the node server that stages it.
type itVolume struct {
	env     *cephEnv
	ns      *NodeServer
	ioctx   *rados.IOContext
	id      string
	image   string
	dir     string
	staging string
	target  string
	block   bool
	fsType  string
	// mode defaults to SINGLE_NODE_WRITER.
	mode csi.VolumeCapability_AccessMode_Mode
	// data is what prime wrote, for checkData.
	data []byte
}

func newITVolume(t *testing.T, env *cephEnv, name, fsType string, block bool, size uint64) *itVolume {
	t.Helper()
	ioctx := env.ioctx(t)
	pid, err := ioctxPoolID(ioctx)
	if err != nil {
		t.Fatal(err)
	}
	vid := newVolumeID(KindVolume, env.clusterID, pid, name+"-"+randSuffix(t))
	// layering only, the driver's default features: no exclusive lock.
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := opts.SetUint64(librbd.ImageOptionFeatures, librbd.FeatureLayering); err != nil {
		t.Fatal(err)
	}
	if err := librbd.CreateImage(ioctx, vid.Image, size, opts); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	v := &itVolume{env: env, ioctx: ioctx, id: vid.String(), image: vid.Image, dir: dir,
		staging: filepath.Join(dir, "staging"), target: filepath.Join(dir, "pod", "volume"),
		block: block, fsType: fsType}
	v.restart(t)
	t.Cleanup(func() { v.teardown(t); v.ns.close() })
	return v
}

// restart replaces the node server by a new one over the same state
// directory, as a restarted plugin process would be.
func (v *itVolume) restart(t *testing.T) {
	t.Helper()
	opts := Options{NodeID: "it-node", StateDir: filepath.Join(v.dir, "state"), ClusterConfig: v.env.clusterConfig}
	resolver, err := newVolumeResolver(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := newNodeServerWith(opts, mount.New(), utilexec.New(), resolver)
	if err != nil {
		t.Fatal(err)
	}
	if v.ns != nil {
		v.ns.close()
	}
	v.ns = ns
}

func ioctxPoolID(ioctx *rados.IOContext) (int64, error) {
	return ioctx.GetPoolID(), nil
}

func randSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func (v *itVolume) capability() *csi.VolumeCapability {
	mode := &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}
	if v.mode != csi.VolumeCapability_AccessMode_UNKNOWN {
		mode.Mode = v.mode
	}
	if v.block {
		return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{
			Block: &csi.VolumeCapability_BlockVolume{}}, AccessMode: mode}
	}
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{
		Mount: &csi.VolumeCapability_MountVolume{FsType: v.fsType}}, AccessMode: mode}
}

func (v *itVolume) stage(ctx context.Context) error {
	_, err := v.ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, VolumeCapability: v.capability(),
		VolumeContext: map[string]string{VolCtxPool: v.env.pool, VolCtxMounter: MounterFuse,
			VolCtxClusterID: v.env.clusterID},
		Secrets: map[string]string{"userID": v.env.user, "userKey": v.env.key},
	})
	return err
}

func (v *itVolume) publish(ctx context.Context) error {
	_, err := v.ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, TargetPath: v.target, VolumeCapability: v.capability(),
	})
	return err
}

func (v *itVolume) unpublish(ctx context.Context) error {
	_, err := v.ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target})
	return err
}

func (v *itVolume) unstage(ctx context.Context) error {
	_, err := v.ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging})
	return err
}

// twice runs a call twice: every node call must be safe to retry.
func twice(t *testing.T, what string, call func(context.Context) error) {
	t.Helper()
	for i := 0; i < 2; i++ {
		if err := call(context.Background()); err != nil {
			t.Fatalf("%s #%d: %v", what, i+1, err)
		}
	}
}

// teardown unstages (best effort) and removes the image once its
// watchers are gone.
func (v *itVolume) teardown(t *testing.T) {
	ctx := context.Background()
	_ = v.unpublish(ctx)
	if err := v.unstage(ctx); err != nil {
		t.Errorf("cleanup unstage: %v", err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		err := librbd.RemoveImage(v.ioctx, v.image)
		if err == nil || errors.Is(err, librbd.ErrNotFound) {
			return
		}
		t.Logf("remove image %s: %v (retrying)", v.image, err)
		if time.Now().After(deadline) {
			t.Errorf("remove image %s: %v", v.image, err)
			return
		}
		time.Sleep(time.Second)
	}
}

// assertNoLeftovers checks that nothing of the volume is left on the node:
// no loop device over our files, no rbd-fuse process, no files, no mounts.
func (v *itVolume) assertNoLeftovers(t *testing.T) {
	t.Helper()
	state := v.ns.stateDir
	dirs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range dirs {
		b, _ := os.ReadFile(f)
		if strings.HasPrefix(string(b), v.dir) {
			t.Errorf("loop device %s still backed by %s", f, strings.TrimSpace(string(b)))
		}
	}
	if pids := fuseProcesses(state); len(pids) > 0 {
		t.Errorf("rbd-fuse processes still running: %v", pids)
	}
	mounts, _ := mountinfoUnder(v.dir)
	if len(mounts) > 0 {
		t.Errorf("mounts left under the test directory: %v", mounts)
	}
	for _, sub := range []string{"fuse", "keys"} {
		entries, _ := os.ReadDir(filepath.Join(state, sub))
		if len(entries) > 0 {
			t.Errorf("files left in %s: %v", sub, entries)
		}
	}
	if rec, _ := v.ns.loadRecord(v.id); rec != nil {
		t.Errorf("record left: %+v", rec)
	}
}

func mountinfoUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out, nil
}

// data is where a test writes and reads its bytes: a file in the
// filesystem, or the start of the raw device.
func (v *itVolume) dataPath() string {
	if v.block {
		return v.target
	}
	return filepath.Join(v.target, "data.bin")
}

func (v *itVolume) write(t *testing.T, data []byte) {
	t.Helper()
	f, err := os.OpenFile(v.dataPath(), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func (v *itVolume) read(t *testing.T, n int) []byte {
	t.Helper()
	f, err := os.Open(v.dataPath())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestIntegrationFuseLifecycle(t *testing.T) {
	env := needCeph(t)
	for _, tc := range []struct {
		name   string
		fsType string
		block  bool
	}{
		{"ext4", "ext4", false},
		{"xfs", "xfs", false},
		{"block", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testFuseLifecycle(t, env, tc.fsType, tc.block)
		})
	}
}

func testFuseLifecycle(t *testing.T, env *cephEnv, fsType string, block bool) {
	const size = 320 << 20 // mkfs.xfs wants 300 MiB
	v := newITVolume(t, env, "it-"+fsType, fsType, block, size)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)

	// Stage, publish, write, take everything down: twice each.
	twice(t, "stage", v.stage)
	if rec, _ := v.ns.loadRecord(v.id); rec == nil || len(rec.ClientAddrs) != 1 {
		t.Errorf("record does not name the mapper's Ceph client: %+v", rec)
	} else {
		t.Logf("mapper client address: %s", rec.ClientAddrs[0])
	}
	twice(t, "publish", v.publish)
	v.write(t, data)
	twice(t, "unpublish", v.unpublish)
	if _, err := os.Lstat(v.target); !os.IsNotExist(err) {
		t.Errorf("target left after unpublish: %v", err)
	}
	twice(t, "unstage", v.unstage)
	v.assertNoLeftovers(t)

	// Stage again: the bytes come back from the image, not from this node.
	twice(t, "stage again", v.stage)
	twice(t, "publish again", v.publish)
	if got := v.read(t, len(data)); !bytes.Equal(got, data) {
		t.Fatal("data read back differs from data written")
	}

	// Grow the image, then expand on the node (online).
	v.growImage(t, 2*size)
	expanded := v.expand(t, 2*size)
	if !block && expanded {
		u, err := mount.FsUsage(v.target)
		if err != nil || u.TotalBytes < size+size/2 {
			t.Errorf("filesystem after expand: %d bytes, %v", u.TotalBytes, err)
		}
	}
	v.checkStats(t, 2*size)

	twice(t, "unpublish", v.unpublish)
	twice(t, "unstage", v.unstage)
	v.assertNoLeftovers(t)
}

func (v *itVolume) growImage(t *testing.T, size uint64) {
	t.Helper()
	img, err := librbd.OpenImage(v.ioctx, v.image, librbd.NoSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := img.Resize(size); err != nil {
		t.Fatal(err)
	}
}

// expand runs NodeExpandVolume twice; false when the filesystem cannot be
// grown online here (ext4 without CAP_SYS_RESOURCE).
func (v *itVolume) expand(t *testing.T, size int64) bool {
	t.Helper()
	for i := 0; i < 2; i++ {
		resp, err := v.ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{
			VolumeId: v.id, VolumePath: v.target, StagingTargetPath: v.staging,
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: v.capability(),
		})
		if v.fsType == "ext4" && !mount.HasCapSysResource() {
			if errorCode(err) != codes.Internal {
				t.Fatalf("ext4 expand without CAP_SYS_RESOURCE = %v, want Internal", err)
			}
			t.Log("no CAP_SYS_RESOURCE: ext4 online resize refused by the kernel, as expected")
			if n, _ := mount.DeviceSize(v.deviceOf(t)); n < size {
				t.Errorf("device did not grow: %d < %d", n, size)
			}
			return false
		}
		if err != nil {
			t.Fatalf("expand #%d: %v", i+1, err)
		}
		if resp.GetCapacityBytes() < size {
			t.Errorf("expand #%d returned %d bytes, want >= %d", i+1, resp.GetCapacityBytes(), size)
		}
	}
	return true
}

func (v *itVolume) deviceOf(t *testing.T) string {
	t.Helper()
	rec, err := v.ns.loadRecord(v.id)
	if err != nil || rec == nil {
		t.Fatalf("record: %v, %v", rec, err)
	}
	return rec.device()
}

func (v *itVolume) checkStats(t *testing.T, size int64) {
	t.Helper()
	ctx := context.Background()
	st, err := v.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: v.id, VolumePath: v.target})
	if err != nil {
		t.Fatal(err)
	}
	var bytesTotal, inodes int64
	for _, u := range st.GetUsage() {
		switch u.GetUnit() {
		case csi.VolumeUsage_BYTES:
			bytesTotal = u.GetTotal()
		case csi.VolumeUsage_INODES:
			inodes = u.GetTotal()
		}
	}
	if v.block && bytesTotal != size {
		t.Errorf("block stats total = %d, want %d", bytesTotal, size)
	}
	if !v.block && (bytesTotal <= 0 || inodes <= 0) {
		t.Errorf("filesystem stats = %v", st.GetUsage())
	}
	h, err := v.ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: v.id, VolumePublishPath: v.target})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("health = %v, %v; want healthy", h, err)
	}
	_, err = v.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: v.id,
		VolumePath: filepath.Join(v.dir, "unknown")})
	if errorCode(err) != codes.NotFound {
		t.Errorf("stats of an unknown path = %v, want NotFound", err)
	}
}

// A staging mount that disappeared (a reboot, a manual umount) must make
// NodePublish fail instead of binding the node's own disk into the pod.
func TestIntegrationPublishNeedsLiveStaging(t *testing.T) {
	env := needCeph(t)
	v := newITVolume(t, env, "it-nostage", "ext4", false, 64<<20)
	twice(t, "stage", v.stage)
	if err := unix.Unmount(v.staging, 0); err != nil {
		t.Fatal(err)
	}
	err := v.publish(context.Background())
	if errorCode(err) != codes.FailedPrecondition {
		t.Fatalf("publish over a dead staging path = %v, want FailedPrecondition", err)
	}
	if _, err := os.Lstat(v.target); !os.IsNotExist(err) {
		t.Errorf("target exists after a refused publish (%v)", err)
	}
	entries, _ := os.ReadDir(v.staging)
	if len(entries) > 0 {
		t.Errorf("something was written into the bare staging directory: %v", entries)
	}
	twice(t, "unstage", v.unstage)
	v.assertNoLeftovers(t)
}
