{{/*
Names and labels shared by every template. Per-province helpers take a dict:
  (dict "root" $ "province" $p)   where $p is one entry of .Values.node.provinces
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "medmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every resource name: `<release>-<chart>`, or just the release when it already
contains the chart name. Truncated to 40 characters so that `<prefix>-<province>-headless`
(17 more) stays a valid 63-character DNS label, and StatefulSet names leave room for the
controller-revision-hash label.
*/}}
{{- define "medmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `chart-version` for the helm.sh/chart label. */}}
{{- define "medmesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "medmesh.labels" -}}
helm.sh/chart: {{ include "medmesh.chart" . }}
app.kubernetes.io/name: {{ include "medmesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: medmesh
{{- end -}}

{{/* The province code of a provinces entry, as a string. */}}
{{- define "medmesh.node.code" -}}
{{- .province.code | toString -}}
{{- end -}}

{{/* StatefulSet, client Service, ConfigMap and PDB name of one province: `<prefix>-<code>`. */}}
{{- define "medmesh.node.name" -}}
{{- printf "%s-%s" (include "medmesh.fullname" .root) (include "medmesh.node.code" .) -}}
{{- end -}}

{{/* Headless Service of one province: gives each replica a stable DNS name for Raft. */}}
{{- define "medmesh.node.headless" -}}
{{- printf "%s-headless" (include "medmesh.node.name" .) -}}
{{- end -}}

{{/* DNS suffix shared by the replicas of one province: `<headless>.<ns>.svc.<domain>`. */}}
{{- define "medmesh.node.domain" -}}
{{- printf "%s.%s.svc.%s" (include "medmesh.node.headless" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* Selector labels of one province's pods (immutable once installed). */}}
{{- define "medmesh.node.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: node
medmesh.io/province: {{ include "medmesh.node.code" . | quote }}
{{- end -}}

{{/* All labels of one province's resources. */}}
{{- define "medmesh.node.labels" -}}
{{ include "medmesh.labels" .root }}
app.kubernetes.io/component: node
medmesh.io/province: {{ include "medmesh.node.code" . | quote }}
{{- end -}}

{{/*
MEDMESH_PEERS of one province: pod ordinal N is Raft id N+1 at its stable DNS name, e.g.
`1=medmesh-110000-0.medmesh-110000-headless.ns.svc.cluster.local:7111,2=...`.
*/}}
{{- define "medmesh.node.peers" -}}
{{- $name := include "medmesh.node.name" . -}}
{{- $domain := include "medmesh.node.domain" . -}}
{{- $port := int .root.Values.node.ports.raft -}}
{{- $peers := list -}}
{{- range $i := until (int .province.replicas) -}}
{{- $peers = append $peers (printf "%d=%s-%d.%s:%d" (add1 $i) $name $i $domain $port) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}

{{/*
Every Raft group of the release as a YAML list: the federation's (code 000000, `federation:
true`) when enabled, then the provinces. Templates range over `include "medmesh.groups" . |
fromYamlArray`, so the federation gets the same StatefulSet, Services, ConfigMap and PDB.
*/}}
{{- define "medmesh.groups" -}}
{{- $groups := list -}}
{{- if .Values.federation.enabled -}}
{{- $fed := dict "code" "000000" "replicas" (int .Values.federation.replicas) "federation" true -}}
{{- with .Values.federation.resources }}{{ $_ := set $fed "resources" . }}{{ end -}}
{{- with .Values.federation.storage }}{{ $_ := set $fed "storage" . }}{{ end -}}
{{- $groups = append $groups $fed -}}
{{- end -}}
{{- range $p := .Values.node.provinces -}}
{{- $groups = append $groups $p -}}
{{- end -}}
{{- toYaml $groups -}}
{{- end -}}

{{/*
MEDMESH_FEDERATION of a province: the federation's pods at their stable DNS names, e.g.
`medmesh-000000-0.medmesh-000000-headless.ns.svc.cluster.local:7111,...`. Takes the root.
*/}}
{{/* The public addresses of a group's replicas (MEDMESH_ENDPOINTS), `.` a group context. */}}
{{- define "medmesh.node.endpoints" -}}
{{- $name := include "medmesh.node.name" . -}}
{{- $domain := include "medmesh.node.domain" . -}}
{{- $port := int .root.Values.node.ports.grpc -}}
{{- $out := list -}}
{{- range $i := until (int .province.replicas) -}}
{{- $out = append $out (printf "%s-%d.%s:%d" $name $i $domain $port) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{- define "medmesh.federation.endpoints" -}}
{{- $ctx := dict "root" . "province" (dict "code" "000000" "replicas" (int .Values.federation.replicas)) -}}
{{- $name := include "medmesh.node.name" $ctx -}}
{{- $domain := include "medmesh.node.domain" $ctx -}}
{{- $port := int .Values.node.ports.grpc -}}
{{- $out := list -}}
{{- range $i := until (int .Values.federation.replicas) -}}
{{- $out = append $out (printf "%s-%d.%s:%d" $name $i $domain $port) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* ServiceAccount of the replicas. */}}
{{- define "medmesh.node.serviceAccountName" -}}
{{- if .Values.node.serviceAccount.create -}}
{{- default (printf "%s-node" (include "medmesh.fullname" .)) .Values.node.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.node.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The replicas' image reference. */}}
{{- define "medmesh.node.image" -}}
{{- printf "%s:%s" .Values.node.image.repository (.Values.node.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/*
Checks values that a schema cannot: unique province codes, the federation's reserved code.
Renders nothing; fails the render with a message naming the value at fault.
*/}}
{{- define "medmesh.validate" -}}
{{- if and .Values.federation.enabled (lt (int .Values.federation.replicas) 1) -}}
{{- fail "federation.replicas: must be at least 1" -}}
{{- end -}}
{{- if not .Values.node.provinces -}}
{{- fail "node.provinces: list at least one province" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $p := .Values.node.provinces -}}
{{- $code := toString $p.code -}}
{{- if not (regexMatch "^[0-9]{2}0000$" $code) -}}
{{- fail (printf "node.provinces[%d].code: %q is not a six-digit province code ending in 0000" $i $code) -}}
{{- end -}}
{{- if eq $code "000000" -}}
{{- fail (printf "node.provinces[%d].code: 000000 is the federation's group, not a province" $i) -}}
{{- end -}}
{{- if hasKey $seen $code -}}
{{- fail (printf "node.provinces[%d].code: %s is listed twice" $i $code) -}}
{{- end -}}
{{- $_ := set $seen $code true -}}
{{- if lt (int $p.replicas) 1 -}}
{{- fail (printf "node.provinces[%d].replicas: must be at least 1" $i) -}}
{{- end -}}
{{- end -}}
{{- range $e := .Values.node.extraEnv -}}
{{- if eq (toString $e.name) "MEDMESH_ID" -}}
{{- fail "node.extraEnv: MEDMESH_ID is derived from the pod ordinal; do not set it" -}}
{{- end -}}
{{- end -}}
{{- range $i, $p := .Values.node.provinces -}}
{{- range $e := $p.extraEnv -}}
{{- if eq (toString $e.name) "MEDMESH_ID" -}}
{{- fail (printf "node.provinces[%d].extraEnv: MEDMESH_ID is derived from the pod ordinal; do not set it" $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
