package k8s

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/config"
)

// graceCoversShutdown: at SIGTERM mcp-authz drains (shutdown.drain) and then gives in-flight
// Checks shutdown.timeout; Kubernetes must not kill the pod before both are over.
func graceCoversShutdown(t *testing.T, what string, grace *int64, cfg *config.Config) {
	t.Helper()
	g := 30 * time.Second // Kubernetes' default
	if grace != nil {
		g = time.Duration(*grace) * time.Second
	}
	need := cfg.Shutdown.Drain.D() + cfg.Shutdown.Timeout.D()
	if g <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %s does not cover shutdown.drain %s + shutdown.timeout %s: raise it above %s",
			what, g, cfg.Shutdown.Drain.D(), cfg.Shutdown.Timeout.D(), need)
	}
}
