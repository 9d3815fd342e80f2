package jwt

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies pins the dependency graph (shared/DESIGN.md): a verifier must not pull in
// the decision core, a transport or the cache.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go tool not found")
		}
		t.Skip("go tool not on PATH: cannot list dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/mcp-authz/mcp-authz/authz\n",
		"github.com/mcp-authz/mcp-authz/authz/config",
		"github.com/mcp-authz/mcp-authz/authz/service",
		"github.com/mcp-authz/mcp-authz/cache",
		"google.golang.org/grpc",
		"github.com/envoyproxy/",
		"github.com/redis/",
	}
	deps := string(out)
	for _, f := range forbidden {
		if strings.Contains(deps, f) {
			t.Errorf("forbidden dependency %q", strings.TrimSpace(f))
		}
	}
}
