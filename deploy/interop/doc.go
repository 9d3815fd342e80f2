// Package interop runs mcp-authz between software no one here wrote: a real authorization
// server (npm oidc-provider), a real MCP client and server (npm @modelcontextprotocol/sdk) and
// a real nginx front door with deploy/nginx/mcp-authz.conf, with Redis as the shared cache.
//
// The Node programs (as.mjs, server.mjs, client.mjs) are in this directory, their versions
// pinned by package-lock.json: install them with `npm ci --prefix deploy/interop`. run.sh runs
// the scenarios for a person at a terminal with the mcp-authz binary; the test in this package
// runs the same scenarios with mcp-authz in-process (under the race detector in CI), loading
// the same configuration template, mcp-authz.yaml.in.
package interop
