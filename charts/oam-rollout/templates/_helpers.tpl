{{/*
Names, labels and the small derived values every template shares.
Cross-field value rules live in "oam-rollout.checkValues" so that every mistake is
reported with a sentence, not a template error.
*/}}

{{- define "oam-rollout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name alone when it already holds the chart name. */}}
{{- define "oam-rollout.fullname" -}}
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

{{- define "oam-rollout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oam-rollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oam-rollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "oam-rollout.labels" -}}
helm.sh/chart: {{ include "oam-rollout.chart" . }}
{{ include "oam-rollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: oam-rollout
{{- end }}

{{/* Labels of one component; call with (dict "root" $ "component" "webhook"). */}}
{{- define "oam-rollout.componentLabels" -}}
{{ include "oam-rollout.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "oam-rollout.componentSelectorLabels" -}}
{{ include "oam-rollout.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "oam-rollout.webhookName" -}}
{{- printf "%s-webhook" (include "oam-rollout.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oam-rollout.controllerName" -}}
{{- printf "%s-controller" (include "oam-rollout.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oam-rollout.webhookServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "oam-rollout.webhookName" . }}
{{- else }}
{{- default "default" .Values.serviceAccount.webhookName }}
{{- end }}
{{- end }}

{{- define "oam-rollout.controllerServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "oam-rollout.controllerName" . }}
{{- else }}
{{- default "default" .Values.serviceAccount.controllerName }}
{{- end }}
{{- end }}

{{- define "oam-rollout.tlsSecretName" -}}
{{- /* selfManaged has its own default: a Secret left by helm mode is never taken over. */ -}}
{{- $suffix := ternary "self-managed-tls" "tls" (eq .Values.certs.mode "selfManaged") }}
{{- default (printf "%s-%s" (include "oam-rollout.webhookName" .) $suffix) .Values.certs.secretName }}
{{- end }}

{{- define "oam-rollout.certificateName" -}}
{{- printf "%s-serving" (include "oam-rollout.webhookName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* repository@digest when image.digest is set (the tag is then ignored: a digest pins
the exact image), else repository:tag. */}}
{{- define "oam-rollout.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the webhook runs in the cluster (no webhook.url). */}}
{{- define "oam-rollout.webhookInCluster" -}}
{{- if not .Values.webhook.url }}true{{ end }}
{{- end }}

{{/* The names the API server sends admission requests to (unique per release). */}}
{{- define "oam-rollout.admissionName" -}}
{{- printf "%s.%s.rollout.oam.dev" .kind (include "oam-rollout.fullname" .root) }}
{{- end }}

{{/* Resources of one component: its own override, else the shared default. */}}
{{- define "oam-rollout.resources" -}}
{{- $own := index .root.Values .component "resources" }}
{{- toYaml (default .root.Values.resources $own) }}
{{- end }}

{{/* Scheduling of one Deployment; call with (dict "root" $ "component" NAME). Each of
nodeSelector, tolerations, affinity and priorityClassName is the component's own when set,
else the top-level one shared by both. */}}
{{- define "oam-rollout.scheduling" -}}
{{- $root := .root }}
{{- $own := index $root.Values .component }}
{{- with default $root.Values.priorityClassName $own.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with default $root.Values.nodeSelector $own.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with default $root.Values.tolerations $own.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $own.topologySpreadConstraints }}
{{- /* A constraint without a labelSelector counts this component's pods. */}}
{{- $selector := dict "matchLabels" (include "oam-rollout.componentSelectorLabels" $ | fromYaml) }}
{{- $constraints := list }}
{{- range . }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}
{{- $_ := set $constraint "labelSelector" $selector }}
{{- end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- $affinity := default $root.Values.affinity $own.affinity }}
affinity:
{{- if $affinity }}
  {{- toYaml $affinity | nindent 2 }}
{{- else }}
  # Spread replicas over nodes so a single node loss keeps one serving.
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "oam-rollout.componentSelectorLabels" . | nindent 14 }}
{{- end }}
{{- end }}

{{/* Pod network of both Deployments: the node's (hostNetwork) or the pod network. */}}
{{- define "oam-rollout.podNetwork" -}}
{{- if .Values.hostNetwork }}
hostNetwork: true
# Service names still resolve through the cluster DNS from the node's network.
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- end }}

{{/* The environment of one container; call with (dict "root" $ "component" NAME): the
pod's IP (for "$(POD_IP)" in bind addresses), then the top-level extraEnv, then the
component's extraEnv; a later entry of the same name wins over an earlier one. */}}
{{- define "oam-rollout.env" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with (index .root.Values .component).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one component's pods: the chart's, then the component's podLabels (which
may not replace a chart label: "oam-rollout.checkComponent" says so). */}}
{{- define "oam-rollout.podLabels" -}}
{{ include "oam-rollout.componentLabels" . }}
{{- with (index .root.Values .component).podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Value rules of one component (call with (dict "root" $ "component" NAME "volumes"
LIST-OF-THE-CHART'S-VOLUME-NAMES)); fails the render with a sentence. */}}
{{- define "oam-rollout.checkComponent" -}}
{{- $own := index .root.Values .component }}
{{- $chartLabels := include "oam-rollout.componentLabels" . | fromYaml }}
{{- range $key, $_ := $own.podLabels }}
{{- if hasKey $chartLabels $key }}
{{- fail (printf "%s.podLabels sets %s, a label the chart sets itself (and selects its pods by); use another key" $.component $key) }}
{{- end }}
{{- end }}
{{- $volumes := .volumes }}
{{- range $own.extraVolumes }}
{{- if has .name $.volumes }}
{{- fail (printf "%s.extraVolumes: the name %s is taken by the chart's own volume; pick another" $.component .name) }}
{{- end }}
{{- $volumes = append $volumes .name }}
{{- end }}
{{- range $own.extraVolumeMounts }}
{{- if not (has .name $volumes) }}
{{- fail (printf "%s.extraVolumeMounts: %s mounts the volume %s, which is not in %s.extraVolumes" $.component .mountPath .name $.component) }}
{{- end }}
{{- end }}
{{- end }}

{{/* `host: ADDRESS` for a probe when the server listens on one literal IP only: the
kubelet would otherwise dial the pod IP, where nothing listens. Call with the address. */}}
{{- define "oam-rollout.probeHost" -}}
{{- if and (regexMatch "^[0-9.]+$" .) (ne . "0.0.0.0") }}
host: {{ . }}
{{- end }}
{{- end }}

{{/* Value rules a JSON schema cannot say clearly; fails the render with a sentence. */}}
{{- define "oam-rollout.checkValues" -}}
{{- if and (eq .Values.certs.mode "selfManaged") .Values.certs.caBundle }}
{{- fail "certs.mode=selfManaged: the webhook injects its own caBundle; leave certs.caBundle empty" }}
{{- end }}
{{- if and .Values.webhook.url (not .Values.certs.caBundle) (ne .Values.certs.mode "selfManaged") }}
{{- fail "webhook.url is set: certs.caBundle must hold the base64 PEM CA that signed the webhook server's certificate" }}
{{- end }}
{{- if and (eq .Values.certs.mode "external") (not .Values.certs.caBundle) }}
{{- fail "certs.mode=external: certs.caBundle must hold the base64 PEM CA of the certificate in certs.secretName" }}
{{- end }}
{{- if and (eq .Values.certs.mode "external") (not .Values.webhook.url) (not .Values.certs.secretName) }}
{{- fail "certs.mode=external: certs.secretName must name an existing kubernetes.io/tls Secret in the release namespace" }}
{{- end }}
{{- if .Values.certs.caBundle }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" (b64dec .Values.certs.caBundle)) }}
{{- fail "certs.caBundle must be base64 of a PEM certificate (-----BEGIN CERTIFICATE-----...)" }}
{{- end }}
{{- end }}
{{- end }}
