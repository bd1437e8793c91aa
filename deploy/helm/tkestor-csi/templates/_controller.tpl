{{/*
Controller Deployment of one driver (dict root/name). The plugin and the
sidecars share the CSI socket through an emptyDir; every sidecar runs with
leader election, so of the replicas exactly one of each acts at a time.
*/}}
{{- define "tkestor-csi.controller" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $name := .name -}}
{{- $d := index $v $name -}}
{{- $ctrl := dict "root" $root "name" $name "component" "controller" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "tkestor-csi.name" $ctrl }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "tkestor-csi.labels" $ctrl | nindent 4 }}
spec:
  replicas: {{ $v.controller.replicas }}
  selector:
    matchLabels:
      {{- include "tkestor-csi.selectorLabels" $ctrl | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "tkestor-csi.labels" $ctrl | nindent 8 }}
      {{- if eq $name "rbd" }}
      annotations:
        # Restart the controllers when the cluster list changes.
        checksum/cluster-config: {{ include "tkestor-csi.rbdClusterConfig" $root | sha256sum }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "tkestor-csi.name" $ctrl }}
      priorityClassName: {{ $v.controller.priorityClassName }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # The controller only speaks to the storage backends over the
      # network and to the API server: no root, no host access.
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ $v.controller.runAsUser }}
        runAsGroup: {{ $v.controller.runAsUser }}
        # Group of the mounted Secret files, so that they can be 0440.
        fsGroup: {{ $v.controller.runAsUser }}
        seccompProfile:
          type: RuntimeDefault
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "tkestor-csi.selectorLabels" $ctrl | nindent 20 }}
      {{- with $v.controller.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.controller.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: csi-provisioner
          image: {{ include "tkestor-csi.image" $v.sidecars.provisioner }}
          imagePullPolicy: {{ $v.sidecars.pullPolicy }}
          args:
            - --csi-address=/csi/csi.sock
            - --v={{ $v.logLevel }}
            - --timeout={{ $v.sidecarTimeout }}
            - --leader-election=true
            {{- if eq $name "rbd" }}
            # Claims of a class without csi.storage.k8s.io/fstype get ext4.
            - --default-fstype=ext4
            {{- else }}
            # No --default-fstype: a ChubaoFS volume is not formatted.
            {{- end }}
            {{- if $v.controller.extraCreateMetadata }}
            - --extra-create-metadata=true
            {{- end }}
          securityContext:
            {{- include "tkestor-csi.sidecarSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $v.sidecarResources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
        - name: csi-attacher
          image: {{ include "tkestor-csi.image" $v.sidecars.attacher }}
          imagePullPolicy: {{ $v.sidecars.pullPolicy }}
          args:
            - --csi-address=/csi/csi.sock
            - --v={{ $v.logLevel }}
            - --timeout={{ $v.sidecarTimeout }}
            - --leader-election=true
          securityContext:
            {{- include "tkestor-csi.sidecarSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $v.sidecarResources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
        - name: csi-resizer
          image: {{ include "tkestor-csi.image" $v.sidecars.resizer }}
          imagePullPolicy: {{ $v.sidecars.pullPolicy }}
          args:
            - --csi-address=/csi/csi.sock
            - --v={{ $v.logLevel }}
            - --timeout={{ $v.sidecarTimeout }}
            - --leader-election=true
            # Both drivers expand online: no need to wait for pods to go.
            - --handle-volume-inuse-error=false
          securityContext:
            {{- include "tkestor-csi.sidecarSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $v.sidecarResources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
        {{- if eq $name "rbd" }}
        - name: csi-snapshotter
          image: {{ include "tkestor-csi.image" $v.sidecars.snapshotter }}
          imagePullPolicy: {{ $v.sidecars.pullPolicy }}
          args:
            - --csi-address=/csi/csi.sock
            - --v={{ $v.logLevel }}
            - --timeout={{ $v.sidecarTimeout }}
            - --leader-election=true
          securityContext:
            {{- include "tkestor-csi.sidecarSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $v.sidecarResources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
        {{- end }}
        - name: liveness-probe
          image: {{ include "tkestor-csi.image" $v.sidecars.livenessprobe }}
          imagePullPolicy: {{ $v.sidecars.pullPolicy }}
          args:
            - --csi-address=/csi/csi.sock
            - --http-endpoint=:{{ $d.livenessPort }}
            - --probe-timeout=3s
          ports:
            - name: healthz
              containerPort: {{ $d.livenessPort }}
              protocol: TCP
          securityContext:
            {{- include "tkestor-csi.sidecarSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $v.sidecarResources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
        - name: tkestor-csi
          image: {{ include "tkestor-csi.image" $v.image }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            - --mode=controller
            - --driver={{ $name }}
            - --drivername={{ $d.driverName }}
            - --endpoint=unix:///csi/csi.sock
            - --nodeid=$(NODE_NAME)
            - --metrics-address=:{{ $d.metricsPort }}
            {{- if eq $name "rbd" }}
            - --cluster-config=/etc/tkestor-csi/config.json
            - --controller-secret-dir=/etc/tkestor-csi-controller
            {{- end }}
            - -v={{ $v.logLevel }}
            - --logging-format={{ $v.logFormat }}
          env:
            - name: NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
          ports:
            - name: metrics
              containerPort: {{ $d.metricsPort }}
              protocol: TCP
          # The liveness-probe sidecar answers after a CSI Probe call.
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ $d.livenessPort }}
            initialDelaySeconds: 10
            timeoutSeconds: 5
            periodSeconds: 20
            failureThreshold: 5
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
          resources:
            {{- toYaml $v.controller.resources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
            # Short-lived 0600 key files, kept in memory.
            - name: tmp
              mountPath: /tmp
            {{- if eq $name "rbd" }}
            - name: cluster-config
              mountPath: /etc/tkestor-csi
              readOnly: true
            - name: controller-secret
              mountPath: /etc/tkestor-csi-controller
              readOnly: true
            {{- end }}
      volumes:
        - name: socket-dir
          emptyDir: {}
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 16Mi
        {{- if eq $name "rbd" }}
        - name: cluster-config
          configMap:
            name: {{ include "tkestor-csi.name" (dict "root" $root "name" $name "component" "config") }}
        - name: controller-secret
          secret:
            secretName: {{ $d.controllerSecret.name }}
            defaultMode: 0440
        {{- end }}
{{- end -}}
