package rwo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tkestack/tkestor-csi/pkg/common/noderecord"
	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// Short holds keep the dead-holder scenarios quick: a holder renews every
// second, another node takes over once it has seen no renewal for
// 3 s + 2 s and no client of the holder is left (a killed or frozen
// client's watch lasts the OSD's 30 s watch timeout).
const (
	rbdLease    = 3 * time.Second
	rbdGrace    = 2 * time.Second
	rbdCallWait = 2 * time.Minute
	rbdVolSize  = 64 << 20
)

// rbdCeph is the test cluster as tests/lib/with-ceph.sh exports it.
type rbdCeph struct {
	conf, clusterID, pool, user, key, clusterConfig string
}

func needRBD(t *testing.T) rbdCeph {
	t.Helper()
	c := rbdCeph{
		conf: os.Getenv("CEPH_CONF"), clusterID: os.Getenv("TKESTOR_CLUSTER_ID"),
		pool: os.Getenv("TKESTOR_POOL"), user: os.Getenv("TKESTOR_CSI_USER"),
		clusterConfig: os.Getenv("TKESTOR_CSI_CONFIG"),
	}
	keyFile := os.Getenv("TKESTOR_CSI_KEY_FILE")
	if c.conf == "" || c.pool == "" || keyFile == "" || c.clusterConfig == "" {
		t.Skip("no test Ceph cluster: run under tests/lib/with-ceph.sh (make e2e-rwo)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (FUSE, loop devices, mounts)")
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c.key = strings.TrimSpace(string(b))
	return c
}

func (c rbdCeph) secrets() map[string]string {
	return map[string]string{"userID": c.user, "userKey": c.key}
}

// rbdCluster is one scenario's processes: a controller plugin and node
// plugins, each with its own state directory, in one work directory.
type rbdCluster struct {
	t          *testing.T
	ceph       rbdCeph
	bin        string
	work       string
	secretDir  string
	controller *rbdPlugin
	mu         sync.Mutex
	fenced     []string
	vols, left []*csi.Volume
}

func newRBDCluster(t *testing.T) *rbdCluster {
	t.Helper()
	ceph := needRBD(t)
	work, err := os.MkdirTemp("/var/tmp", "tkestor-rwo-rbd-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &rbdCluster{t: t, ceph: ceph, bin: rbdBinPath(t), work: work}
	t.Cleanup(c.cleanup)
	c.secretDir = filepath.Join(work, "secret")
	if err := os.MkdirAll(c.secretDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range ceph.secrets() {
		if err := os.WriteFile(filepath.Join(c.secretDir, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.controller = c.start("controller", "--mode=controller", "--controller-secret-dir="+c.secretDir)
	// Runs after the node plugins are killed and before the controller is.
	t.Cleanup(c.deleteVolumes)
	return c
}

// cleanup runs after every plugin was killed (t.Cleanup order): it
// un-blocklists what the scenario fenced, ends the rbd-fuse processes
// started under the work directory, detaches their loop devices, unmounts
// and removes the directory.
func (c *rbdCluster) cleanup() {
	// rbd-fuse first: unmounting over a frozen one blocks.
	for _, pid := range rbdFusePIDs(c.work) {
		_ = unix.Kill(pid, unix.SIGCONT)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	rbdUnmountUnder(c.work)
	rbdDetachLoopsUnder(c.work)
	rbdUnmountUnder(c.work)
	c.removeLeftImages()
	c.unfence()
	time.Sleep(100 * time.Millisecond)
	if os.Getenv("KEEP_WORK") == "" {
		_ = os.RemoveAll(c.work)
	} else {
		c.t.Logf("work directory kept: %s", c.work)
	}
}

// noteFenced remembers blocklist entries the scenario caused.
func (c *rbdCluster) noteFenced(addrs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fenced = append(c.fenced, addrs...)
}

// unfence removes the blocklist entries the scenario caused, as admin.
func (c *rbdCluster) unfence() {
	c.mu.Lock()
	addrs := c.fenced
	c.fenced = nil
	c.mu.Unlock()
	for _, a := range addrs {
		a = strings.TrimPrefix(a, "v1:")
		if out, err := exec.Command("ceph", "-c", c.ceph.conf, "osd", "blocklist", "rm", a).CombinedOutput(); err != nil {
			c.t.Logf("un-blocklist %s: %v: %s", a, err, out)
		}
	}
}

// node starts a node plugin; extra flags go last (they win).
func (c *rbdCluster) node(name string, extra ...string) *rbdPlugin {
	args := append([]string{
		"--mode=node", "--nodeid=" + name, "--node-secret-dir=" + c.secretDir,
		"--rwo-lease=" + rbdLease.String(), "--rwo-takeover-grace=" + rbdGrace.String(),
	}, extra...)
	p := c.start(name, args...)
	p.extra = extra
	return p
}

func (c *rbdCluster) start(name string, args ...string) *rbdPlugin {
	c.t.Helper()
	p := &rbdPlugin{
		name: name, socket: filepath.Join(c.work, name+".sock"), done: make(chan struct{}),
		stateDir: filepath.Join(c.work, "state-"+name),
	}
	args = append([]string{
		"--driver=rbd", "--endpoint=unix://" + p.socket, "--cluster-config=" + c.ceph.clusterConfig,
		"--state-dir=" + p.stateDir, "-v=4",
	}, args...)
	p.cmd = exec.Command(c.bin, args...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	_ = os.Remove(p.socket)
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go p.collect(stderr)
	c.t.Cleanup(p.kill)
	p.waitReady(c.t)
	return p
}

// restart starts a node plugin again on the same state directory (the
// old process must be gone).
func (c *rbdCluster) restart(p *rbdPlugin) *rbdPlugin {
	c.t.Helper()
	p.kill()
	return c.node(p.name, p.extra...)
}

// volume creates a volume through the controller plugin and deletes it
// when the test ends.
func (c *rbdCluster) volume(name string, block bool) *csi.Volume {
	c.t.Helper()
	return c.volumeWith(name, block, nil)
}

// volumeWith creates a volume with extra StorageClass parameters.
func (c *rbdCluster) volumeWith(name string, block bool, extra map[string]string) *csi.Volume {
	c.t.Helper()
	params := c.params()
	for k, v := range extra {
		params[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), rbdCallWait)
	defer cancel()
	capability := csiclient.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "ext4")
	if block {
		capability = csiclient.BlockCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	}
	resp, err := c.controller.client.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               fmt.Sprintf("%s-%d", name, time.Now().UnixNano()),
		Parameters:         params,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: rbdVolSize},
		VolumeCapabilities: []*csi.VolumeCapability{capability},
		Secrets:            c.ceph.secrets(),
	})
	if err != nil {
		c.t.Fatalf("create %s: %v", name, err)
	}
	vol := resp.GetVolume()
	c.mu.Lock()
	c.vols = append(c.vols, vol)
	c.mu.Unlock()
	return vol
}

// deleteVolumes deletes the scenario's volumes through the controller;
// one still mapped (a failed scenario) is left for removeLeftImages.
func (c *rbdCluster) deleteVolumes() {
	c.mu.Lock()
	vols := c.vols
	c.vols = nil
	c.mu.Unlock()
	for _, vol := range vols {
		if err := c.deleteVolume(vol); err != nil {
			c.t.Logf("delete %s: %v (removed as admin later)", vol.GetVolumeId(), err)
			c.mu.Lock()
			c.left = append(c.left, vol)
			c.mu.Unlock()
		}
	}
}

// removeLeftImages removes, as admin, images a failed scenario left
// mapped, once the watches of its killed mappers have timed out.
func (c *rbdCluster) removeLeftImages() {
	for _, vol := range c.left {
		c.noteFenced(c.fencedOn(vol)...)
		deadline := time.Now().Add(90 * time.Second)
		for {
			out, err := exec.Command("rbd", "-c", c.ceph.conf, "rm", "--no-progress", c.image(vol)).CombinedOutput()
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					c.t.Errorf("image %s left behind: %v: %s", c.image(vol), err, out)
				}
				break
			}
			time.Sleep(2 * time.Second)
		}
	}
}

func (c *rbdCluster) params() map[string]string {
	return map[string]string{
		"clusterID": c.ceph.clusterID, "pool": c.ceph.pool, "imageFeatures": "layering",
		"mounter": "fuse", "csi.storage.k8s.io/fstype": "ext4",
	}
}

// deleteVolume removes the volume; it first collects the fencing notes on
// the image so cleanup can un-blocklist what a takeover fenced.
func (c *rbdCluster) deleteVolume(vol *csi.Volume) error {
	fenced := c.fencedOn(vol)
	ctx, cancel := context.WithTimeout(context.Background(), rbdCallWait)
	defer cancel()
	_, err := c.controller.client.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{
		VolumeId: vol.GetVolumeId(), Secrets: c.ceph.secrets(),
	})
	if err == nil {
		c.noteFenced(fenced...)
	}
	return err
}

// image returns pool/image of a volume.
func (c *rbdCluster) image(vol *csi.Volume) string {
	return c.ceph.pool + "/" + vol.GetVolumeContext()["imageName"]
}

// fencedOn reads the addresses the fencing notes on the image list.
func (c *rbdCluster) fencedOn(vol *csi.Volume) []string {
	out, err := exec.Command("rbd", "-c", c.ceph.conf, "image-meta", "list", "--format=json",
		c.image(vol)).Output()
	if err != nil {
		return nil
	}
	var meta map[string]string
	if json.Unmarshal(out, &meta) != nil {
		return nil
	}
	var addrs []string
	for k, v := range meta {
		if !strings.HasPrefix(k, "tkestor.csi/fenced.") {
			continue
		}
		var note struct {
			Clients []string `json:"clients"`
		}
		if json.Unmarshal([]byte(v), &note) == nil {
			addrs = append(addrs, note.Clients...)
		}
	}
	return addrs
}

// blocklisted returns the cluster's blocklist, as admin.
func (c *rbdCluster) blocklisted() string {
	out, _ := exec.Command("ceph", "-c", c.ceph.conf, "osd", "blocklist", "ls").CombinedOutput()
	return string(out)
}

// holderCmd runs `tkestor-csi holder ARGS` and returns its exit status
// and output.
func (c *rbdCluster) holderCmd(args ...string) (int, string) {
	args = append(append([]string{"holder"}, args...), "--driver=rbd",
		"--cluster-config="+c.ceph.clusterConfig, "--secret-dir="+c.secretDir)
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		c.t.Fatalf("holder %v: %v", args, err)
	}
	return 0, string(out)
}

