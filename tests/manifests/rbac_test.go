package manifests_test

import (
	"fmt"
	"path"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// access is one verb on one resource of one API group.
type access struct {
	group, resource, verb string
}

func (a access) String() string {
	g := a.group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s %s/%s", a.verb, g, a.resource)
}

// grant expands a rule-like triple into single accesses.
func grant(group string, resources []string, verbs ...string) []access {
	var out []access
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, access{group: group, resource: r, verb: v})
		}
	}
	return out
}

func res(names ...string) []string { return names }

// leaderElection is what every sidecar's leader election does with Leases,
// in the namespace of the controller.
//
//nolint:gochecknoglobals // constant
var leaderElection = grant("coordination.k8s.io", res("leases"),
	"get", "list", "watch", "create", "update", "patch", "delete")

// sidecarRBAC records, for a sidecar image at the major version the table
// was written for, what it calls on the API server: cluster-wide needs,
// needs in its own namespace (leader election), and accesses it may use
// when a class asks for them (allowed, not required).
type sidecarRBAC struct {
	major      string
	cluster    func(args map[string]string) []access
	namespaced []access
	optional   []access
}

// sidecarTable is written from each sidecar's own deploy/kubernetes/rbac.yaml
// and flags at the pinned versions (provisioner v5.3, attacher v4.9,
// resizer v1.14, snapshotter v8.3). A major version bump fails
// TestSidecarVersionsMatchRBACTable until the table is checked again.
var sidecarTable = map[string]sidecarRBAC{ //nolint:gochecknoglobals // constant table
	"csi-provisioner": {
		major: "v5",
		cluster: func(map[string]string) []access {
			return concat(
				grant("", res("persistentvolumes"), "get", "list", "watch", "create", "delete", "patch"),
				grant("", res("persistentvolumeclaims"), "get", "list", "watch", "update"),
				grant("storage.k8s.io", res("storageclasses"), "get", "list", "watch"),
				grant("", res("events"), "list", "watch", "create", "update", "patch"),
				grant("snapshot.storage.k8s.io", res("volumesnapshots", "volumesnapshotcontents"), "get", "list"),
				grant("storage.k8s.io", res("csinodes"), "get", "list", "watch"),
				grant("", res("nodes"), "get", "list", "watch"),
				grant("storage.k8s.io", res("volumeattachments"), "get", "list", "watch"),
				// The seed classes name provisioner secrets.
				grant("", res("secrets"), "get"),
			)
		},
		namespaced: leaderElection,
	},
	"csi-attacher": {
		major: "v4",
		cluster: func(map[string]string) []access {
			return concat(
				grant("", res("persistentvolumes"), "get", "list", "watch", "patch"),
				grant("storage.k8s.io", res("csinodes"), "get", "list", "watch"),
				grant("storage.k8s.io", res("volumeattachments"), "get", "list", "watch", "patch"),
				grant("storage.k8s.io", res("volumeattachments/status"), "patch"),
			)
		},
		namespaced: leaderElection,
		optional:   grant("", res("secrets"), "get"),
	},
	"csi-resizer": {
		major: "v1",
		cluster: func(args map[string]string) []access {
			out := concat(
				grant("", res("persistentvolumes"), "get", "list", "watch", "patch"),
				grant("", res("persistentvolumeclaims"), "get", "list", "watch"),
				grant("", res("persistentvolumeclaims/status"), "patch"),
				grant("", res("events"), "list", "watch", "create", "update", "patch"),
				grant("", res("secrets"), "get"),
			)
			// Handling "volume in use" errors watches pods.
			if args["--handle-volume-inuse-error"] != "false" {
				out = append(out, grant("", res("pods"), "get", "list", "watch")...)
			}
			return out
		},
		namespaced: leaderElection,
	},
	"csi-snapshotter": {
		major: "v8",
		cluster: func(map[string]string) []access {
			return concat(
				grant("", res("events"), "list", "watch", "create", "update", "patch"),
				grant("snapshot.storage.k8s.io", res("volumesnapshotclasses"), "get", "list", "watch"),
				grant("snapshot.storage.k8s.io", res("volumesnapshotcontents"),
					"create", "get", "list", "watch", "update", "delete", "patch"),
				grant("snapshot.storage.k8s.io", res("volumesnapshotcontents/status"), "update", "patch"),
				grant("", res("secrets"), "get"),
			)
		},
		namespaced: leaderElection,
	},
	// The liveness probe and the registrar only talk to CSI and kubelet
	// sockets.
	"livenessprobe":             {major: "v2"},
	"csi-node-driver-registrar": {major: "v2"},
}

