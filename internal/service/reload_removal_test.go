package service

import (
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// Issue 15: a configuration change applies to the next Check. A token of an issuer that a
// reload removes is refused at once, though its verification is still cached (L1 here; a
// Redis entry carries the issuer it was verified against the same way).
func TestReloadRemovedIssuerRefusedAtOnce(t *testing.T) {
	a, srvA := as(t)
	b, srvB := as(t)
	r := replica(t, srvA.URL, nil, func(c *config.Config) {
		c.Issuers = append(c.Issuers, config.Issuer{Issuer: srvB.URL})
		c.Resources[0].AuthorizationServers = []string{srvA.URL, srvB.URL}
	})
	mint := func(as *demoas.Server, iss, sub string) string {
		tok, err := as.Mint(map[string]any{"iss": iss, "sub": sub, "aud": resource, "client_id": "c",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokA, tokB := mint(a, srvA.URL, "alice"), mint(b, srvB.URL, "bob")
	for _, tok := range []string{tokA, tokB} {
		if !allowed(checkToken(t, r, tok)) {
			t.Fatal("denied before the reload")
		}
	}
	next := *r.live.Load().cfg
	next.Issuers = next.Issuers[:1]
	next.Resources = []config.Resource{{Resource: resource, AuthorizationServers: []string{srvA.URL}, Scopes: config.Scopes{Required: []string{"mcp:tools"}}}}
	next.ApplyDefaults()
	if err := r.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if resp := checkToken(t, r, tokB); allowed(resp) || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Errorf("removed issuer's cached token after reload: %v", resp)
	}
	if !allowed(checkToken(t, r, tokA)) {
		t.Error("the remaining issuer's token was refused after the reload")
	}
}

// The adapter converts each shared answer once per core. A reload builds a new core whose
// answers are numbered afresh, so the adapter must drop what it converted for the old one:
// otherwise the old step-up challenge (scope="mcp:admin") would answer after a reload that
// requires another scope.
func TestReloadRenewsConvertedAnswers(t *testing.T) {
	a, srv := as(t)
	r := replica(t, srv.URL, nil, func(c *config.Config) { c.Resources[0].Scopes.Required = []string{"mcp:admin"} })
	tok := a.IssueOpaque("dave", "c", []string{"mcp:tools"}, resource, time.Hour)
	challenge := func() string {
		resp := checkToken(t, r, tok)
		return respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate")
	}
	if c := challenge(); !strings.Contains(c, `scope="mcp:admin"`) {
		t.Fatalf("before the reload: %q", c)
	}
	next := *r.live.Load().cfg
	next.Resources = []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:files"}}}}
	next.ApplyDefaults()
	if err := r.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if c := challenge(); !strings.Contains(c, `scope="mcp:files"`) {
		t.Errorf("after the reload the old core's challenge answers: %q", c)
	}
}