// rbdPaths are one node's kubelet paths for one volume.
type rbdPaths struct {
	staging, target1, target2 string
}

func (c *rbdCluster) paths(node, vol string) rbdPaths {
	c.t.Helper()
	dir := filepath.Join(c.work, "kubelet-"+node, vol)
	p := rbdPaths{
		staging: filepath.Join(dir, "globalmount"),
		target1: filepath.Join(dir, "pod1", "mount"),
		target2: filepath.Join(dir, "pod2", "mount"),
	}
	if err := os.MkdirAll(p.staging, 0o750); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// rbdPlugin is one tkestor-csi process.
type rbdPlugin struct {
	name     string
	socket   string
	stateDir string
	extra    []string
	cmd      *exec.Cmd
	client   *csiclient.Client
	mu       sync.Mutex
	lines    []string
	done     chan struct{}
}

func (p *rbdPlugin) collect(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.mu.Unlock()
	}
	_ = p.cmd.Wait()
}

func (p *rbdPlugin) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *rbdPlugin) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited early:\n%s", p.name, p.log())
		default:
		}
		if _, err := os.Stat(p.socket); err == nil {
			c, err := csiclient.Dial("unix://" + p.socket)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = c.Ready(ctx)
			cancel()
			if err == nil {
				p.client = c
				return
			}
			_ = c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 30s:\n%s", p.name, p.log())
}

