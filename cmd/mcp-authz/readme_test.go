package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/config"
)

// Every complete configuration the README shows (a YAML block with resources) must validate:
// documentation that does not parse is a bug.
func TestREADMEConfigsValidate(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	n := 0
	for _, m := range blocks {
		if !strings.Contains(m[1], "resources:") {
			continue // an Envoy fragment
		}
		n++
		if _, err := config.Parse([]byte(m[1])); err != nil {
			t.Errorf("README config block %d does not validate: %v\n%s", n, err, m[1])
		}
	}
	if n < 2 {
		t.Errorf("found %d configuration blocks in the README; want the reference and the cache/introspection example", n)
	}
}
