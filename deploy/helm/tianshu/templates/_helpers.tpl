{{/* Names. */}}
{{- define "tianshu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tianshu.fullname" -}}
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

{{- define "tianshu.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tianshu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "control"). */}}
{{- define "tianshu.selector" -}}
app.kubernetes.io/name: {{ include "tianshu.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tianshu.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tianshu.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tianshu.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Embedded: no shared database configured, so one pod runs everything. */}}
{{- define "tianshu.embedded" -}}
{{- if and (not .Values.db.url) (not .Values.db.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* The Secret this chart creates for values given inline. */}}
{{- define "tianshu.secretName" -}}
{{- include "tianshu.fullname" . -}}
{{- end -}}

{{/* An env var from a backend's Secret: (dict "ctx" $ "env" "TIANSHU_DB" "b" .Values.db). */}}
{{- define "tianshu.backendEnv" -}}
{{- if .b.existingSecret }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .b.existingSecret }}
      key: {{ .b.existingSecretKey }}
{{- else if .b.url }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "tianshu.secretName" .ctx }}
      key: {{ .b.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* Environment shared by every Tianshu container. */}}
{{- define "tianshu.env" -}}
- name: TIANSHU_HTTP_ADDR
  value: "0.0.0.0:8080"
- name: TIANSHU_DATA_DIR
  value: /var/lib/tianshu
- name: TIANSHU_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
- name: TIANSHU_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
{{- if .Values.publicURL }}
- name: TIANSHU_PUBLIC_URL
  value: {{ .Values.publicURL | quote }}
{{- else if not (include "tianshu.embedded" .) }}
- name: TIANSHU_PUBLIC_URL
  value: {{ printf "http://%s-api.%s.svc:%v" (include "tianshu.fullname" .) .Release.Namespace .Values.control.service.port | quote }}
{{- end }}
{{- include "tianshu.backendEnv" (dict "ctx" . "env" "TIANSHU_DB" "b" .Values.db) }}
{{- include "tianshu.backendEnv" (dict "ctx" . "env" "TIANSHU_BUS" "b" .Values.bus) }}
{{- include "tianshu.backendEnv" (dict "ctx" . "env" "TIANSHU_BLOB" "b" .Values.blob) }}
{{- include "tianshu.backendEnv" (dict "ctx" . "env" "TIANSHU_CACHE" "b" .Values.cache) }}
- name: TIANSHU_MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default (include "tianshu.secretName" .) .Values.masterKey.existingSecret }}
      key: {{ .Values.masterKey.existingSecretKey }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The admin credentials, for the processes that bootstrap. */}}
{{- define "tianshu.adminEnv" -}}
{{- $name := default (include "tianshu.secretName" .) .Values.admin.existingSecret -}}
- name: TIANSHU_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: admin-password
{{- if or .Values.admin.existingSecret .Values.admin.secretId }}
- name: TIANSHU_ADMIN_SECRET_ID
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: admin-secret-id
      optional: {{ not .Values.admin.secretId }}
- name: TIANSHU_ADMIN_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: admin-secret-key
      optional: {{ not .Values.admin.secretId }}
{{- end }}
{{- end -}}

{{- define "tianshu.envFrom" -}}
{{- if .Values.blob.s3CredentialsSecret }}
- secretRef:
    name: {{ .Values.blob.s3CredentialsSecret }}
{{- end }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Probes on the platform's /readyz (ready) and /healthz (alive). */}}
{{- define "tianshu.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
{{- end -}}

{{/*
The pod spec of one Tianshu process: (dict "ctx" $ "target" "worker" "args"
(list ...) "p" <component values> "volumes" <yaml string> "admin" bool).
*/}}
{{- define "tianshu.podSpec" -}}
{{- $ := .ctx -}}
serviceAccountName: {{ include "tianshu.serviceAccountName" $ }}
automountServiceAccountToken: {{ $.Values.containerRuntime.enabled }}
terminationGracePeriodSeconds: {{ $.Values.terminationGracePeriodSeconds }}
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $.Values.podSecurityContext | nindent 2 }}
{{- with .p.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .p.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .p.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: tianshu
    image: {{ include "tianshu.image" $ }}
    imagePullPolicy: {{ $.Values.image.pullPolicy }}
    args:
      - serve
      - --target={{ .target }}
      {{- range .args }}
      - {{ . | quote }}
      {{- end }}
      {{- if and $.Values.containerRuntime.enabled (has .target (list "all" "worker")) }}
      - --kube.in-cluster
      - --kube.namespace={{ default $.Release.Namespace $.Values.containerRuntime.namespace }}
      {{- end }}
      {{- range $.Values.extraArgs }}
      - {{ . | quote }}
      {{- end }}
    env:
      {{- include "tianshu.env" $ | nindent 6 }}
      {{- if .admin }}
      {{- include "tianshu.adminEnv" $ | nindent 6 }}
      {{- end }}
    {{- with (include "tianshu.envFrom" $ | trim) }}
    envFrom:
      {{- . | nindent 6 }}
    {{- end }}
    ports:
      - name: http
        containerPort: 8080
        protocol: TCP
    {{- include "tianshu.probes" $ | nindent 4 }}
    resources:
      {{- toYaml .p.resources | nindent 6 }}
    securityContext:
      {{- toYaml $.Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: data
        mountPath: /var/lib/tianshu
      - name: tmp
        mountPath: /tmp
volumes:
  {{- .volumes | nindent 2 }}
  - name: tmp
    emptyDir: {}
{{- end -}}
