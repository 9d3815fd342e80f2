#!/usr/bin/env bash
# Installs cyclonedx-gomod (CycloneDX SBOMs for Go modules and binaries) into the tools cache,
# once, and prints its path. About 2 minutes with an empty module cache on 2 cores; later runs
# only check the version.
#   deploy/k8s/release/install-cyclonedx.sh    (MCP_AUTHZ_TOOLS: default ~/.cache/mcp-authz-tools)
set -euo pipefail
VERSION=v1.10.0
TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
BIN=$TOOLS/cyclonedx-gomod
if [ -x "$BIN" ] && "$BIN" version 2>/dev/null | grep -q "Version:[[:space:]]*$VERSION\$"; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "install-cyclonedx.sh: go is required" >&2; exit 1; }
mkdir -p "$TOOLS"
echo "install-cyclonedx.sh: building cyclonedx-gomod $VERSION into $TOOLS" >&2
GOBIN=$TOOLS CGO_ENABLED=0 go install -trimpath "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$VERSION" >&2
echo "$BIN"
