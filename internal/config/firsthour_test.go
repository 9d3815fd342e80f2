package config

import (
	"strings"
	"testing"
)

// An unknown key is named by its path with the nearest valid key, in the file's terms rather
// than Go's ("field algoritms not found in type config.Issuer").
func TestUnknownKeyNamesTheNearest(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"issuers:\n  - issuer: https://as.example.com\n    algoritms: [RS256]\nresources:\n  - resource: https://mcp.example.com/mcp\n",
			"issuers[0].algoritms (line 3): unknown key; did you mean algorithms?"},
		{"listen:\n  htpp: 127.0.0.1:9192\nissuers:\n  - issuer: https://as.example.com\nresources:\n  - resource: https://mcp.example.com/mcp\n",
			"listen.htpp (line 2): unknown key; did you mean http?"},
		{"resorces: []\nissuers:\n  - issuer: https://as.example.com\n",
			"resorces (line 1): unknown key; did you mean resources?"},
		{"issuers:\n  - issuer: https://as.example.com\n    jwks-uri: https://as.example.com/jwks\nresources:\n  - resource: https://mcp.example.com/mcp\n",
			"did you mean jwks_uri?"},
		{"issuers:\n  - issuer: https://as.example.com\nresources:\n  - resource: https://mcp.example.com/mcp\n    zzz: 1\n",
			"resources[0].zzz (line 5): unknown key; resources[0] takes: name, resource,"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil {
			t.Errorf("accepted:\n%s", c.yaml)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error lacks %q:\n%v", c.want, err)
		}
		if strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "not found in type") {
			t.Errorf("error speaks Go, not the file's keys: %v", err)
		}
	}
}

// Unknown keys, badly typed values and validation errors come back together, so one run of
// check-config shows everything to fix.
func TestProblemsReportedInOnePass(t *testing.T) {
	src := "clock_skew: soon\nissuers:\n  - issuer: https://as.example.com\n    algoritms: [RS256]\n    jwks_refresh_interval: often\nresources:\n  - resource: http://mcp.example.com/mcp\n"
	_, err := Parse([]byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"issuers[0].algoritms", "clock_skew", "issuers[0].jwks_refresh_interval", "resources[0].resource"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the one report lacks %s:\n%v", want, err)
		}
	}
}

// Leaving listen.http out keeps the HTTP listener (metadata, /readyz, /metrics) on its
// documented default; only an explicit empty value turns it off.
func TestListenHTTPDefault(t *testing.T) {
	base := "issuers:\n  - issuer: https://as.example.com\nresources:\n  - resource: https://mcp.example.com/mcp\n"
	for _, c := range []struct{ prefix, want string }{
		{"", DefaultHTTPListen},
		{"listen:\n  grpc: 0.0.0.0:9191\n", DefaultHTTPListen},
		{"listen:\n  http: \"\"\n", ""},
		{"listen:\n  http: 0.0.0.0:9999\n", "0.0.0.0:9999"},
	} {
		cfg, err := Parse([]byte(c.prefix + base))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Listen.HTTP != c.want {
			t.Errorf("%q: listen.http = %q, want %q", c.prefix, cfg.Listen.HTTP, c.want)
		}
	}
}
