// Package k8s tests the Kubernetes manifests and the Helm chart under deploy/ by loading every
// object strictly into the real k8s.io/api types (the chart rendered by a real helm).
//
// This folder is its own Go module (github.com/mcp-authz/mcp-authz/deploy/k8s), holding what
// needs the Kubernetes and Istio API types or go-containerregistry: these tests, envoy/ (the
// Istio and proxy-timeout tests of the repository's envoy/ files) and release/ (the release
// command). Their dependencies stay out of mcp-authz's own go.mod. It builds against the
// repository's mcp-authz through a replace directive; the README's test command runs its tests
// too.
package k8s
