#!/usr/bin/env bash
# Builds a real Jaeger v2 (all-in-one: in-memory storage, OTLP on 4317/4318, query API and UI
# on 16686) into the tools cache, once; later runs reuse it. Prints the binary's path.
#
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@latest` fails on a replace directive
# in Jaeger's go.mod, so this builds it as a tool of a scratch module and re-adds the one
# replace (Shopify/sarama pinned to v1.33.0). Module v1.76.0 is Jaeger v2.13.0.
set -euo pipefail
TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
BIN=$TOOLS/jaeger-v1.76.0
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$TOOLS"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
go mod init scratch/jaegerbuild >/dev/null 2>&1
go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0 >&2
# Jaeger's own go.mod has this replace; a consumer module must restate it.
go mod edit -replace github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
go mod tidy >&2
go build -o "$BIN.tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2
mv "$BIN.tmp" "$BIN"
echo "$BIN"
