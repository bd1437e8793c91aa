package manifests_test

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/tkestack/tkestor-csi/tests/manifests"
)

// pluginContainer is the name of our container in both pods.
const pluginContainer = "tkestor-csi"

// controllerSidecars must all run in a controller pod (the snapshotter only
// for drivers with snapshots).
var controllerSidecars = map[string][]string{ //nolint:gochecknoglobals // constant table
	"rbd": {"csi-provisioner", "csi-attacher", "csi-resizer", "csi-snapshotter", "livenessprobe"},
	"cfs": {"csi-provisioner", "csi-attacher", "csi-resizer", "livenessprobe"},
}

// reservedPrefix marks StorageClass keys that external-provisioner reads
// itself; it refuses a class with any such key it does not know.
const reservedPrefix = "csi.storage.k8s.io/"

// reservedKeys are the ones it knows (fstype and the secret references).
var reservedKeys = func() map[string]bool { //nolint:gochecknoglobals // constant set
	m := map[string]bool{reservedPrefix + "fstype": true}
	for _, op := range []string{"provisioner", "controller-publish", "node-stage", "node-publish",
		"controller-expand", "node-expand"} {
		m[reservedPrefix+op+"-secret-name"] = true
		m[reservedPrefix+op+"-secret-namespace"] = true
	}
	return m
}()