// kill ends the plugin with SIGKILL (a crash or an OOM kill); its rbd-fuse
// processes keep running, as they would on a node.
func (p *rbdPlugin) kill() {
	if p.client != nil {
		_ = p.client.Close()
		p.client = nil
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// signal sends sig to the plugin process only.
func (p *rbdPlugin) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// record reads the node record of a volume from the plugin's state
// directory (the format of pkg/rbd/node_record.go).
func (p *rbdPlugin) record(t *testing.T, volumeID string) rbdRecord {
	t.Helper()
	path := filepath.Join(p.stateDir, "rbd", "records", noderecord.Key(volumeID)+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("record of %s on %s: %v", volumeID, p.name, err)
	}
	var env struct {
		Data rbdRecord `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	return env.Data
}

// rbdRecord is the part of a node record the scenarios read.
type rbdRecord struct {
	Mapping *struct {
		Device  string `json:"device"`
		WorkDir string `json:"workDir"`
	} `json:"mapping"`
	ClientAddrs []string `json:"clientAddrs"`
}

// mapperPIDs are the rbd-fuse processes serving a volume on a node: the
// ones whose command line names the record's working directory (made by
// the plugin this test started, under the test's work directory).
func (p *rbdPlugin) mapperPIDs(t *testing.T, volumeID string) []int {
	t.Helper()
	rec := p.record(t, volumeID)
	if rec.Mapping == nil || rec.Mapping.WorkDir == "" {
		t.Fatalf("%s: volume %s has no fuse mapping recorded", p.name, volumeID)
	}
	pids := rbdFusePIDs(rec.Mapping.WorkDir)
	if len(pids) == 0 {
		t.Fatalf("%s: no rbd-fuse process under %s", p.name, rec.Mapping.WorkDir)
	}
	return pids
}

// rbdFusePIDs lists rbd-fuse processes whose arguments name a path under dir.
func rbdFusePIDs(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "rbd-fuse" {
			continue
		}
		for _, a := range args[1:] {
			if strings.HasPrefix(a, dir+string(filepath.Separator)) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// rbdDetachLoopsUnder detaches loop devices backed by files under dir.
func rbdDetachLoopsUnder(dir string) {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), dir+"/") {
			continue
		}
		dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f)))
		_ = exec.Command("losetup", "-d", dev).Run()
	}
}

func rbdStage(p *rbdPlugin, c *rbdCluster, vol *csi.Volume, staging string, vc *csi.VolumeCapability) error {
	ctx, cancel := context.WithTimeout(context.Background(), rbdCallWait)
	defer cancel()
	_, err := p.client.Node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging, VolumeCapability: vc,
		VolumeContext: vol.GetVolumeContext(), Secrets: c.ceph.secrets(),
	})
	return err
}

func rbdPublish(p *rbdPlugin, vol *csi.Volume, staging, target string, vc *csi.VolumeCapability, ro bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), rbdCallWait)
	defer cancel()
	_, err := p.client.Node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: vc, VolumeContext: vol.GetVolumeContext(), Readonly: ro,
	})
	return err
}

// rbdUnpublish and rbdUnstage retry Aborted: the plugin's heartbeat holds
// the volume's in-process lock for a moment every lease/3.
func rbdUnpublish(p *rbdPlugin, vol *csi.Volume, target string) error {
	return rbdRetryAborted(func(ctx context.Context) error {
		_, err := p.client.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
			VolumeId: vol.GetVolumeId(), TargetPath: target,
		})
		return err
	})
}

func rbdUnstage(p *rbdPlugin, vol *csi.Volume, staging string) error {
	return rbdRetryAborted(func(ctx context.Context) error {
		_, err := p.client.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
			VolumeId: vol.GetVolumeId(), StagingTargetPath: staging,
		})
		return err
	})
}

func rbdRetryAborted(call func(ctx context.Context) error) error {
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), rbdCallWait)
		err := call(ctx)
		cancel()
		if status.Code(err) != codes.Aborted || i >= 50 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rbdStageUntil retries NodeStage while it is refused (FailedPrecondition)
// or Aborted, up to limit; it returns how long it took and the last error.
func rbdStageUntil(p *rbdPlugin, c *rbdCluster, vol *csi.Volume, staging string, vc *csi.VolumeCapability,
	limit time.Duration,
) (time.Duration, error) {
	start := time.Now()
	for {
		err := rbdStage(p, c, vol, staging, vc)
		code := status.Code(err)
		if err == nil || (code != codes.FailedPrecondition && code != codes.Aborted) ||
			time.Since(start) > limit {
			return time.Since(start), err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// rbdWantRefusal asserts FailedPrecondition whose message names node.
func rbdWantRefusal(t *testing.T, what string, err error, node string) {
	t.Helper()
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("%s: got %v, want FailedPrecondition naming %s", what, err, node)
	}
	if !strings.Contains(status.Convert(err).Message(), fmt.Sprintf("%q", node)) {
		t.Fatalf("%s: refusal does not name node %q: %v", what, node, err)
	}
}

func rbdDescribe(err error) string {
	if err == nil {
		return "ok"
	}
	return status.Code(err).String() + ": " + status.Convert(err).Message()
}

// rbdWriteSync writes a file and fsyncs it, so it reaches the image.
func rbdWriteSync(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		t.Fatal(err)
	}
}

func rbdRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// rbdWriteDevice writes one block at offset to a block device with
// O_DIRECT and fsync, so an error of the backend shows here.
func rbdWriteDevice(dev string, offset int64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	// An anonymous mapping is page aligned, as O_DIRECT needs.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Munmap(buf) }()
	copy(buf, "written after the takeover: must never reach the image")
	if _, err := f.WriteAt(buf, offset); err != nil {
		return err
	}
	return f.Sync()
}

// rbdBinPath finds bin/tkestor-csi (or $TKESTOR_BIN).
func rbdBinPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TKESTOR_BIN")
	if path == "" {
		path = filepath.Join("..", "..", "bin", "tkestor-csi")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s missing: run `make build` first", abs)
	}
	return abs
}

// rbdMust fails the test on err, naming what failed.
func rbdMust(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// rbdMountsUnder lists the mount points below dir, deepest (latest) first.
func rbdMountsUnder(dir string) []string {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var targets []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append([]string{f[4]}, targets...)
		}
	}
	return targets
}

// rbdUnmountUnder lazily unmounts every mount below dir, deepest first.
// Only this test's plugins mount there.
func rbdUnmountUnder(dir string) {
	for _, target := range rbdMountsUnder(dir) {
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
}

// rbdIsMount reports whether path is a mount point now.
func rbdIsMount(path string) bool {
	for _, m := range rbdMountsUnder(filepath.Dir(path)) {
		if m == path {
			return true
		}
	}
	return false
}
