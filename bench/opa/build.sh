#!/usr/bin/env bash
# Builds the stock OPA-Envoy ext_authz server (opa-envoy-plugin, OPA with the Envoy plugin) once,
# into ${MCP_AUTHZ_TOOLS:-~/.cache/mcp-authz-tools}, and prints its path. Idempotent: a second
# run only prints the path. About a minute with a cold module cache.
#
# `go install github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin@…` is refused
# by the module proxy (no version list for that module), but one exact version can be fetched
# with `go get` in a scratch module outside this repository, and built from there.
set -euo pipefail
VER=${OPA_ENVOY_VERSION:-v1.15.2-envoy}
TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
OUT=$TOOLS/opa-envoy-plugin-$VER
if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$TOOLS"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
export GOWORK=off GOFLAGS=-mod=mod
go mod init mcp-authz-bench/opa >/dev/null 2>&1
PKG=github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin
echo "building opa-envoy-plugin $VER into $TOOLS (about a minute the first time)" >&2
if ! { go get "$PKG@$VER" && go build -trimpath -o "$OUT.tmp" "$PKG"; } >"$SCRATCH/log" 2>&1; then
  cat "$SCRATCH/log" >&2; exit 1
fi
mv "$OUT.tmp" "$OUT"
echo "$OUT"
