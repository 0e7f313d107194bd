{{/* Names and labels shared by every template. */}}
{{- define "so-tagger.name" -}}
{{- printf "%s" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "so-tagger.labels" -}}
app.kubernetes.io/part-of: so-tagger
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "so-tagger.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The app image: by digest when CD gives one, else by tag. */}}
{{- define "so-tagger.appImage" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.registry }}/app@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.registry }}/app:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The pipeline image (the learning worker's): by digest when CD gives one, else by tag. */}}
{{- define "so-tagger.pipelineImage" -}}
{{- if .Values.image.pipelineDigest -}}
{{ .Values.image.registry }}/pipeline@{{ .Values.image.pipelineDigest }}
{{- else -}}
{{ .Values.image.registry }}/pipeline:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The restricted pod and container security settings every workload here uses. */}}
{{- define "so-tagger.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "so-tagger.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "so-tagger.scrape" -}}
{{- if .root.Values.monitoring.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: {{ .path | quote }}
{{- end }}
{{- end -}}
