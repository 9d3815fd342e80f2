package config

import (
	"os"
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
	if c.Cache.RevocationLimit != 10_000 {
		t.Errorf("cache.revocation_limit = %d, want the cache's default 10000", c.Cache.RevocationLimit)
	}
	if g := c.Cache.Grace(); g != DefaultStaleGrace || g != c.Cache.MaxTTL.D() {
		t.Errorf("cache.stale_grace = %s, want the default max_ttl, 5m", g)
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
		{"empty allow_typ", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    allow_typ: [\"\"]", 1), "issuers[0].allow_typ[0]"},
		{"allow_typ without require_typ", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    require_typ: false\n    allow_typ: [JWT]", 1), "issuers[0].allow_typ[0]"},
		{"negative max stale", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    jwks_max_stale: -1h", 1), "issuers[0].jwks_max_stale"},
		{"duplicate route", good + "  - name: again\n    resource: https://mcp.example.com/mcp\n", "resources[1]"},
		{"duplicate issuer", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n  - issuer: https://as.example.com", 1), "issuers[1].issuer"},
		{"no authorization server", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n  - issuer: https://as2.example.com", 1), "resources[0].authorization_servers"},
		{"redis without secret", "cache:\n  redis:\n    addrs: [127.0.0.1:6379]\n" + good, "cache.secret"},
		{"redis bad addr", "cache:\n  secret: {env: S}\n  redis:\n    addrs: [nowhere]\n" + good, "cache.redis.addrs[0]"},
		{"redis cluster db", "cache:\n  secret: {env: S}\n  redis:\n    addrs: [127.0.0.1:7000]\n    cluster: true\n    db: 2\n" + good, "cache.redis.db"},
		{"secret env and file", "cache:\n  secret: {env: S, file: /x}\n" + good, "cache.secret"},
		{"revocation limit too small", "cache:\n  revocation_limit: 50\n" + good, "cache.revocation_limit"},
		{"revocation limit negative", "cache:\n  revocation_limit: -1\n" + good, "cache.revocation_limit"},
		{"revocation limit", "cache:\n  revocation_limit: 100\n" + good, ""},
		{"stale grace too long", "cache:\n  stale_grace: 25h\n" + good, "cache.stale_grace"},
		{"stale grace negative", "cache:\n  stale_grace: -1m\n" + good, "cache.stale_grace"},
		{"stale grace off", "cache:\n  stale_grace: 0s\n" + good, ""},
		{"introspection without client", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    introspection: {client_secret: {env: X}}", 1), "issuers[0].introspection.client_id"},
		{"introspection without secret", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    introspection: {client_id: rs}", 1), "issuers[0].introspection.client_secret"},
		{"introspection bad method", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    introspection: {client_id: rs, client_secret: {env: X}, auth_method: private_key_jwt}", 1), "issuers[0].introspection.auth_method"},
		{"fallback without introspection", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    fallback_to_introspection: true", 1), "issuers[0].fallback_to_introspection"},
		{"verify_jwt false alone", strings.Replace(good, "- issuer: https://as.example.com", "- issuer: https://as.example.com\n    verify_jwt: false", 1), "issuers[0].verify_jwt"},
		{"api key in clear", "api_keys:\n  keys:\n    - {sha256: my-secret-key, subject: ci}\n" + good, "api_keys.keys[0].sha256"},
		{"api key without subject", "api_keys:\n  keys:\n    - {sha256: " + strings.Repeat("ab", 32) + "}\n" + good, "api_keys.keys[0].subject"},
		{"api key scheme", "api_keys:\n  scheme: \"To ken\"\n" + good, "api_keys.scheme"},
		{"mcp tool scope", good + "    mcp:\n      tools:\n        delete: [\"bad scope\"]\n", "resources[0].mcp.tools.delete[0]"},
		{"tls cert without key", "listen:\n  tls: {cert_file: /x.crt}\n" + good, "listen.tls"},
		{"client ca without cert", "listen:\n  tls: {client_ca_file: /ca.crt}\n" + good, "listen.tls.client_ca_file"},
		{"dpop mode", good + "    dpop: yes\n", "resources[0].dpop"},
		{"dpop mode case", good + "    dpop: Required\n", "resources[0].dpop"},
		{"mtls mode", good + "    mtls_bound: maybe\n", "resources[0].mtls_bound"},
		{"dpop required", good + "    dpop: required\n    mtls_bound: allowed\n", ""},
		{"dpop alg HS256", "dpop:\n  algs: [ES256, HS256]\n" + good, "dpop.algs[1]"},
		{"dpop alg none", "dpop:\n  algs: [none]\n" + good, "dpop.algs[0]"},
		{"dpop window", "dpop:\n  iat_window: 2h\n" + good, "dpop.iat_window"},
		{"dpop replay mode", "dpop:\n  on_replay_store_unavailable: allow\n" + good, "dpop.on_replay_store_unavailable"},
		{"dpop replay memory", "dpop:\n  replay_memory: -5\n" + good, "dpop.replay_memory"},
		{"dpop nonce lifetime", "dpop:\n  nonce: true\n  nonce_lifetime: 1s\n" + good, "dpop.nonce_lifetime"},
		{"dpop misspelled", "dpop:\n  nonces: true\n" + good, "nonces"},
		{"forward auth proxy", "forward_auth:\n  client_certificate_header: x-forwarded-client-cert\n  trusted_proxies: [10.0.0.0]\n" + good, "forward_auth.trusted_proxies[0]"},
		{"forward auth header", "forward_auth:\n  client_certificate_header: \"x cert\"\n" + good, "forward_auth.client_certificate_header"},
		{"binding header", strings.Replace(good, "      claims:", "      binding: \"x b\"\n      claims:", 1), "resources[0].identity_headers.binding"},
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

func TestSecretRead(t *testing.T) {
	env := map[string]string{"S": "from-env"}
	getenv := func(k string) string { return env[k] }
	if v, err := (Secret{Env: "S"}).Read("k", getenv); err != nil || v != "from-env" {
		t.Errorf("env: %q %v", v, err)
	}
	f := t.TempDir() + "/s"
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	if v, err := (Secret{File: f}).Read("k", getenv); err != nil || v != "from-file" {
		t.Errorf("file: %q %v", v, err)
	}
	_, err := (Secret{Env: "UNSET"}).Read("cache.secret", getenv)
	if err == nil || !strings.Contains(err.Error(), "cache.secret") || !strings.Contains(err.Error(), "UNSET") {
		t.Errorf("unset env: %v", err)
	}
}

func TestCORSOrigins(t *testing.T) {
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"*", true}, {"https://app.example.com", true}, {"http://localhost:6274", true},
		{"https://app.example.com/", false}, {"app.example.com", false}, {"https://App.example.com", false}, {"https://a.example?x", false},
	} {
		c := minimalForCORS(t)
		c.CORS.AllowedOrigins = []string{tc.origin}
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.origin, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cors.allowed_origins[0]") {
			t.Errorf("error does not name the key: %v", err)
		}
	}
}

func minimalForCORS(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