// pinnedImage is a registry path with an exact release tag.
var pinnedImage = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:v?[0-9]+\.[0-9]+\.[0-9]+$`)

// reporter is the part of *testing.T the checks use, so that a test can
// also run them against broken manifests and collect what they report.
type reporter interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// crossCheck verifies that the objects of one driver in b fit together.
func crossCheck(t reporter, b *bundle, driver string) {
	t.Helper()

	drivers := objectsOf[*storagev1.CSIDriver](b)
	deps := objectsOf[*appsv1.Deployment](b)
	dss := objectsOf[*appsv1.DaemonSet](b)
	if len(drivers) != 1 || len(deps) != 1 || len(dss) != 1 {
		t.Fatalf("want one CSIDriver, Deployment and DaemonSet; have %d, %d, %d",
			len(drivers), len(deps), len(dss))
	}
	csiDriver, dep, ds := drivers[0], deps[0], dss[0]
	name := csiDriver.Name

	checkCSIDriver(t, csiDriver, driver)
	checkController(t, b, dep, driver, name)
	checkNode(t, b, ds, driver, name)
	checkClasses(t, b, driver, name)
	checkImages(t, b)
	checkServiceAccounts(t, b, dep, ds)
}

func checkCSIDriver(t reporter, d *storagev1.CSIDriver, driver string) {
	if d.Spec.AttachRequired == nil || !*d.Spec.AttachRequired {
		t.Error("attachRequired must be true: ControllerPublish records the holder")
	}
	want := map[string]storagev1.FSGroupPolicy{"rbd": storagev1.FileFSGroupPolicy, "cfs": storagev1.NoneFSGroupPolicy}
	if d.Spec.FSGroupPolicy == nil || *d.Spec.FSGroupPolicy != want[driver] {
		t.Errorf("fsGroupPolicy %v, want %s", d.Spec.FSGroupPolicy, want[driver])
	}
}

func checkController(t reporter, b *bundle, dep *appsv1.Deployment, driver, name string) {
	spec := dep.Spec.Template.Spec
	plugin := container(t, spec.Containers, pluginContainer)
	args := argMap(plugin)
	checkPluginArgs(t, args, "controller", driver, name)

	sock := socketPath(t, args["--endpoint"])
	vol := mountedVolume(t, plugin, path.Dir(sock))
	if v := volume(t, spec.Volumes, vol); v.EmptyDir == nil {
		t.Errorf("controller socket volume %s is not an emptyDir", vol)
	}

	var have []string
	for _, c := range spec.Containers {
		if c.Name == pluginContainer {
			continue
		}
		sc := sidecarName(c.Image)
		have = append(have, sc)
		checkSidecarSocket(t, c, sock, vol)
		if sc != "livenessprobe" && argMap(c)["--leader-election"] != "true" {
			t.Errorf("%s runs without --leader-election=true", c.Name)
		}
	}
	if strings.Join(have, ",") != strings.Join(controllerSidecars[driver], ",") {
		t.Errorf("controller sidecars %v, want %v", have, controllerSidecars[driver])
	}
	checkLiveness(t, spec.Containers, plugin)

	// Non-root everywhere in the controller pod.
	for _, c := range spec.Containers {
		if !runsAsNonRoot(spec.SecurityContext, c.SecurityContext) {
			t.Errorf("controller container %s may run as root", c.Name)
		}
		if c.SecurityContext == nil || c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			t.Errorf("controller container %s is privileged or has no securityContext", c.Name)
		}
	}

	for _, p := range checkControllerRBAC(b, dep) {
		t.Error(p)
	}
	checkClusterConfig(t, b, spec, plugin, driver)
	if driver == "rbd" {
		checkControllerSecret(t, b, dep, plugin)
	}
}

// checkNodeSecret: the rbd node plugin registers its node (ControllerPublish
// refuses nodes that never did) with credentials from a Secret of its
// namespace, mounted at --node-secret-dir.
func checkNodeSecret(t reporter, b *bundle, ds *appsv1.DaemonSet, plugin corev1.Container) {
	t.Helper()
	dir := argMap(plugin)["--node-secret-dir"]
	if dir == "" {
		t.Error("rbd node plugin has no --node-secret-dir: ControllerPublish would refuse every node")
		return
	}
	v := volume(t, ds.Spec.Template.Spec.Volumes, mountedVolume(t, plugin, dir))
	if v.Secret == nil {
		t.Fatalf("volume %s at %s is not a Secret", v.Name, dir)
	}
	for _, s := range objectsOf[*corev1.Secret](b) {
		if s.Namespace == ds.Namespace && s.Name == v.Secret.SecretName {
			for _, k := range []string{"userID", "userKey"} {
				if _, ok := s.StringData[k]; !ok {
					t.Errorf("node Secret %s has no %s", s.Name, k)
				}
			}
			return
		}
	}
	t.Errorf("node Secret %s/%s is not in the manifests", ds.Namespace, v.Secret.SecretName)
}

// checkControllerSecret: the rbd controller's own credentials (for calls
// without request secrets) come from a Secret of its namespace, mounted at
// --controller-secret-dir and readable by its non-root user.
func checkControllerSecret(t reporter, b *bundle, dep *appsv1.Deployment, plugin corev1.Container) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	dir := argMap(plugin)["--controller-secret-dir"]
	if dir == "" {
		t.Error("rbd controller has no --controller-secret-dir")
		return
	}
	v := volume(t, spec.Volumes, mountedVolume(t, plugin, dir))
	if v.Secret == nil {
		t.Fatalf("volume %s at %s is not a Secret", v.Name, dir)
	}
	found := false
	for _, s := range objectsOf[*corev1.Secret](b) {
		if s.Namespace == dep.Namespace && s.Name == v.Secret.SecretName {
			found = true
			for _, k := range []string{"userID", "userKey"} {
				if _, ok := s.StringData[k]; !ok {
					t.Errorf("controller Secret %s has no %s", s.Name, k)
				}
			}
		}
	}
	if !found {
		t.Errorf("controller Secret %s/%s is not in the manifests", dep.Namespace, v.Secret.SecretName)
	}
	mode := v.Secret.DefaultMode
	sc := spec.SecurityContext
	if mode != nil && *mode&0o004 == 0 && (sc == nil || sc.FSGroup == nil) {
		t.Error("controller Secret files are not world-readable and the pod sets no fsGroup")
	}
}

func checkNode(t reporter, b *bundle, ds *appsv1.DaemonSet, driver, name string) {
	spec := ds.Spec.Template.Spec
	plugin := container(t, spec.Containers, pluginContainer)
	args := argMap(plugin)
	checkPluginArgs(t, args, "node", driver, name)

	if !spec.HostNetwork {
		t.Error("node plugin must use the host network")
	}
	if spec.HostPID {
		t.Error("node plugin has hostPID, which nothing needs")
	}
	if plugin.SecurityContext == nil || plugin.SecurityContext.Privileged == nil || !*plugin.SecurityContext.Privileged {
		t.Error("node plugin container is not privileged")
	}
	if driver == "rbd" {
		checkNodeSecret(t, b, ds, plugin)
	}
	if driver == "cfs" && ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("cfs node update strategy %s, want OnDelete (FUSE clients die with the container)",
			ds.Spec.UpdateStrategy.Type)
	}

	// The kubelet directory: the one mount with Bidirectional propagation.
	var kubeletDir string
	for _, m := range plugin.VolumeMounts {
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			hp := volume(t, spec.Volumes, m.Name).HostPath
			if hp == nil || hp.Path != m.MountPath {
				t.Errorf("Bidirectional mount %s is not the same host path inside", m.Name)
				continue
			}
			kubeletDir = m.MountPath
		}
	}
	if kubeletDir == "" {
		t.Fatal("no Bidirectional kubelet directory mount on the node plugin")
	}
	for _, host := range []string{"/dev", "/sys", "/lib/modules"} {
		checkHostMount(t, plugin, spec.Volumes, host, host == "/lib/modules")
	}
	if dir := args["--state-dir"]; dir == "" {
		t.Error("node plugin has no --state-dir")
	} else {
		checkHostMount(t, plugin, spec.Volumes, dir, false)
	}

	// Socket: a host directory under the kubelet's plugins folder.
	sock := socketPath(t, args["--endpoint"])
	vol := mountedVolume(t, plugin, path.Dir(sock))
	hp := volume(t, spec.Volumes, vol).HostPath
	wantDir := kubeletDir + "/plugins/" + name
	if hp == nil || hp.Path != wantDir {
		t.Errorf("node socket volume %s is %+v, want host path %s", vol, hp, wantDir)
	}

	registrar := 0
	for _, c := range spec.Containers {
		if c.Name == pluginContainer {
			continue
		}
		checkSidecarSocket(t, c, sock, vol)
		if sidecarName(c.Image) != "csi-node-driver-registrar" {
			continue
		}
		registrar++
		reg := argMap(c)["--kubelet-registration-path"]
		if want := wantDir + "/" + path.Base(sock); reg != want {
			t.Errorf("registrar --kubelet-registration-path %q, want %q", reg, want)
		}
		regVol := mountedVolume(t, c, "/registration")
		if hp := volume(t, spec.Volumes, regVol).HostPath; hp == nil || hp.Path != kubeletDir+"/plugins_registry" {
			t.Errorf("registration volume %+v, want %s/plugins_registry", hp, kubeletDir)
		}
	}
	if registrar != 1 {
		t.Errorf("%d node-driver-registrar containers, want 1", registrar)
	}
	checkLiveness(t, spec.Containers, plugin)
	checkClusterConfig(t, b, spec, plugin, driver)
}

// checkPluginArgs checks the flags our binary gets in one mode.
func checkPluginArgs(t reporter, args map[string]string, mode, driver, name string) {
	t.Helper()
	want := map[string]string{"--mode": mode, "--driver": driver, "--drivername": name, "--nodeid": "$(NODE_NAME)"}
	for k, v := range want {
		if args[k] != v {
			t.Errorf("%s %s=%q, want %q", mode, k, args[k], v)
		}
	}
	if _, err := strconv.Atoi(args["-v"]); err != nil {
		t.Errorf("%s -v=%q is not a level", mode, args["-v"])
	}
	if f := args["--logging-format"]; f != "text" && f != "json" {
		t.Errorf("%s --logging-format=%q", mode, f)
	}
	if _, port, ok := strings.Cut(args["--metrics-address"], ":"); !ok || port == "" {
		t.Errorf("%s --metrics-address=%q", mode, args["--metrics-address"])
	}
	if driver == "cfs" && mode == "node" && !strings.HasPrefix(args["--cfs-client"], "/") {
		t.Errorf("cfs node --cfs-client=%q is not an absolute path", args["--cfs-client"])
	}
}

// checkSidecarSocket: the sidecar dials the plugin's socket through the
// same volume mounted at the same directory.
func checkSidecarSocket(t reporter, c corev1.Container, sock, vol string) {
	t.Helper()
	addr := strings.TrimPrefix(argMap(c)["--csi-address"], "unix://")
	if addr != sock {
		t.Errorf("%s --csi-address %q, plugin listens on %q", c.Name, addr, sock)
		return
	}
	if got := mountedVolume(t, c, path.Dir(sock)); got != vol {
		t.Errorf("%s mounts %s at %s, the plugin mounts %s", c.Name, got, path.Dir(sock), vol)
	}
}

// checkLiveness: the plugin's liveness probe asks the livenessprobe
// sidecar, on the port that sidecar serves.
func checkLiveness(t reporter, containers []corev1.Container, plugin corev1.Container) {
	t.Helper()
	var port string
	for _, c := range containers {
		if sidecarName(c.Image) == "livenessprobe" {
			_, port, _ = strings.Cut(argMap(c)["--http-endpoint"], ":")
		}
	}
	p := plugin.LivenessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != port {
		t.Errorf("plugin liveness probe %+v does not ask the livenessprobe sidecar on port %q", p, port)
	}
}

// checkClusterConfig: the rbd plugin reads --cluster-config from the
// driver's ConfigMap, which lists every clusterID the classes use.
func checkClusterConfig(t reporter, b *bundle, spec corev1.PodSpec, plugin corev1.Container, driver string) {
	t.Helper()
	file := argMap(plugin)["--cluster-config"]
	if driver != "rbd" {
		if file != "" {
			t.Errorf("%s plugin gets --cluster-config", driver)
		}
		return
	}
	if file == "" {
		t.Fatal("rbd plugin has no --cluster-config")
	}
	v := volume(t, spec.Volumes, mountedVolume(t, plugin, path.Dir(file)))
	if v.ConfigMap == nil {
		t.Fatalf("volume %s holding %s is not a ConfigMap", v.Name, file)
	}
	var cm *corev1.ConfigMap
	for _, c := range objectsOf[*corev1.ConfigMap](b) {
		if c.Name == v.ConfigMap.Name {
			cm = c
		}
	}
	if cm == nil {
		t.Fatalf("ConfigMap %s is not in the manifests", v.ConfigMap.Name)
	}
	var clusters []struct {
		ClusterID string   `json:"clusterID"`
		Monitors  []string `json:"monitors"`
	}
	if err := json.Unmarshal([]byte(cm.Data[path.Base(file)]), &clusters); err != nil {
		t.Fatalf("%s/%s: %v", cm.Name, path.Base(file), err)
	}
	ids := map[string]bool{}
	for _, c := range clusters {
		if c.ClusterID == "" || len(c.Monitors) == 0 {
			t.Errorf("cluster entry %+v lacks an ID or monitors", c)
		}
		ids[c.ClusterID] = true
	}
	for _, sc := range objectsOf[*storagev1.StorageClass](b) {
		if id := sc.Parameters["clusterID"]; !ids[id] {
			t.Errorf("StorageClass %s uses clusterID %q, not in %s", sc.Name, id, cm.Name)
		}
	}
}

// checkClasses: StorageClasses and VolumeSnapshotClasses name our driver
// and the Secrets they name exist with the keys the driver reads.
func checkClasses(t reporter, b *bundle, driver, name string) {
	secrets := map[string]*corev1.Secret{}
	for _, s := range objectsOf[*corev1.Secret](b) {
		secrets[s.Namespace+"/"+s.Name] = s
	}
	keys := map[string][]string{"rbd": {"userID", "userKey"}, "cfs": {"owner"}}
	checkSecret := func(owner, ns, secretName string) {
		s, ok := secrets[ns+"/"+secretName]
		if !ok {
			t.Errorf("%s names Secret %s/%s, which the manifests lack", owner, ns, secretName)
			return
		}
		for _, k := range keys[driver] {
			if _, ok := s.StringData[k]; !ok {
				t.Errorf("Secret %s/%s has no %s", ns, secretName, k)
			}
		}
	}

	for _, sc := range objectsOf[*storagev1.StorageClass](b) {
		if sc.Provisioner != name {
			t.Errorf("StorageClass %s provisioner %q, want %q", sc.Name, sc.Provisioner, name)
		}
		for k := range sc.Parameters {
			if strings.HasPrefix(k, reservedPrefix) && !reservedKeys[k] {
				t.Errorf("StorageClass %s: the provisioner refuses the reserved key %s", sc.Name, k)
			}
		}
		for _, op := range []string{"provisioner", "node-stage", "controller-expand", "controller-publish", "node-publish"} {
			n := sc.Parameters[reservedPrefix+op+"-secret-name"]
			if n != "" {
				checkSecret("StorageClass "+sc.Name, sc.Parameters[reservedPrefix+op+"-secret-namespace"], n)
			}
		}
	}
	for _, vsc := range objectsOf[*volumeSnapshotClass](b) {
		if vsc.Driver != name {
			t.Errorf("VolumeSnapshotClass %s driver %q, want %q", vsc.Name, vsc.Driver, name)
		}
		checkSecret("VolumeSnapshotClass "+vsc.Name,
			vsc.Parameters["csi.storage.k8s.io/snapshotter-secret-namespace"],
			vsc.Parameters["csi.storage.k8s.io/snapshotter-secret-name"])
	}
}

// checkImages: every container image is pinned to a release tag; sidecars
// come from the kubernetes-csi project's registry.
func checkImages(t reporter, b *bundle) {
	for _, spec := range podSpecs(b) {
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			if !pinnedImage.MatchString(c.Image) {
				t.Errorf("container %s image %q is not pinned to a release tag", c.Name, c.Image)
			}
			if c.Name != pluginContainer && !strings.HasPrefix(c.Image, "registry.k8s.io/sig-storage/") {
				t.Errorf("sidecar %s image %q is not from registry.k8s.io/sig-storage", c.Name, c.Image)
			}
		}
	}
}

// checkServiceAccounts: pods run under ServiceAccounts of the manifests;
// the node's has no token and no RBAC at all.
func checkServiceAccounts(t reporter, b *bundle, dep *appsv1.Deployment, ds *appsv1.DaemonSet) {
	sas := map[string]*corev1.ServiceAccount{}
	for _, sa := range objectsOf[*corev1.ServiceAccount](b) {
		sas[sa.Namespace+"/"+sa.Name] = sa
	}
	for _, pod := range []struct {
		ns   string
		spec corev1.PodSpec
	}{{dep.Namespace, dep.Spec.Template.Spec}, {ds.Namespace, ds.Spec.Template.Spec}} {
		if _, ok := sas[pod.ns+"/"+pod.spec.ServiceAccountName]; !ok {
			t.Errorf("ServiceAccount %s/%s is not in the manifests", pod.ns, pod.spec.ServiceAccountName)
		}
	}

	node := ds.Spec.Template.Spec
	if node.AutomountServiceAccountToken == nil || *node.AutomountServiceAccountToken {
		t.Error("node pod mounts a ServiceAccount token it never uses")
	}
	cluster, namespaced, _ := grantsOf(b, ds.Namespace, node.ServiceAccountName)
	if len(cluster)+len(namespaced) > 0 {
		t.Errorf("node ServiceAccount is granted %d accesses, want none", len(cluster)+len(namespaced))
	}
	for _, crb := range objectsOf[*rbacv1.ClusterRoleBinding](b) {
		if !bindsSA(crb.Subjects, dep.Namespace, dep.Spec.Template.Spec.ServiceAccountName) {
			t.Errorf("ClusterRoleBinding %s binds something other than the controller", crb.Name)
		}
	}
}

func podSpecs(b *bundle) []corev1.PodSpec {
	var out []corev1.PodSpec
	for _, d := range objectsOf[*appsv1.Deployment](b) {
		out = append(out, d.Spec.Template.Spec)
	}
	for _, d := range objectsOf[*appsv1.DaemonSet](b) {
		out = append(out, d.Spec.Template.Spec)
	}
	return out
}

func container(t reporter, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func volume(t reporter, vs []corev1.Volume, name string) corev1.Volume {
	t.Helper()
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

// mountedVolume names the volume c mounts exactly at dir.
func mountedVolume(t reporter, c corev1.Container, dir string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			return m.Name
		}
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, dir)
	return ""
}

func checkHostMount(t reporter, c corev1.Container, vs []corev1.Volume, dir string, readOnly bool) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		if hp := volume(t, vs, m.Name).HostPath; hp == nil || hp.Path != dir {
			t.Errorf("%s is not the host's %s", m.Name, dir)
		}
		if readOnly && !m.ReadOnly {
			t.Errorf("host %s is mounted read-write", dir)
		}
		return
	}
	t.Errorf("container %s does not mount the host's %s", c.Name, dir)
}

func socketPath(t reporter, endpoint string) string {
	t.Helper()
	p, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || !path.IsAbs(p) {
		t.Fatalf("endpoint %q is not unix:///absolute/path", endpoint)
	}
	return p
}

func runsAsNonRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	if c != nil && c.RunAsNonRoot != nil {
		return *c.RunAsNonRoot && (c.RunAsUser == nil || *c.RunAsUser != 0)
	}
	return pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot &&
		pod.RunAsUser != nil && *pod.RunAsUser != 0 && (c == nil || c.RunAsUser == nil || *c.RunAsUser != 0)
}

// TestPlainManifestsCrossCheck runs every cross-check on the manifests an
// admin applies with kubectl.
func TestPlainManifestsCrossCheck(t *testing.T) {
	for _, driver := range manifests.Drivers {
		t.Run(driver, func(t *testing.T) {
			b := plainBundle(t, driver)
			crossCheck(t, b, driver)

			dep := objectsOf[*appsv1.Deployment](b)[0]
			if r := dep.Spec.Replicas; r == nil || *r < 2 {
				t.Errorf("controller replicas %v, want 2", r)
			}
		})
	}
}

// TestDefaultDriverNames: the plain manifests use our own CSI names.
func TestDefaultDriverNames(t *testing.T) {
	want := map[string]string{"rbd": "rbd.csi.tkestor.io", "cfs": "cfs.csi.tkestor.io"}
	for _, driver := range manifests.Drivers {
		d := objectsOf[*storagev1.CSIDriver](plainBundle(t, driver))
		if len(d) != 1 || d[0].Name != want[driver] {
			t.Errorf("%s CSIDriver %v, want %s", driver, d, want[driver])
		}
	}
}

// seedClasses are the guide's two StorageClasses (practice guide of the
// design brief): everything but the provisioner must be kept. The guide
// prints imageFormat as an escaped \"2\"; the value meant is "2".
var seedClasses = map[string]struct { //nolint:gochecknoglobals // constant table
	name          string
	reclaimPolicy string
	parameters    map[string]string
}{
	"rbd": {
		name:          "global-storageclass",
		reclaimPolicy: "Delete",
		parameters: map[string]string{
			"clusterID":     "rook-ceph",
			"pool":          "replicapool",
			"imageFormat":   "2",
			"imageFeatures": "layering",
			"csi.storage.k8s.io/provisioner-secret-name":      "rook-csi-rbd-provisioner",
			"csi.storage.k8s.io/provisioner-secret-namespace": "rook-ceph",
			"csi.storage.k8s.io/node-stage-secret-name":       "rook-csi-rbd-node",
			"csi.storage.k8s.io/node-stage-secret-namespace":  "rook-ceph",
			"csi.storage.k8s.io/fstype":                       "ext4",
		},
	},
	"cfs": {
		name:          "chubaofs-sc",
		reclaimPolicy: "Delete",
		parameters: map[string]string{
			"masterAddr": "172.21.64.14:32102",
			"owner":      "csiuser",
			"consulAddr": "172.21.64.14:30831",
			"logLevel":   "debug",
		},
	},
}

// TestSeedStorageClassesKept: the example classes are the guide's, with
// only the provisioner changed.
func TestSeedStorageClassesKept(t *testing.T) {
	for _, driver := range manifests.Drivers {
		t.Run(driver, func(t *testing.T) {
			seed := seedClasses[driver]
			scs := objectsOf[*storagev1.StorageClass](plainBundle(t, driver))
			if len(scs) != 1 {
				t.Fatalf("%d StorageClasses, want 1", len(scs))
			}
			sc := scs[0]
			if sc.Name != seed.name || sc.ReclaimPolicy == nil || string(*sc.ReclaimPolicy) != seed.reclaimPolicy {
				t.Errorf("class %s reclaim %v, want %s %s", sc.Name, sc.ReclaimPolicy, seed.name, seed.reclaimPolicy)
			}
			if sc.AllowVolumeExpansion != nil || sc.VolumeBindingMode != nil || len(sc.MountOptions) > 0 || len(sc.Labels) > 0 {
				t.Error("class has fields the guide's class does not")
			}
			if len(sc.Parameters) != len(seed.parameters) {
				t.Errorf("parameters %v, want %v", sc.Parameters, seed.parameters)
			}
			for k, v := range seed.parameters {
				if sc.Parameters[k] != v {
					t.Errorf("parameter %s=%q, want %q", k, sc.Parameters[k], v)
				}
			}
		})
	}
}

// TestNodeHostPortsDistinct: both node plugins use the host network, so
// no two containers of the two DaemonSets may listen on one port.
func TestNodeHostPortsDistinct(t *testing.T) {
	seen := map[int32]string{}
	for _, driver := range manifests.Drivers {
		for _, ds := range objectsOf[*appsv1.DaemonSet](plainBundle(t, driver)) {
			for _, c := range ds.Spec.Template.Spec.Containers {
				for _, p := range c.Ports {
					who := driver + "/" + c.Name + "/" + p.Name
					if other, dup := seen[p.ContainerPort]; dup {
						t.Errorf("port %d used by %s and %s", p.ContainerPort, other, who)
					}
					seen[p.ContainerPort] = who
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("node plugins declare no ports")
	}
}

// TestSidecarVersionsMatchRBACTable: the sidecar majors pinned in the
// manifests are the ones the RBAC table was written for.
func TestSidecarVersionsMatchRBACTable(t *testing.T) {
	for _, driver := range manifests.Drivers {
		for _, spec := range podSpecs(plainBundle(t, driver)) {
			for _, c := range spec.Containers {
				if c.Name == pluginContainer {
					continue
				}
				entry, ok := sidecarTable[sidecarName(c.Image)]
				if !ok {
					t.Errorf("sidecar image %s is not in the RBAC table", c.Image)
					continue
				}
				if !strings.HasPrefix(imageTag(c.Image), entry.major+".") {
					t.Errorf("%s: RBAC table written for %s.x; check the sidecar's rbac.yaml and update it",
						c.Image, entry.major)
				}
			}
		}
	}
}

// TestDockerfilePinned: the build and run stages use pinned base images,
// cgo and go-ceph's pacific tag, and check the binary's libraries.
func TestDockerfilePinned(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	args := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ARG\s+(\w+)=(\S+)`).FindAllStringSubmatch(text, -1) {
		args[m[1]] = m[2]
	}

	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 {
		t.Fatalf("%d FROM lines, want a build and a run stage", len(froms))
	}
	pinned := regexp.MustCompile(`^(golang:1\.26\.[0-9]+-bookworm|debian:bookworm-[0-9]{8}-slim|` +
		`[a-z0-9./-]+:v[0-9]+\.[0-9]+\.[0-9]+)(@sha256:[0-9a-f]{64})?$`)
	stages := map[string]bool{}
	for _, m := range froms {
		ref := os.Expand(m[1], func(k string) string { return args[k] })
		if !pinned.MatchString(ref) {
			t.Errorf("FROM %s (%s) is not pinned to a release", m[1], ref)
		}
		stages[strings.SplitN(ref, ":", 2)[0]] = true
	}
	if !stages["golang"] || !stages["debian"] {
		t.Errorf("stages %v: want a golang build stage and a debian run stage", stages)
	}
	for _, want := range []string{"CGO_ENABLED=1", "-tags pacific", "ldd", "librados-dev", "librbd-dev",
		"ceph-common", "rbd-nbd", "rbd-fuse", "fuse3", "e2fsprogs", "xfsprogs", "util-linux"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
