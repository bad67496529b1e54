{{/*
The API pod template, shared by the Deployment (PostgreSQL and Milvus servers: stateless, scalable)
and the StatefulSet (the embedded default: one pod keeping its data on a PersistentVolumeClaim).
*/}}
{{- define "somamemory.podTemplate" -}}
metadata:
  labels:
    {{- include "somamemory.labels" . | nindent 4 }}
    app.kubernetes.io/component: api
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "somamemory.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
  # Service links would inject variables such as REDIS_PORT=tcp://... for any Service named
  # "redis" in the namespace, which the settings object would try to read as a port number.
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- include "somamemory.podSecurityContext" . | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: api
      image: {{ include "somamemory.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve"]
      ports:
        - name: http
          containerPort: 10101
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "somamemory.fullname" . }}
      env:
        {{- include "somamemory.secretEnv" . | nindent 8 }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      startupProbe:
        {{- toYaml .Values.startupProbe | nindent 8 }}
      livenessProbe:
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- include "somamemory.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: data
          mountPath: {{ include "somamemory.dataDir" . }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmpVolumeSizeLimit }}
    {{- if not (include "somamemory.embedded" .) }}
    # With servers nothing is stored here; it is the image user's home, so caches stay writable.
    - name: data
      emptyDir:
        sizeLimit: {{ .Values.tmpVolumeSizeLimit }}
    {{- else if not .Values.persistence.enabled }}
    # persistence.enabled=false: the data lives as long as the pod does.
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    - {{- toYaml (ternary . (merge (dict "labelSelector" (dict "matchLabels" (include "somamemory.selectorLabels" $ | fromYaml))) .) (hasKey . "labelSelector")) | nindent 6 }}
    {{- end }}
  {{- end }}
{{- end -}}
