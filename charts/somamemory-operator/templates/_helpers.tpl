{{/* Chart name, truncated to 63 characters. */}}
{{- define "somamemory-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless already contained. */}}
{{- define "somamemory-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Common labels. */}}
{{- define "somamemory-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "somamemory-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels. */}}
{{- define "somamemory-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "somamemory-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Service account name. */}}
{{- define "somamemory-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "somamemory-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* RBAC rules: least privilege for reconciling SomaMemory objects and their children. */}}
{{- define "somamemory-operator.rules" -}}
- apiGroups: ["soma.dev"]
  resources: ["somamemories"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["soma.dev"]
  resources: ["somamemories/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["soma.dev"]
  resources: ["somamemories/finalizers"]
  verbs: ["update"]
# backups, restores and reindexes: the operator makes backups (on schedule, before migrations)
# and deletes them (retention)
- apiGroups: ["soma.dev"]
  resources: ["somamemorybackups", "somamemoryscheduledbackups", "somamemoryrestores", "somamemoryreindexes"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["soma.dev"]
  resources: ["somamemorybackups/status", "somamemoryscheduledbackups/status", "somamemoryrestores/status", "somamemoryreindexes/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["soma.dev"]
  resources: ["somamemorybackups/finalizers", "somamemoryscheduledbackups/finalizers", "somamemoryrestores/finalizers", "somamemoryreindexes/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "create"]
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings", "kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "prometheusrules"]
  verbs: ["get", "create", "patch", "update", "delete"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
