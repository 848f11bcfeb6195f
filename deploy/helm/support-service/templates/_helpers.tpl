{{/* Names and labels of the support-service chart. */}}
{{- /*
The objects' name: the chart's name unless fullnameOverride. The Dapr components keep the fixed
names the app uses (workflow-state, ...), so one release per namespace.
*/ -}}
{{- define "support.fullname" -}}
{{- .Values.fullnameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "support.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "support.labels" -}}
{{ include "support.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Secret names: an existing Secret when one is named, else the release's own. */}}
{{- define "support.apiTokensSecret" -}}
{{- .Values.secrets.existingApiTokensSecret | default (printf "%s-api-tokens" (include "support.fullname" .)) -}}
{{- end -}}
{{- define "support.daprApiTokenSecret" -}}
{{- .Values.secrets.existingDaprApiTokenSecret | default (printf "%s-dapr-api-token" (include "support.fullname" .)) -}}
{{- end -}}
{{- define "support.postgresqlSecret" -}}
{{- if .Values.postgresql.connectionString -}}
{{- printf "%s-postgresql" (include "support.fullname" .) -}}
{{- else -}}
{{- required "postgresql.connectionString or postgresql.existingSecret is required" .Values.postgresql.existingSecret -}}
{{- end -}}
{{- end -}}
{{- define "support.postgresqlSecretKey" -}}
{{- if .Values.postgresql.connectionString -}}connectionString{{- else -}}{{ .Values.postgresql.existingSecretKey }}{{- end -}}
{{- end -}}
{{- define "support.redisSecret" -}}
{{- if .Values.redis.password -}}
{{- printf "%s-redis" (include "support.fullname" .) -}}
{{- else -}}
{{- .Values.redis.existingSecret -}}
{{- end -}}
{{- end -}}
{{- define "support.redisSecretKey" -}}
{{- if .Values.redis.password -}}redis-password{{- else -}}{{ .Values.redis.existingSecretKey }}{{- end -}}
{{- end -}}
{{- define "support.llmSecret" -}}
{{- if .Values.llm.apiKey -}}
{{- printf "%s-llm" (include "support.fullname" .) -}}
{{- else -}}
{{- .Values.llm.existingSecret -}}
{{- end -}}
{{- end -}}

{{/*
A secret value: the given one, else the one already in the cluster (so an upgrade keeps a
generated token), else a new random one. Arguments: (list $ secretName key given generated).
*/}}
{{- define "support.keptSecretValue" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}{{- $key := index . 2 -}}
{{- $given := index . 3 -}}{{- $generated := index . 4 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $name -}}
{{- if and $existing (hasKey ($existing.data | default dict) $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- $generated -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The secretKeyRef auth block of Dapr components: Kubernetes Secrets of the namespace. */}}
{{- define "support.componentScopes" -}}
scopes:
  - {{ .Values.appId }}
auth:
  secretStore: kubernetes
{{- end -}}
