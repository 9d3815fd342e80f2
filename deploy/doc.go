// Package deploy holds deployment files (Kubernetes manifests, nginx configuration, an example
// configuration) and the tests that load each of them into the real API types.
package deploy
