package authz

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/mcp-authz/mcp-authz/"

// verifierForbidden: a verifier must not pull in the decision core, a transport or the cache.
var verifierForbidden = []string{
	mod + "authz\n", mod + "internal/config", mod + "internal/service", mod + "cache",
	"google.golang.org/grpc", "github.com/envoyproxy/", "github.com/redis/",
}

// TestDependencies pins the dependency graph of every package under authz (DESIGN.md:
// arrows point down only). The core sees small interfaces; it must not import the transports
// or the store behind them, and nothing below it may import it.
func TestDependencies(t *testing.T) {
	for pkg, forbidden := range map[string][]string{
		".":                     {"google.golang.org/grpc", "github.com/envoyproxy/", "github.com/redis/", "otter", mod + "cache", mod + "authz/extauthz", mod + "internal/service", "net/http/httptest"},
		"../internal/config":    {"google.golang.org/grpc", "github.com/envoyproxy/", "github.com/redis/", mod + "cache", mod + "internal/service"},
		"./extauthz":            {"github.com/redis/", mod + "cache", mod + "authz/jwt", mod + "authz/introspect", mod + "internal/service"},
		"./identity":            {mod + "authz\n", "google.golang.org/grpc", "github.com/redis/"},
		"./jwt":                 verifierForbidden,
		"./introspect":          append([]string{"github.com/coreos/go-oidc", "github.com/go-jose/"}, verifierForbidden...),
		"./apikey":              append([]string{mod + "authz/asmeta"}, verifierForbidden...),
		"./asmeta":              append([]string{"github.com/coreos/go-oidc", "github.com/go-jose/"}, verifierForbidden...),
		"./internal/tokencheck": append([]string{"github.com/coreos/go-oidc", "github.com/go-jose/"}, verifierForbidden...),
		"./dpop":                append([]string{"github.com/coreos/go-oidc", "github.com/go-jose/"}, verifierForbidden...),
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, f := range forbidden {
			if strings.Contains(string(out), f) {
				t.Errorf("%s depends on %s", pkg, strings.TrimSpace(f))
			}
		}
	}
}