func concat(lists ...[]access) []access {
	var out []access
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// sidecarName is the image's repository base name ("csi-provisioner").
func sidecarName(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo)
}

// imageTag is the tag of an image reference.
func imageTag(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		return repo[i+1:]
	}
	return ""
}

// grantsOf collects what a ServiceAccount is granted in b: cluster-wide
// through ClusterRoleBindings, and in its namespace through RoleBindings.
// It also reports any wildcard, which least privilege rules out.
func grantsOf(b *bundle, ns, sa string) (cluster, namespaced map[access]bool, problems []string) {
	cluster, namespaced = map[access]bool{}, map[access]bool{}
	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, r := range objectsOf[*rbacv1.ClusterRole](b) {
		clusterRoles[r.Name] = r
	}
	roles := map[string]*rbacv1.Role{}
	for _, r := range objectsOf[*rbacv1.Role](b) {
		roles[r.Namespace+"/"+r.Name] = r
	}

	add := func(into map[access]bool, rules []rbacv1.PolicyRule, owner string) {
		for _, rule := range rules {
			if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				problems = append(problems, owner+": unexpected resourceNames or nonResourceURLs")
			}
			for _, g := range rule.APIGroups {
				for _, r := range rule.Resources {
					for _, v := range rule.Verbs {
						if g == "*" || r == "*" || v == "*" {
							problems = append(problems, owner+": wildcard in a rule")
						}
						into[access{group: g, resource: r, verb: v}] = true
					}
				}
			}
		}
	}

	for _, crb := range objectsOf[*rbacv1.ClusterRoleBinding](b) {
		if !bindsSA(crb.Subjects, ns, sa) {
			continue
		}
		role, ok := clusterRoles[crb.RoleRef.Name]
		if crb.RoleRef.Kind != "ClusterRole" || !ok {
			problems = append(problems, "ClusterRoleBinding "+crb.Name+" refers to a missing ClusterRole")
			continue
		}
		add(cluster, role.Rules, "ClusterRole "+role.Name)
	}
	for _, rb := range objectsOf[*rbacv1.RoleBinding](b) {
		if rb.Namespace != ns || !bindsSA(rb.Subjects, ns, sa) {
			continue
		}
		role, ok := roles[ns+"/"+rb.RoleRef.Name]
		if rb.RoleRef.Kind != "Role" || !ok {
			problems = append(problems, "RoleBinding "+rb.Name+" refers to a missing Role")
			continue
		}
		add(namespaced, role.Rules, "Role "+role.Name)
	}
	return cluster, namespaced, problems
}

func bindsSA(subjects []rbacv1.Subject, ns, sa string) bool {
	for _, s := range subjects {
		if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns {
			return true
		}
	}
	return false
}

// checkControllerRBAC returns what is wrong with the RBAC of a controller
// Deployment: a sidecar missing an access it needs, or an access granted
// that no sidecar of the pod needs (least privilege).
func checkControllerRBAC(b *bundle, dep *appsv1.Deployment) []string {
	ns, sa := dep.Namespace, dep.Spec.Template.Spec.ServiceAccountName
	cluster, namespaced, problems := grantsOf(b, ns, sa)

	neededCluster, neededNS, allowed := map[access]bool{}, map[access]bool{}, map[access]bool{}
	for _, c := range dep.Spec.Template.Spec.Containers {
		name := sidecarName(c.Image)
		entry, known := sidecarTable[name]
		if !known {
			continue
		}
		args := argMap(c)
		if entry.cluster != nil {
			for _, a := range entry.cluster(args) {
				neededCluster[a] = true
				if !cluster[a] {
					problems = append(problems, fmt.Sprintf("%s needs %s cluster-wide", name, a))
				}
			}
		}
		for _, a := range entry.namespaced {
			neededNS[a] = true
			if !namespaced[a] && !cluster[a] {
				problems = append(problems, fmt.Sprintf("%s needs %s in %s", name, a, ns))
			}
		}
		for _, a := range entry.optional {
			allowed[a] = true
		}
	}

	problems = append(problems, unneeded(cluster, neededCluster, allowed, "cluster-wide")...)
	problems = append(problems, unneeded(namespaced, neededNS, allowed, "in "+ns)...)
	return problems
}

func unneeded(granted, needed, allowed map[access]bool, where string) []string {
	var out []string
	for a := range granted {
		if !needed[a] && !allowed[a] {
			out = append(out, fmt.Sprintf("%s granted %s but no sidecar needs it", a, where))
		}
	}
	sort.Strings(out)
	return out
}

// argMap parses a container's "--flag=value" arguments.
func argMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v = "true"
		}
		m[k] = v
	}
	return m
}
