{{/*
Expand the name of the chart.
*/}}
{{- define "liveness-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "liveness-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "liveness-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "liveness-gateway.labels" -}}
helm.sh/chart: {{ include "liveness-gateway.chart" . }}
{{ include "liveness-gateway.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ include "liveness-gateway.imageTag" . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: liveness-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "liveness-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "liveness-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "liveness-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "liveness-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "liveness-gateway.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
The full image reference; a digest, when set, pins the image whatever the tag says.
*/}}
{{- define "liveness-gateway.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (include "liveness-gateway.imageTag" .) }}
{{- if .Values.image.digest }}
{{- $ref = printf "%s@%s" $ref .Values.image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/*
The Secret that holds the vendor credentials: credentials.existingSecret, else the one the
chart creates.
*/}}
{{- define "liveness-gateway.secretName" -}}
{{- default (printf "%s-credentials" (include "liveness-gateway.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{/*
Whether the pods need vendor credentials at all (not in sandbox mode).
*/}}
{{- define "liveness-gateway.needsCredentials" -}}
{{- if not .Values.gateway.sandbox }}true{{- end }}
{{- end }}

{{/*
Where the secret files are mounted in the container.
*/}}
{{- define "liveness-gateway.secretMountPath" -}}
/var/run/secrets/liveness-gateway
{{- end }}

{{/*
Refuse settings that cannot drain cleanly: Kubernetes kills the container when
terminationGracePeriodSeconds runs out, counted from the start of the preStop pause.
*/}}
{{- define "liveness-gateway.validateDrain" -}}
{{- $need := add (int .Values.lifecycle.preStopSleepSeconds) (int (ceil .Values.gateway.drainSeconds)) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed lifecycle.preStopSleepSeconds + gateway.drainSeconds (%d): in-flight calls would be killed" (int .Values.terminationGracePeriodSeconds) (int $need)) }}
{{- end }}
{{- end }}

{{/*
Where the TLS files and the callers file are mounted: whole Secret volumes, never subPath,
so that kubelet's atomic updates reach the gateway (it re-reads the TLS files on change).
*/}}
{{- define "liveness-gateway.tlsMountPath" -}}
/var/run/secrets/liveness-gateway-tls
{{- end }}

{{- define "liveness-gateway.callersMountPath" -}}
/var/run/secrets/liveness-gateway-callers
{{- end }}

{{/*
The Secret that holds the callers file: auth.existingSecret, else the one the chart creates.
*/}}
{{- define "liveness-gateway.callersSecretName" -}}
{{- default (printf "%s-callers" (include "liveness-gateway.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/*
Whether the pods get the plaintext health-only port (and the probes go there): always with TLS,
since kubelet's gRPC probes speak plaintext only.
*/}}
{{- define "liveness-gateway.healthPortOn" -}}
{{- if or .Values.tls.enabled .Values.gateway.healthPortWithoutTls }}true{{- end }}
{{- end }}

{{/*
The port kubelet's gRPC probes use: a number, as Kubernetes' gRPC probes take no named port.
*/}}
{{- define "liveness-gateway.probePort" -}}
{{- if include "liveness-gateway.healthPortOn" . }}{{ int .Values.gateway.healthPort }}{{ else }}{{ int .Values.gateway.grpcPort }}{{ end }}
{{- end }}

{{/*
appProtocol of the gRPC Service port: service.grpcAppProtocol, else h2c for plaintext and none
for TLS.
*/}}
{{- define "liveness-gateway.grpcAppProtocol" -}}
{{- if .Values.service.grpcAppProtocol }}{{ .Values.service.grpcAppProtocol }}{{ else if not .Values.tls.enabled }}kubernetes.io/h2c{{ end }}
{{- end }}

{{/*
Refuse TLS and auth settings that cannot work, with a message naming the value to set.
*/}}
{{- define "liveness-gateway.validateSecurity" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled needs tls.existingSecret: a kubernetes.io/tls Secret with tls.crt and tls.key (e.g. the one cert-manager keeps for a Certificate)" }}
{{- end }}
{{- if and .Values.tls.clientAuth (not .Values.tls.enabled) }}
{{- fail "tls.clientAuth (mTLS) needs tls.enabled" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.callers) }}
{{- fail "auth.enabled needs auth.existingSecret (a Secret with the callers file) or auth.callers (the callers file, TOML)" }}
{{- end }}
{{- if and .Values.auth.existingSecret .Values.auth.callers }}
{{- fail "set auth.existingSecret or auth.callers, not both" }}
{{- end }}
{{- $ports := list (int .Values.gateway.grpcPort) (int .Values.gateway.metricsPort) }}
{{- if include "liveness-gateway.healthPortOn" . }}
{{- $ports = append $ports (int .Values.gateway.healthPort) }}
{{- end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail (printf "gateway.grpcPort, gateway.metricsPort and gateway.healthPort must differ (got %v)" $ports) }}
{{- end }}
{{- end }}

{{/*
The Secret holding the Redis URL (and password) of fleet mode.
*/}}
{{- define "liveness-gateway.stateSecretName" -}}
{{- default (printf "%s-state" (include "liveness-gateway.fullname" .)) .Values.state.redis.existingSecret }}
{{- end }}

{{/*
Gateway processes sharing the limits: state.expectedProcesses, else replicas x workers.
*/}}
{{- define "liveness-gateway.expectedProcesses" -}}
{{- if .Values.state.expectedProcesses }}
{{- .Values.state.expectedProcesses }}
{{- else }}
{{- $replicas := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled }}
{{- max 1 (mul (int $replicas) (int .Values.gateway.workers)) }}
{{- end }}
{{- end }}
