{{/* Names and labels. */}}
{{- define "mcp-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcp-authz.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "mcp-authz.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mcp-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcp-authz.labels" -}}
{{ include "mcp-authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "mcp-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mcp-authz.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The configuration file: .Values.config with listen.grpc/listen.http written from
containerPorts and, when set, redis.addrs in cache.redis.addrs. The ConfigMap holds it and the
pod template carries its checksum, so pods roll when it changes.
*/}}
{{- define "mcp-authz.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $listen := $cfg.listen | default (dict) -}}
{{- $want := dict "grpc" (printf "0.0.0.0:%d" (int .Values.containerPorts.grpc)) "http" (printf "0.0.0.0:%d" (int .Values.containerPorts.http)) -}}
{{- range $k, $v := $want -}}
{{- if and (hasKey $listen $k) (ne (toString (get $listen $k)) $v) -}}
{{- fail (printf "config.listen.%s is %q, but the chart listens on %s (set containerPorts.%s instead)" $k (toString (get $listen $k)) $v $k) -}}
{{- end -}}
{{- $_ := set $listen $k $v -}}
{{- end -}}
{{- $_ := set $cfg "listen" $listen -}}
{{- with .Values.redis.addrs -}}
{{- $cache := $cfg.cache | default (dict) -}}
{{- $redis := $cache.redis | default (dict) -}}
{{- $_ := set $redis "addrs" . -}}
{{- $_ := set $cache "redis" $redis -}}
{{- $_ := set $cfg "cache" $cache -}}
{{- end -}}
{{- include "mcp-authz.checkSecretRefs" (dict "cfg" $cfg "Values" .Values) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
Every secret the configuration references must reach the pod: {env: NAME} through secretEnv,
{file: PATH} through extraVolumeMounts. Fails the render otherwise, so a default left in place
by Helm's merge of config (or a typo) shows at `helm install`, not as a crash-looping pod.
*/}}
{{- define "mcp-authz.checkSecretRefs" -}}
{{- $refs := dict "env" (dict) "file" (dict) -}}
{{- include "mcp-authz.collectSecretRefs" (dict "v" .cfg "refs" $refs) -}}
{{- $env := dict -}}
{{- range .Values.secretEnv -}}
{{- if hasKey $env .name -}}
{{- fail (printf "secretEnv names %s twice" .name) -}}
{{- end -}}
{{- $_ := set $env .name true -}}
{{- end -}}
{{- range $name, $_ := $refs.env -}}
{{- if not (hasKey $env $name) -}}
{{- fail (printf "config reads a secret from $%s, which secretEnv does not set (add {name: %s, key: …}, or set that config key to null)" $name $name) -}}
{{- end -}}
{{- end -}}
{{- range $path, $_ := $refs.file -}}
{{- $mounted := false -}}
{{- range $.Values.extraVolumeMounts -}}
{{- if hasPrefix (printf "%s/" (trimSuffix "/" .mountPath)) $path -}}
{{- $mounted = true -}}
{{- end -}}
{{- end -}}
{{- if not $mounted -}}
{{- fail (printf "config reads a secret from the file %s, which no extraVolumeMounts mountPath contains" $path) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Walks a configuration value, collecting secret references ({env: …} or {file: …}). */}}
{{- define "mcp-authz.collectSecretRefs" -}}
{{- $v := .v -}}
{{- $refs := .refs -}}
{{- if kindIs "map" $v -}}
{{- if and (or (hasKey $v "env") (hasKey $v "file")) (le (len (omit $v "env" "file")) 0) -}}
{{- if and $v.env $v.file -}}
{{- fail (printf "a secret is read from $%s and from %s: give one of env and file (null the other)" $v.env $v.file) -}}
{{- end -}}
{{- range $kind, $name := $v -}}
{{- if $name -}}
{{- $_ := set (get $refs $kind) (toString $name) true -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- range $_, $x := $v -}}
{{- include "mcp-authz.collectSecretRefs" (dict "v" $x "refs" $refs) -}}
{{- end -}}
{{- end -}}
{{- else if kindIs "slice" $v -}}
{{- range $v -}}
{{- include "mcp-authz.collectSecretRefs" (dict "v" . "refs" $refs) -}}
{{- end -}}
{{- end -}}
{{- end -}}
