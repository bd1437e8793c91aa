{{/*
Helpers shared by the rbd and cfs templates. Driver templates call the
named templates with a dict: root (the chart's top-level context) and name
("rbd" or "cfs"); the driver's values are then `index .root.Values .name`.
*/}}

{{/* Prefix of every object name. */}}
{{- define "tkestor-csi.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of one driver's component: <fullname>-<driver>-<component>. */}}
{{- define "tkestor-csi.name" -}}
{{- printf "%s-%s-%s" (include "tkestor-csi.fullname" .root) .name .component -}}
{{- end -}}

{{/* Labels that select the pods of one driver component. */}}
{{- define "tkestor-csi.selectorLabels" -}}
app.kubernetes.io/name: tkestor-csi
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}-{{ .component }}
{{- end -}}

{{/* Labels of every object of one driver. */}}
{{- define "tkestor-csi.labels" -}}
{{ include "tkestor-csi.selectorLabels" . }}
app.kubernetes.io/part-of: tkestor-csi
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end -}}

{{/*
An image reference from {repository, tag}. A missing, floating or "latest"
tag fails the render: every image must be pinned.
*/}}
{{- define "tkestor-csi.image" -}}
{{- if or (not .tag) (eq (toString .tag) "latest") -}}
{{- fail (printf "image %s needs a pinned tag" .repository) -}}
{{- end -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* Socket directory of a node plugin on the host. */}}
{{- define "tkestor-csi.pluginDir" -}}
{{- $d := index .root.Values .name -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .root.Values.kubeletDir) $d.driverName -}}
{{- end -}}

{{/* Security context of a sidecar: no privileges, read-only root. */}}
{{- define "tkestor-csi.sidecarSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end -}}

{{/* The ceph-csi style cluster list of the rbd driver. */}}
{{- define "tkestor-csi.rbdClusterConfig" -}}
{{- toPrettyJson .Values.rbd.clusterConfig -}}
{{- end -}}
