// Package envoy holds the tests of the shipped proxy configurations (envoy/ at the repository's
// root) that need Istio's API types: the Istio manifests decoded strictly into them, and the
// proxies' ext_authz timeouts, Istio's included, against every shipped mcp-authz configuration.
// They live in the deploy/k8s module so that istio.io/api stays out of mcp-authz's go.mod; the
// rest of envoy/'s tests are beside its files.
package envoy
