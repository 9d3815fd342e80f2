package cache_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The cache knows Redis and identity.Identity, nothing of decisions or transports: authz
// declares the interface it consumes, so importing authz here would invert the arrows.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mcp-authz/mcp-authz/cache").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/mcp-authz/mcp-authz/") &&
			dep != "github.com/mcp-authz/mcp-authz/cache" && dep != "github.com/mcp-authz/mcp-authz/authz/identity",
			strings.HasPrefix(dep, "google.golang.org/grpc"),
			strings.HasPrefix(dep, "github.com/envoyproxy/"),
			strings.HasPrefix(dep, "github.com/coreos/go-oidc"),
			strings.HasPrefix(dep, "github.com/go-jose/"):
			t.Errorf("cache depends on %s", dep)
		}
	}
}
