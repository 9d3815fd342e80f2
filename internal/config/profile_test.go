package config

import (
	"strings"
	"testing"
)

func issuerYAML(extra string) string {
	return `
issuers:
  - issuer: https://as.example.com
` + extra + `
resources:
  - name: mcp
    resource: https://mcp.example.com/mcp
`
}

// Each profile fills in only what the operator left unset, and says what it set.
func TestProfileFillsUnsetKeys(t *testing.T) {
	cases := []struct {
		name, yaml string
		typ        bool // require_typ after defaults
		allowTyp   string
		set        string
	}{
		{"generic", "", true, "", ""},
		{"hydra", "    profile: hydra", true, "JWT", "allow_typ: [JWT]"},
		{"keycloak", "    profile: keycloak", true, "JWT", "allow_typ: [JWT]"},
		{"entra", "    profile: entra", true, "JWT", "allow_typ: [JWT]; roles_as_scopes: true (app-only tokens carry roles, not scp)"},
		{"auth0", "    profile: auth0", true, "JWT", "allow_typ: [JWT]"},
		{"okta", "    profile: okta", false, "", "require_typ: false"},
		{"cognito", "    profile: cognito", false, "", "require_typ: false"},
		{"operator's typ wins", "    profile: okta\n    require_typ: true", true, "", ""},
		{"operator's allow_typ wins", "    profile: hydra\n    allow_typ: [jwt]", true, "jwt", ""},
		{"hydra introspection without credentials", "    profile: hydra\n    introspection: {endpoint: https://hydra-admin.internal/admin/oauth2/introspect}", true, "JWT",
			"allow_typ: [JWT]; introspection.auth_method: none (the admin API takes no client authentication)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(issuerYAML(tc.yaml)))
			if err != nil {
				t.Fatal(err)
			}
			is := c.Issuers[0]
			if *is.RequireTyp != tc.typ || strings.Join(is.AllowTyp, ",") != tc.allowTyp {
				t.Errorf("require_typ %v allow_typ %v, want %v %q", *is.RequireTyp, is.AllowTyp, tc.typ, tc.allowTyp)
			}
			if got := strings.Join(is.ProfileSet(), "; "); got != tc.set {
				t.Errorf("ProfileSet = %q, want %q", got, tc.set)
			}
			c.ApplyDefaults() // again, as a caller building on a parsed config may
			if got := strings.Join(c.Issuers[0].ProfileSet(), "; "); got != tc.set {
				t.Errorf("after ApplyDefaults again, ProfileSet = %q, want %q", got, tc.set)
			}
			if r := is.ProfileReport("issuers[0]"); !strings.Contains(r, "access token typ: ") || !strings.Contains(r, "issuer form: ") {
				t.Errorf("report lacks the profile's shapes:\n%s", r)
			}
		})
	}
}

// Mistakes a profile knows about are config errors naming the key and the fix.
func TestProfileErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"    profile: hidra", `issuers[0].profile: "hidra" is not a known profile: use one of auth0, cognito, entra, generic, hydra, keycloak, okta`},
		{"    profile: hydra\n    introspection: {}", "issuers[0].introspection.endpoint: required with profile: hydra"},
		{"    profile: entra\n    introspection: {client_id: rs, client_secret: {env: X}}", "issuers[0].introspection: profile entra: none: Entra ID has no RFC 7662 endpoint"},
		{"    introspection: {auth_method: none, client_id: rs}", "issuers[0].introspection.auth_method: none sends no credentials: remove client_id"},
		{"    introspection: {}", "issuers[0].introspection.client_id: required"},
		{"    revalidate_after: 10s", "issuers[0].revalidate_after: applies to introspected tokens and this issuer has no introspection"},
		{"    revalidate_after: 10m\n    introspection: {client_id: rs, client_secret: {env: X}}", "issuers[0].revalidate_after: 10m0s is not below cache.max_ttl 5m0s"},
		{"    revalidate_after: 100ms\n    introspection: {client_id: rs, client_secret: {env: X}}", "issuers[0].revalidate_after: 100ms is under 1s"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(issuerYAML(tc.yaml)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
	// Hydra's admin endpoint without credentials is valid.
	if _, err := Parse([]byte(issuerYAML("    profile: hydra\n    revalidate_after: 5s\n    introspection: {endpoint: https://h.internal/admin/oauth2/introspect}"))); err != nil {
		t.Errorf("hydra with its admin introspection: %v", err)
	}
}
