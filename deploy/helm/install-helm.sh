#!/usr/bin/env bash
# Installs helm v3.22.0 into the tools cache from the Go module proxy (no download site is
# needed), once; prints its path.
set -euo pipefail
TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
BIN=$TOOLS/helm
if [ -x "$BIN" ] && "$BIN" version --short 2>/dev/null | grep -q "^v3.22"; then echo "$BIN"; exit 0; fi
mkdir -p "$TOOLS"
GOBIN=$TOOLS go install helm.sh/helm/v3/cmd/helm@v3.22.0 >&2
echo "$BIN"
