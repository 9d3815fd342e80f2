package config

import (
	"strings"
	"testing"
)

const good = `
dev:
  allow_http: false
issuers:
  - issuer: https://as.example.com
resources:
  - name: mcp
    resource: https://mcp.example.com/mcp
    scopes:
      required: [mcp:tools]
    identity_headers:
      claims:
        email: X-Auth-Email
`

func TestParseGoodAppliesDefaults(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Resources[0]
	if got := strings.Join(r.Hosts, ","); got != "mcp.example.com" {
		t.Errorf("hosts = %q", got)
	}
	if r.PathPrefix != "/mcp" {
		t.Errorf("path_prefix = %q", r.PathPrefix)
	}
	if got := strings.Join(r.AuthorizationServers, ","); got != "https://as.example.com" {
		t.Errorf("authorization_servers = %q", got)
	}
	if got := strings.Join(r.Audiences, ","); got != "https://mcp.example.com/mcp" {
		t.Errorf("audiences = %q", got)
	}
	if r.IdentityHeaders.Subject != DefaultSubjectHeader || r.IdentityHeaders.Claims["email"] != "x-auth-email" {
		t.Errorf("identity headers = %+v", r.IdentityHeaders)
	}
	if !*c.Issuers[0].RequireTyp {
		t.Error("require_typ should default to true (RFC 9068 §4)")
	}
	if got := strings.Join(c.Issuers[0].Algorithms, ","); got != "RS256,ES256,PS256,EdDSA" {
		t.Errorf("algorithms = %q", got)
	}
	res := c.AuthzResources()
	if len(res) != 1 || res[0].ID != "https://mcp.example.com/mcp" || !res[0].AllowCORSPreflight {
		t.Errorf("AuthzResources = %+v", res)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("resolved config does not parse again: %v\n%s", err, out)
	}
	if again.Resources[0].PathPrefix != "/mcp" {
		t.Error("round trip lost path_prefix")
	}
}

// Every kind of mistake yields an error that names the key at fault.
func TestValidationNamesTheKey(t *testing.T) {
	cases := []struct {
		name, yaml, wantKey string
	}{
		{"unknown key", "issuers: []\nresorces: []\n", "resorces"},
		{"misspelled nested key", good + "    forward_authorisation: true\n", "forward_authorisation"},
		{"no resources", "issuers:\n  - issuer: https://as.example.com\n", "resources"},
		{"http resource", strings.Replace(good, "https://mcp.example.com/mcp", "http://mcp.example.com/mcp", 1), "resources[0].resource"},
		{"fragment", strings.Replace(good, "https://mcp.example.com/mcp", "https://mcp.example.com/mcp#x", 1), "resources[0].resource"},
		{"relative resource", strings.Replace(good, "https://mcp.example.com/mcp", "mcp.example.com", 1), "resources[0].resource"},
		{"http issuer", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: http://as.example.com", 1), "issuers[0].issuer"},
		{"alg none", good + "", ""},
		{"hs256", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    algorithms: [RS256, HS256]", 1), "issuers[0].algorithms[1]"},
		{"alg none literal", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    algorithms: [none]", 1), "issuers[0].algorithms[0]"},
		{"unknown issuer on resource", good + "    issuers: [https://other.example.com]\n", "resources[0].issuers[0]"},
		{"bad scope", strings.Replace(good, "required: [mcp:tools]", `required: ["mcp tools"]`, 1), "resources[0].scopes.required[0]"},
		{"offline_access required", strings.Replace(good, "required: [mcp:tools]", "required: [offline_access]", 1), "resources[0].scopes.required[0]"},
		{"reserved header", strings.Replace(good, "X-Auth-Email", "Authorization", 1), "resources[0].identity_headers.claims.email"},
		{"bad header", strings.Replace(good, "X-Auth-Email", "x auth", 1), "resources[0].identity_headers.claims.email"},
		{"public root", good + "    public_paths: [/]\n", "resources[0].public_paths[0]"},
		{"bad duration", "clock_skew: soon\n" + good, "clock_skew"},
		{"bad unavailable", "unavailable:\n  status: 500\n" + good, "unavailable.status"},
		{"bad listen", "listen:\n  grpc: nowhere\n" + good, "listen.grpc"},
		{"bad log level", "log:\n  level: loud\n" + good, "log.level"},
		{"refresh too fast", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    jwks_refresh_interval: 10ms", 1), "issuers[0].jwks_refresh_interval"},
		{"duplicate route", good + "  - name: again\n    resource: https://mcp.example.com/mcp\n", "resources[1]"},
		{"duplicate issuer", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n  - issuer: https://as.example.com", 1), "issuers[1].issuer"},
		{"no authorization server", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n  - issuer: https://as2.example.com", 1), "resources[0].authorization_servers"},
		{"empty file", "", "empty"},
		{"not yaml", "{{{", "config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error naming %s", tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("error %q does not name %s", err, tc.wantKey)
			}
		})
	}
}

func TestDevAllowHTTP(t *testing.T) {
	y := "dev:\n  allow_http: true\n" + strings.NewReplacer("https://", "http://").Replace(strings.Replace(good, "dev:\n  allow_http: false\n", "", 1))
	if _, err := Parse([]byte(y)); err != nil {
		t.Fatalf("dev.allow_http should accept http URLs: %v", err)
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	y := "log:\n  level: loud\n  format: xml\n" + good
	_, err := Parse([]byte(y))
	if err == nil || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "log.format") {
		t.Fatalf("want both log.level and log.format reported, got %v", err)
	}
}
