// Package deploy holds deployment files (Kubernetes manifests, the Helm chart, nginx
// configuration, an example configuration). The tests that load the manifests and the chart
// into the real Kubernetes API types, and the release command, are in deploy/k8s, a Go module of
// its own so that their dependencies stay out of mcp-authz's go.mod.
package deploy
