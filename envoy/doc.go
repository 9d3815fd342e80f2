// Package envoy holds Envoy (envoy*.yaml) and Istio (istio/) configurations that put mcp-authz in
// front of an MCP server, and the tests that load each of them into the real Envoy and Istio API
// types. Envoy cannot be installed here, so the tests do what `envoy --mode validate` would do
// for schema and references: strict decoding, protoc-gen-validate rules inside every typed_config,
// and the cross-references no schema checks.
package envoy
