// Package hydra holds the end-to-end interop test against a real Ory Hydra v2.3.0 (in memory,
// built by build.sh into the tools cache): JWT and opaque access tokens from client_credentials
// and authorization_code, scope step-up, a refresh token refused, and revocation reaching the
// edge through issuers[].revalidate_after, all through mcp-authz's gRPC Check.
package hydra
