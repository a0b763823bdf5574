{{- define "pq-issuer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pq-issuer.fullname" -}}
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

{{- define "pq-issuer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pq-issuer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pq-issuer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pq-issuer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pq-issuer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pq-issuer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pq-issuer.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.clusterResourceNamespace }}
{{- end }}

{{- define "pq-issuer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- /* pq-issuer.durationMs is a duration of one unit (30s, 1m, 500ms, 1h) in milliseconds. */}}
{{- define "pq-issuer.durationMs" -}}
{{- $n := regexFind "^[0-9]+" . }}
{{- mul ($n | int64) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) (trimPrefix $n .)) }}
{{- end }}

{{/*
pq-issuer.generatedRules returns, as YAML {clusterRole: [...], role: [...]}, the rules controller-gen
generated from the controllers' RBAC markers (make manifests copies config/rbac/role.yaml into
files/rbac): the ClusterRole's and the leader election Role's.
*/}}
{{- define "pq-issuer.generatedRules" -}}
{{- $out := dict "clusterRole" list "role" list }}
{{- range $doc := splitList "\n---\n" (.Files.Get "files/rbac/role.yaml") }}
{{- $obj := fromYaml $doc }}
{{- if eq (get $obj "kind") "ClusterRole" }}
{{- $_ := set $out "clusterRole" $obj.rules }}
{{- else if eq (get $obj "kind") "Role" }}
{{- $_ := set $out "role" $obj.rules }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
