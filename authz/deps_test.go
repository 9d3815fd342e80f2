package authz

import (
	"os/exec"
	"strings"
	"testing"
)

// The decision core sees small interfaces; it must not import the transports or the store
// behind them (DESIGN.md: dependency arrows point down only).
func TestDependencies(t *testing.T) {
	for pkg, forbidden := range map[string][]string{
		".":          {"google.golang.org/grpc", "go-control-plane", "go-redis", "otter", "mcp-authz/cache", "mcp-authz/authz/extauthz", "mcp-authz/authz/service", "net/http/httptest"},
		"./config":   {"google.golang.org/grpc", "go-control-plane", "go-redis", "mcp-authz/cache", "mcp-authz/authz/service"},
		"./extauthz": {"go-redis", "mcp-authz/cache", "mcp-authz/authz/jwt", "mcp-authz/authz/introspect", "mcp-authz/authz/service"},
		"./identity": {"mcp-authz/authz\n", "google.golang.org/grpc", "go-redis"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := string(out)
		for _, f := range forbidden {
			if strings.Contains(deps, f) {
				t.Errorf("%s depends on %s", pkg, strings.TrimSpace(f))
			}
		}
	}
}
