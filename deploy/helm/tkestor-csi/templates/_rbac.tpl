{{/*
ServiceAccounts and RBAC. Every controller sidecar runs under the
controller ServiceAccount, but each gets its own ClusterRole holding only
what that sidecar (at the pinned version) calls, so a sidecar can be
upgraded or dropped with its rules. The node plugin needs no API access.
Called with dict root/name.
*/}}

{{- define "tkestor-csi.serviceAccounts" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $node := dict "root" .root "name" .name "component" "node" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "tkestor-csi.name" $ctrl }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
---
# The node plugin and its sidecars never call the Kubernetes API (the
# registrar talks to the kubelet over a socket), so no token is mounted.
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "tkestor-csi.name" $node }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tkestor-csi.labels" $node | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{/* ClusterRoleBinding of one sidecar's ClusterRole to the controller SA. */}}
{{- define "tkestor-csi.sidecarBinding" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $role := dict "root" .root "name" .name "component" .sidecar -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
subjects:
  - kind: ServiceAccount
    name: {{ include "tkestor-csi.name" $ctrl }}
    namespace: {{ .root.Release.Namespace }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ include "tkestor-csi.name" $role }}
{{- end -}}

{{- define "tkestor-csi.rbac.provisioner" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $role := dict "root" .root "name" .name "component" "provisioner" -}}
# external-provisioner: creates and deletes PVs for claims of our
# StorageClasses.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
rules:
  # patch: the deletion-protection finalizer it keeps on PVs it provisioned.
  - apiGroups: [""]
    resources: ["persistentvolumes"]
    verbs: ["get", "list", "watch", "create", "delete", "patch"]
  - apiGroups: [""]
    resources: ["persistentvolumeclaims"]
    verbs: ["get", "list", "watch", "update"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["storageclasses"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["list", "watch", "create", "update", "patch"]
  # Claims restored from a VolumeSnapshot.
  - apiGroups: ["snapshot.storage.k8s.io"]
    resources: ["volumesnapshots", "volumesnapshotcontents"]
    verbs: ["get", "list"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["csinodes"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["get", "list", "watch"]
  # Our drivers publish volumes (attachRequired), so the provisioner waits
  # for VolumeAttachments to go before it deletes a volume.
  - apiGroups: ["storage.k8s.io"]
    resources: ["volumeattachments"]
    verbs: ["get", "list", "watch"]
  # The provisioner/deleter secrets named by the StorageClass.
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
---
{{ include "tkestor-csi.sidecarBinding" (merge (dict "sidecar" "provisioner") .) }}
{{- end -}}

{{- define "tkestor-csi.rbac.attacher" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $role := dict "root" .root "name" .name "component" "attacher" -}}
# external-attacher: turns VolumeAttachments into ControllerPublish and
# ControllerUnpublish calls.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["persistentvolumes"]
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["csinodes"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["volumeattachments"]
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["volumeattachments/status"]
    verbs: ["patch"]
  {{- if .root.Values.attacherReadsSecrets }}
  # controller-publish secrets named by a StorageClass.
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
  {{- end }}
---
{{ include "tkestor-csi.sidecarBinding" (merge (dict "sidecar" "attacher") .) }}
{{- end -}}

{{- define "tkestor-csi.rbac.resizer" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $role := dict "root" .root "name" .name "component" "resizer" -}}
# external-resizer: turns claim size changes into ControllerExpandVolume.
# It runs with --handle-volume-inuse-error=false (both drivers expand
# online), so it does not need to watch pods.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["persistentvolumes"]
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: [""]
    resources: ["persistentvolumeclaims"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["persistentvolumeclaims/status"]
    verbs: ["patch"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["list", "watch", "create", "update", "patch"]
  # controller-expand secrets named by a StorageClass.
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
---
{{ include "tkestor-csi.sidecarBinding" (merge (dict "sidecar" "resizer") .) }}
{{- end -}}

{{- define "tkestor-csi.rbac.snapshotter" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $role := dict "root" .root "name" .name "component" "snapshotter" -}}
# external-snapshotter sidecar: turns VolumeSnapshotContents into
# CreateSnapshot and DeleteSnapshot. Group snapshots are not enabled.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["list", "watch", "create", "update", "patch"]
  - apiGroups: ["snapshot.storage.k8s.io"]
    resources: ["volumesnapshotclasses"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["snapshot.storage.k8s.io"]
    resources: ["volumesnapshotcontents"]
    verbs: ["get", "list", "watch", "create", "update", "delete", "patch"]
  - apiGroups: ["snapshot.storage.k8s.io"]
    resources: ["volumesnapshotcontents/status"]
    verbs: ["update", "patch"]
  # snapshotter secrets named by the VolumeSnapshotClass.
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
---
{{ include "tkestor-csi.sidecarBinding" (merge (dict "sidecar" "snapshotter") .) }}
{{- end -}}

{{- define "tkestor-csi.rbac.leaderElection" -}}
{{- $ctrl := dict "root" .root "name" .name "component" "controller" -}}
{{- $role := dict "root" .root "name" .name "component" "leader-election" -}}
# Leader election of every controller sidecar (Leases in this namespace
# only): two controller replicas run, one of each sidecar acts.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "tkestor-csi.name" $role }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
subjects:
  - kind: ServiceAccount
    name: {{ include "tkestor-csi.name" $ctrl }}
    namespace: {{ .root.Release.Namespace }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "tkestor-csi.name" $role }}
{{- end -}}
