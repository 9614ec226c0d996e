{{/* Names and labels shared by every template. */}}
{{- define "keygate.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keygate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "keygate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keygate.secretName" -}}
{{- if .Values.existingSecret -}}{{ .Values.existingSecret }}{{- else -}}{{ include "keygate.fullname" . }}{{- end -}}
{{- end -}}

{{/* The upstream: the app container on localhost (sidecar) or the configured Service (gateway). */}}
{{- define "keygate.upstreamUrl" -}}
{{- if eq .Values.mode "sidecar" -}}http://127.0.0.1:{{ .Values.app.port }}{{- else -}}{{ required "gateway.upstreamUrl is required in gateway mode" .Values.gateway.upstreamUrl }}{{- end -}}
{{- end -}}
