{{/*
Names and labels. Other templates (including the operator's RBAC in
operator-rbac.yaml) use these helpers rather than spelling names themselves.
*/}}

{{- define "customer-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "customer-service.fullname" -}}
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

{{- define "customer-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "customer-service.labels" -}}
helm.sh/chart: {{ include "customer-service.chart" . }}
{{ include "customer-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coffee-ordering
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "customer-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "customer-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A component's objects: call with (dict "root" $ "component" "api"). */}}
{{- define "customer-service.componentName" -}}
{{- printf "%s-%s" (include "customer-service.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "customer-service.componentLabels" -}}
{{ include "customer-service.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "customer-service.componentSelectorLabels" -}}
{{ include "customer-service.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "customer-service.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount of the api, consumer, scheduler and worker pods. */}}
{{- define "customer-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "customer-service.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The operator's ServiceAccount. operator-rbac.yaml creates it (when
operator.serviceAccount.create) and binds its RBAC; the operator Deployment runs as it.
*/}}
{{- define "customer-service.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "customer-service.fullname" .)) .Values.operator.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding DB_PASSWORD and the other secret variables. */}}
{{- define "customer-service.secretName" -}}
{{- default (include "customer-service.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/*
The non-secret environment every process shares (ConfigMap data). Ports and the
partition count come from the values that also shape probes, Services and
autoscalers, so the processes and Kubernetes always agree.
*/}}
{{- define "customer-service.configData" -}}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ toString $value | quote }}
{{- end }}
GRPC_PORT: {{ .Values.service.grpcPort | toString | quote }}
METRICS_PORT: {{ .Values.metrics.port | toString | quote }}
CONSUMER_HEALTH_PORT: {{ .Values.consumer.healthPort | toString | quote }}
OPERATOR_LIVENESS_PORT: {{ .Values.operator.healthPort | toString | quote }}
KAFKA_TOPIC_PARTITIONS: {{ .Values.consumer.partitions | toString | quote }}
{{- end -}}

{{- define "customer-service.secretData" -}}
{{- range $name, $value := .Values.secrets }}
{{ $name }}: {{ toString $value | b64enc | quote }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress when external egress is not allowed: DNS and the listed ports. */}}
{{- define "customer-service.egressRules" -}}
{{- if not .allowExternalEgress }}
egress:
  - ports:
      - {port: 53, protocol: UDP}
      - {port: 53, protocol: TCP}
  - ports:
      {{- range .egressPorts }}
      - {port: {{ . }}, protocol: TCP}
      {{- end }}
{{- end }}
{{- end -}}
