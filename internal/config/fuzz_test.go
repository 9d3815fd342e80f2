package config

import (
	"os"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz"
)

// FuzzParse: no input panics the loader; a refusal always says something; an accepted config
// survives check-config's rendering unchanged and builds a decision core.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	if b, err := os.ReadFile("../../deploy/config.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"", "---", "resources: {}", "issuers: [[]]", "clock_skew: 1e9999h", "a: &a [*a]",
		"resources:\n  - resource: http://[::1\n", "cache:\n  l1_size: 99999999999999999999\n",
		good + "scope_implies:\n  mcp:admin: [mcp:tools, mcp:admin]\n",
		strings.Replace(good, "[mcp:tools]", "[\"\\u0000\"]", 1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("a refusal with no message")
			}
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("accepted config does not render: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("rendered config is refused: %v\n%s", err, out)
		}
		out2, err := c2.Marshal()
		if err != nil || string(out2) != string(out) {
			t.Fatalf("rendering is not stable:\n%s\n---\n%s", out, out2)
		}
		if _, err := authz.New(authz.Options{Resources: c.AuthzResources(), Unavailable: c.AuthzUnavailable()}); err != nil {
			t.Fatalf("accepted config does not build a decision core: %v", err)
		}
	})
}
