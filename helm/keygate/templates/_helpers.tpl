{{/* Names and labels shared by every template. */}}
{{- define "keygate.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keygate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "keygate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keygate.secretName" -}}
{{- if .Values.existingSecret -}}{{ .Values.existingSecret }}{{- else -}}{{ include "keygate.fullname" . }}{{- end -}}
{{- end -}}

{{/*
The keygate configuration file, as one YAML document: what the chart derives from its values (ports, upstream,
Redis topology, policy file), with .Values.config merged over it key by key (a key set there wins; lists and
scalars replace).
*/}}
{{- define "keygate.config" -}}
{{- $upstream := "" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- $upstream = printf "http://127.0.0.1:%v" .Values.app.port -}}
{{- else -}}
{{- $upstream = required "gateway.upstreamUrl is required in gateway mode" .Values.gateway.upstreamUrl -}}
{{- end -}}
{{- /* opsHost 0.0.0.0: keygate's default is loopback, but kubelet probes and the Prometheus scrape reach the
internal listener at the pod's address (networkPolicy.opsFrom restricts who else may). */ -}}
{{- $generated := dict "server" (dict "port" .Values.ports.public "opsHost" "0.0.0.0" "opsPort" .Values.ports.ops) "upstream" (dict "url" $upstream) -}}
{{- if eq .Values.redis.mode "sentinel" -}}
{{- $_ := set $generated "redis" (dict "sentinelName" .Values.redis.sentinel.name "sentinels" .Values.redis.sentinel.hosts) -}}
{{- else if eq .Values.redis.mode "cluster" -}}
{{- $_ := set $generated "redis" (dict "clusterNodes" .Values.redis.cluster.nodes) -}}
{{- end -}}
{{- if .Values.policy -}}
{{- $_ := set $generated "policy" (dict "file" "/etc/keygate/policy.yaml") -}}
{{- end -}}
{{- with .Values.tracing -}}
{{- if .enabled -}}
{{- $tracing := dict "enabled" true "endpoint" (required "tracing.endpoint is required when tracing.enabled is true" .endpoint) "sampler" (dict "ratio" .sampler.ratio "parentBased" .sampler.parentBased) -}}
{{- with .serviceName -}}{{- $_ := set $tracing "serviceName" . -}}{{- end -}}
{{- $_ := set $generated "tracing" $tracing -}}
{{- end -}}
{{- end -}}
{{- toYaml (mergeOverwrite $generated (deepCopy .Values.config)) -}}
{{- end -}}

{{/* Does .Values.config set this path? Then the chart leaves the matching environment variable out. */}}
{{- define "keygate.configSets" -}}
{{- $node := .root.Values.config -}}
{{- $found := true -}}
{{- range .path -}}
{{- if and $found (kindIs "map" $node) (hasKey $node .) -}}{{- $node = get $node . -}}{{- else -}}{{- $found = false -}}{{- end -}}
{{- end -}}
{{- if $found -}}true{{- end -}}
{{- end -}}

{{/* The keygate image. There is no public image to default to: build it from this repository's Dockerfile and
push it where the cluster pulls from (docs/kubernetes.md). */}}
{{- define "keygate.image" -}}
{{- if not .Values.image.repository -}}
{{- fail "image.repository is required: build keygate's image (docker build -t REGISTRY/keygate:TAG .), push it, and set image.repository=REGISTRY/keygate and image.tag=TAG (docs/kubernetes.md)" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}

{{- define "keygate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "keygate.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/*
Pod settings shared by the Deployments: keygate talks to no Kubernetes API, so the pod mounts no service
account token; the grace period covers the preStop delay, keygate's own drain delay and its in-flight timeout,
plus a margin.
*/}}
{{- define "keygate.podSettings" -}}
{{- $config := include "keygate.config" . | fromYaml -}}
{{- $shutdown := $config.shutdown | default dict -}}
serviceAccountName: {{ include "keygate.serviceAccountName" . }}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ add .Values.shutdown.preStopSeconds (int ($shutdown.drainDelaySeconds | default 0)) (int ($shutdown.timeoutSeconds | default 25)) 5 }}
{{- if and (ne .Values.mode "sidecar") .Values.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range .Values.topologySpread.topologyKeys }}
  - maxSkew: {{ $.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "keygate.selectorLabels" $ | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
keygate's container lifecycle: on pod deletion Kubernetes removes the pod from the Service's endpoints while it
sends SIGTERM, and load balancers and kube-proxy learn of it a few seconds later. The preStop delay keeps keygate
serving until they have; then SIGTERM starts its drain (readiness 503, in-flight requests finish).
*/}}
{{- define "keygate.lifecycle" -}}
{{- if gt (int .Values.shutdown.preStopSeconds) 0 }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .Values.shutdown.preStopSeconds }}"]
{{- end }}
{{- end -}}

{{/*
The export's headers (tracing.headersSecret), for both Deployments: an environment variable from the user's
Secret, so that an API key stays out of the ConfigMap.
*/}}
{{- define "keygate.tracingEnv" -}}
{{- if and .Values.tracing.enabled .Values.tracing.headersSecret.name -}}
- name: OTEL_EXPORTER_OTLP_TRACES_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tracing.headersSecret.name }}
      key: {{ .Values.tracing.headersSecret.key }}
{{- end }}
{{- end -}}
