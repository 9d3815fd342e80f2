// Package interop runs mcp-authz between software no one here wrote: a real authorization
// server (npm oidc-provider), real MCP clients and servers (npm @modelcontextprotocol/sdk
// 1.32.2, and @modelcontextprotocol/client and /server 2.4.0 on MCP 2026-07-28) and a real
// nginx front door with deploy/nginx/mcp-authz.conf, with Redis as the shared cache. With the
// 2.x SDK it checks a per-tool rule on a token claim, and a header/body mismatch refused by
// the 2.x server behind nginx (headers only) and by mcp-authz on the ext_authz gRPC path.
//
// The Node programs (as.mjs, server.mjs, server2.mjs, client.mjs, client2.mjs) are in this
// directory, their versions pinned by package-lock.json: install them with
// `npm ci --prefix deploy/interop`. run.sh runs the scenarios for a person at a terminal with
// the mcp-authz binary; the test in this package runs the same scenarios with mcp-authz
// in-process (under the race detector in CI), loading the same configuration template,
// mcp-authz.yaml.in.
package interop
