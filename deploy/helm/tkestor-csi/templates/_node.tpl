{{/*
Node plugin DaemonSet of one driver (dict root/name).
*/}}
{{- define "tkestor-csi.node" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $name := .name -}}
{{- $d := index $v $name -}}
{{- $node := dict "root" $root "name" $name "component" "node" -}}
{{- $kubeletDir := trimSuffix "/" $v.kubeletDir -}}
{{- $pluginDir := include "tkestor-csi.pluginDir" . -}}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ include "tkestor-csi.name" $node }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "tkestor-csi.labels" $node | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "tkestor-csi.selectorLabels" $node | nindent 6 }}
  updateStrategy:
    {{- if eq $name "cfs" }}
    # Each ChubaoFS mount is a FUSE client process inside the plugin
    # container and dies with it: a rolling update would break every mount
    # on the node ("transport endpoint is not connected") under running
    # pods. With OnDelete an update waits until an admin drains a node and
    # deletes its plugin pod (deploy/README.md, "Upgrading").
    {{- else }}
    # krbd mappings live in the kernel and survive a plugin restart, so the
    # plugin can roll. rbd-nbd and rbd-fuse mappings are processes of the
    # container and do not: clusters that use those mappers set OnDelete.
    {{- end }}
    type: {{ $d.node.updateStrategy }}
  template:
    metadata:
      labels:
        {{- include "tkestor-csi.labels" $node | nindent 8 }}
      {{- if eq $name "rbd" }}
      annotations:
        checksum/cluster-config: {{ include "tkestor-csi.rbdClusterConfig" $root | sha256sum }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "tkestor-csi.name" $node }}
      automountServiceAccountToken: false
      priorityClassName: {{ $v.node.priorityClassName }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # Host network: the kernel RBD client, rbd-nbd, rbd-fuse and the
      # ChubaoFS FUSE client keep their connections to the storage cluster
      # open for as long as a volume is mounted. In a pod network those
      # connections would belong to the pod's network namespace and hang
      # every mount when the plugin pod is replaced.
      hostNetwork: true
      # Mon and master addresses may be Service names.
      dnsPolicy: ClusterFirstWithHostNet
      # No host PID namespace: the mappers run as children of the plugin
      # and nothing enters another process's namespaces, so the plugin
      # has no reason to see or signal host processes.
      hostPID: false
      {{- with $v.node.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.node.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: csi-node-driver-registrar
          image: {{ include "tkestor-csi.image" $v.sidecars.nodeDriverRegistrar }}
          imagePullPolicy: {{ $v.sidecars.pullPolicy }}
          args:
            - --csi-address=/csi/csi.sock
            - --kubelet-registration-path={{ $pluginDir }}/csi.sock
            - --http-endpoint=:{{ $d.registrarPort }}
            - --v={{ $v.logLevel }}
          ports:
            - name: registrar
              containerPort: {{ $d.registrarPort }}
              protocol: TCP
          # /healthz fails while the registration socket is missing.
          livenessProbe:
            httpGet:
              path: /healthz
              port: registrar
            initialDelaySeconds: 10
            timeoutSeconds: 5
            periodSeconds: 30
          # Root (the kubelet's registration directory is root's), but no
          # capabilities and nothing writable outside its two mounts.
          securityContext:
            {{- include "tkestor-csi.sidecarSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $v.sidecarResources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
            - name: registration-dir
              mountPath: /registration
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
            - --mode=node
            - --driver={{ $name }}
            - --drivername={{ $d.driverName }}
            - --endpoint=unix:///csi/csi.sock
            - --nodeid=$(NODE_NAME)
            - --metrics-address=:{{ $d.metricsPort }}
            - --state-dir={{ $d.stateDir }}
            {{- if eq $name "rbd" }}
            - --cluster-config=/etc/tkestor-csi/config.json
            - --node-secret-dir=/etc/tkestor-csi-node
            {{- end }}
            {{- if eq $name "cfs" }}
            - --cfs-client={{ $d.cfsClient }}
            {{- end }}
            {{- if ne (toString $v.rwoTakeoverGrace) "" }}
            - --rwo-takeover-grace={{ $v.rwoTakeoverGrace }}
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
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ $d.livenessPort }}
            initialDelaySeconds: 10
            timeoutSeconds: 5
            periodSeconds: 20
            failureThreshold: 5
          # Privileged: it maps block devices, formats them, mounts into the
          # kubelet's directories and starts FUSE daemons. The image cannot
          # drop root for the same reasons (see the Dockerfile).
          securityContext:
            privileged: true
          resources:
            {{- toYaml $v.node.resources | nindent 12 }}
          volumeMounts:
            - name: socket-dir
              mountPath: /csi
            # Bidirectional: mounts made here (staging and target paths)
            # must reach the host and so the application pods.
            - name: kubelet-dir
              mountPath: {{ $kubeletDir }}
              mountPropagation: Bidirectional
            # Mapped devices (rbd, nbd, loop) and /dev/fuse appear here.
            - name: dev
              mountPath: /dev
            # krbd is driven through /sys/bus/rbd; FUSE connections can be
            # aborted through /sys/fs/fuse/connections.
            - name: sys
              mountPath: /sys
            # modprobe of rbd, nbd or fuse when the node has not loaded them.
            - name: lib-modules
              mountPath: /lib/modules
              readOnly: true
            - name: state-dir
              mountPath: {{ $d.stateDir }}
            - name: tmp
              mountPath: /tmp
            {{- if eq $name "rbd" }}
            - name: cluster-config
              mountPath: /etc/tkestor-csi
              readOnly: true
            # The node's own cephx user: it registers the node in the
            # cluster, so that ControllerPublish knows it exists.
            - name: node-secret
              mountPath: /etc/tkestor-csi-node
              readOnly: true
            {{- end }}
      volumes:
        - name: socket-dir
          hostPath:
            path: {{ $pluginDir }}
            type: DirectoryOrCreate
        - name: registration-dir
          hostPath:
            path: {{ $kubeletDir }}/plugins_registry
            type: Directory
        - name: kubelet-dir
          hostPath:
            path: {{ $kubeletDir }}
            type: Directory
        - name: dev
          hostPath:
            path: /dev
            type: Directory
        - name: sys
          hostPath:
            path: /sys
            type: Directory
        - name: lib-modules
          hostPath:
            path: /lib/modules
        - name: state-dir
          hostPath:
            path: {{ $d.stateDir }}
            type: DirectoryOrCreate
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 64Mi
        {{- if eq $name "rbd" }}
        - name: cluster-config
          configMap:
            name: {{ include "tkestor-csi.name" (dict "root" $root "name" $name "component" "config") }}
        - name: node-secret
          secret:
            secretName: {{ $d.nodeSecret.name }}
            defaultMode: 0400
        {{- end }}
{{- end -}}
