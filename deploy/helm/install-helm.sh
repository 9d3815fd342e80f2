#!/usr/bin/env bash
# Installs helm into the tools cache, once, and prints its path (progress goes to stderr).
# helm is built from source through the Go module proxy, the one place these machines get it
# from, with the version stamps of helm's own Makefile: its version, and the Kubernetes
# version its client libraries target (which `helm template` reports as the cluster's and
# `helm lint` checks deprecated APIs against). About 1.5 minutes with an empty Go module
# cache, on 2 cores; a second run only checks the binary's version.
#   deploy/helm/install-helm.sh     (MCP_AUTHZ_TOOLS: default ~/.cache/mcp-authz-tools)
set -euo pipefail
VERSION=v3.22.0
K8S_MAJOR=1 K8S_MINOR=37   # helm v3.22.0 requires k8s.io/client-go v0.37.0
TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
BIN=$TOOLS/helm
if [ -x "$BIN" ] && [ "$("$BIN" version --template '{{.Version}}' 2>/dev/null)" = "$VERSION" ]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "install-helm.sh: go is required" >&2; exit 1; }
mkdir -p "$TOOLS"
echo "install-helm.sh: building helm $VERSION into $TOOLS" >&2
start=$SECONDS
x="-X helm.sh/helm/v3/internal/version.version=$VERSION"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  x="$x -X $p.k8sVersionMajor=$K8S_MAJOR -X $p.k8sVersionMinor=$K8S_MINOR"
done
GOBIN=$TOOLS CGO_ENABLED=0 go install -trimpath -ldflags "-s -w $x" "helm.sh/helm/v3/cmd/helm@$VERSION" >&2
got=$("$BIN" version --template '{{.Version}}')
[ "$got" = "$VERSION" ] || { echo "install-helm.sh: built helm reports $got, want $VERSION" >&2; exit 1; }
echo "install-helm.sh: helm $VERSION built in $((SECONDS - start)) s" >&2
echo "$BIN"
