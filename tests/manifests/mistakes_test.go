package manifests_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// recorder collects what the checks report; Fatal stops the check.
type recorder struct {
	errs []string
}

var errStop = errors.New("check stopped")

func (r *recorder) Helper()                      {}
func (r *recorder) Error(args ...any)            { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *recorder) Errorf(f string, args ...any) { r.errs = append(r.errs, fmt.Sprintf(f, args...)) }
func (r *recorder) Fatal(args ...any)            { r.Error(args...); panic(errStop) }
func (r *recorder) Fatalf(f string, args ...any) { r.Errorf(f, args...); panic(errStop) }

// recordCrossCheck runs crossCheck and returns what it reported.
func recordCrossCheck(b *bundle, driver string) (errs []string) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil && p != errStop {
			panic(p)
		}
		errs = r.errs
	}()
	crossCheck(r, b, driver)
	return r.errs
}

func editContainer(b *bundle, name string, edit func(c *corev1.Container)) {
	for _, spec := range podSpecPtrs(b) {
		for i := range spec.Containers {
			if spec.Containers[i].Name == name {
				edit(&spec.Containers[i])
			}
		}
	}
}

func podSpecPtrs(b *bundle) []*corev1.PodSpec {
	var out []*corev1.PodSpec
	for _, d := range objectsOf[*appsv1.Deployment](b) {
		out = append(out, &d.Spec.Template.Spec)
	}
	for _, d := range objectsOf[*appsv1.DaemonSet](b) {
		out = append(out, &d.Spec.Template.Spec)
	}
	return out
}

func replaceArg(c *corev1.Container, flag, value string) {
	for i, a := range c.Args {
		if strings.HasPrefix(a, flag+"=") {
			c.Args[i] = flag + "=" + value
		}
	}
}

func dropVerb(b *bundle, roleSuffix, resource, verb string) {
	for _, r := range objectsOf[*rbacv1.ClusterRole](b) {
		if !strings.HasSuffix(r.Name, roleSuffix) {
			continue
		}
		for i, rule := range r.Rules {
			if len(rule.Resources) == 1 && rule.Resources[0] == resource {
				var keep []string
				for _, v := range rule.Verbs {
					if v != verb {
						keep = append(keep, v)
					}
				}
				r.Rules[i].Verbs = keep
			}
		}
	}
}

