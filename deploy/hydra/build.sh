#!/usr/bin/env bash
# Builds a real Ory Hydra v2.3.0 into the tools cache, once; later runs reuse it. Prints the
# binary's path, and on a build also the seconds it took (on stderr, for CI's log).
#
# `go install github.com/ory/hydra/v2@v2.3.0` fails on the replace directives in Hydra's go.mod,
# so this builds it as a tool of a scratch module and restates the one replace the build needs
# (gobuffalo/pop is Ory's fork). The sqlite tags are what `DSN=memory` needs: without them Hydra
# starts but refuses the in-memory DSN; sqlite_omit_load_extension avoids linking dlopen.
set -euo pipefail
TOOLS=${MCP_AUTHZ_TOOLS:-$HOME/.cache/mcp-authz-tools}
BIN=$TOOLS/hydra-v2.3.0
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$TOOLS"
start=$(date +%s)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
go mod init scratch/hydrabuild >/dev/null 2>&1
# Hydra's own go.mod has this replace; a consumer module must restate it before resolving.
go mod edit -replace github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b
go get -tool github.com/ory/hydra/v2@v2.3.0 >&2
go mod tidy >&2
go build -tags sqlite,sqlite_omit_load_extension -o "$BIN.tmp" github.com/ory/hydra/v2 >&2
mv "$BIN.tmp" "$BIN"
echo "hydra: built $BIN in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
