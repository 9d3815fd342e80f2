// Package authz is the decision core of mcp-authz: given one HTTP request as a proxy saw it, it
// decides whether the caller's OAuth access token is good for the protected resource being
// called, and says so as a Decision that an adapter (Envoy ext_authz, HTTP forward-auth) turns
// into its own wire format.
//
// It implements the resource-server side of:
//   - RFC 6750 §2.1 (Bearer credentials in the Authorization header) and §3, §3.1 (the
//     WWW-Authenticate challenge and its error codes);
//   - RFC 9728 §3 (Protected Resource Metadata at the path-inserted well-known URI) and §5.1
//     (the resource_metadata challenge parameter);
//   - RFC 8707 §2 and RFC 9068 §4 (the token's audience must name this resource);
//   - the MCP authorization specification (2025-06-18, 2025-11-25, 2026-07-28): challenges an MCP
//     client can act on, step-up with every scope the operation needs, no token passthrough.
//
// The package knows nothing of gRPC, HTTP servers or Redis: it sees small interfaces that its
// callers satisfy: Verifier (one verifier of the chain), TokenVerifier (the chain behind a
// cache: cache.Verifier), UpstreamCredentials.
package authz
