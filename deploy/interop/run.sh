#!/usr/bin/env bash
# Runs the interop end to end: oidc-provider (authorization server), the MCP SDK's server and
# client, nginx in front, mcp-authz deciding with a shared Redis. Needs node (>= 20), nginx and
# redis-server; installs the pinned npm packages on first use.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund
cd ../..
exec go test -count=1 -v -run TestMCPClientThroughNginxWithOIDCProvider ./deploy/interop/