// TestCrossCheckCatchesMistakes breaks the plain manifests one way at a
// time and expects the cross-checks to say so: a check that never fails
// proves nothing.
func TestCrossCheckCatchesMistakes(t *testing.T) {
	tests := []struct {
		name   string
		driver string
		breakf func(b *bundle)
		want   string
	}{
		{
			name: "registrar registers another socket", driver: "rbd",
			breakf: func(b *bundle) {
				editContainer(b, "csi-node-driver-registrar", func(c *corev1.Container) {
					replaceArg(c, "--kubelet-registration-path", "/var/lib/kubelet/plugins/other/csi.sock")
				})
			},
			want: "--kubelet-registration-path",
		},
		{
			name: "sidecar dials another socket", driver: "cfs",
			breakf: func(b *bundle) {
				editContainer(b, "csi-attacher", func(c *corev1.Container) { replaceArg(c, "--csi-address", "/run/csi/socket") })
			},
			want: "--csi-address",
		},
		{
			name: "plugin serves another driver name", driver: "rbd",
			breakf: func(b *bundle) {
				editContainer(b, pluginContainer, func(c *corev1.Container) { replaceArg(c, "--drivername", "rbd.csi.ceph.com") })
			},
			want: "--drivername",
		},
		{
			name: "class names another provisioner", driver: "cfs",
			breakf: func(b *bundle) {
				objectsOf[*storagev1.StorageClass](b)[0].Provisioner = "csi.chubaofs.com"
			},
			want: "provisioner",
		},
		{
			name: "attacher may not patch attachment status", driver: "rbd",
			breakf: func(b *bundle) { dropVerb(b, "-attacher", "volumeattachments/status", "patch") },
			want:   "csi-attacher needs patch storage.k8s.io/volumeattachments/status",
		},
		{
			name: "provisioner may not delete PVs", driver: "cfs",
			breakf: func(b *bundle) { dropVerb(b, "-provisioner", "persistentvolumes", "delete") },
			want:   "csi-provisioner needs delete core/persistentvolumes",
		},
		{
			name: "resizer handles in-use errors without pod access", driver: "rbd",
			breakf: func(b *bundle) {
				editContainer(b, "csi-resizer", func(c *corev1.Container) { replaceArg(c, "--handle-volume-inuse-error", "true") })
			},
			want: "csi-resizer needs list core/pods",
		},
		{
			name: "more than any sidecar needs", driver: "rbd",
			breakf: func(b *bundle) {
				r := objectsOf[*rbacv1.ClusterRole](b)[0]
				r.Rules = append(r.Rules, rbacv1.PolicyRule{
					APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"},
				})
			},
			want: "granted cluster-wide but no sidecar needs it",
		},
		{
			name: "floating image", driver: "cfs",
			breakf: func(b *bundle) {
				editContainer(b, "liveness-probe", func(c *corev1.Container) {
					c.Image = "registry.k8s.io/sig-storage/livenessprobe:latest"
				})
			},
			want: "not pinned",
		},
		{
			name: "cfs node plugins roll on update", driver: "cfs",
			breakf: func(b *bundle) {
				objectsOf[*appsv1.DaemonSet](b)[0].Spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
			},
			want: "OnDelete",
		},
		{
			name: "node plugin without mount propagation", driver: "rbd",
			breakf: func(b *bundle) {
				ds := objectsOf[*appsv1.DaemonSet](b)[0]
				for i := range ds.Spec.Template.Spec.Containers {
					for j := range ds.Spec.Template.Spec.Containers[i].VolumeMounts {
						ds.Spec.Template.Spec.Containers[i].VolumeMounts[j].MountPropagation = nil
					}
				}
			},
			want: "Bidirectional",
		},
		{
			name: "controller runs as root", driver: "rbd",
			breakf: func(b *bundle) {
				objectsOf[*appsv1.Deployment](b)[0].Spec.Template.Spec.SecurityContext = nil
			},
			want: "may run as root",
		},
		{
			name: "class uses a cluster the config lacks", driver: "rbd",
			breakf: func(b *bundle) {
				objectsOf[*storagev1.StorageClass](b)[0].Parameters["clusterID"] = "other"
			},
			want: "clusterID",
		},
		{
			name: "class names a missing secret", driver: "rbd",
			breakf: func(b *bundle) {
				objectsOf[*storagev1.StorageClass](b)[0].Parameters["csi.storage.k8s.io/node-stage-secret-name"] = "nope"
			},
			want: "lack",
		},
		{
			name: "rbd controller without its own credentials", driver: "rbd",
			breakf: func(b *bundle) {
				editContainer(b, pluginContainer, func(c *corev1.Container) {
					replaceArg(c, "--controller-secret-dir", "/nowhere")
				})
			},
			want: "mounts nothing at /nowhere",
		},
		{
			name: "node ServiceAccount gets RBAC", driver: "cfs",
			breakf: func(b *bundle) {
				ds := objectsOf[*appsv1.DaemonSet](b)[0]
				crb := objectsOf[*rbacv1.ClusterRoleBinding](b)[0]
				crb.Subjects = append(crb.Subjects, rbacv1.Subject{
					Kind: "ServiceAccount", Name: ds.Spec.Template.Spec.ServiceAccountName, Namespace: ds.Namespace,
				})
			},
			want: "node ServiceAccount is granted",
		},
	}

	for _, driver := range []string{"rbd", "cfs"} {
		if errs := recordCrossCheck(plainBundle(t, driver), driver); len(errs) > 0 {
			t.Fatalf("unbroken %s manifests fail the cross-check: %v", driver, errs)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := plainBundle(t, tc.driver)
			tc.breakf(b)
			errs := recordCrossCheck(b, tc.driver)
			for _, e := range errs {
				if strings.Contains(e, tc.want) {
					return
				}
			}
			t.Errorf("no report containing %q; got %v", tc.want, errs)
		})
	}
}
