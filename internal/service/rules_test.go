package service

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// Two resources on two hosts, trusting two issuers, each with its own rules, from a YAML file
// as an operator writes it; real JWTs from two authorization servers, real gRPC.
func TestMultiResourceRules(t *testing.T) {
	a, srvA := as(t)
	b, srvB := as(t)
	yml := fmt.Sprintf(`
listen: { grpc: 127.0.0.1:0, http: 127.0.0.1:0 }
dev: { allow_http: true }
issuers:
  - issuer: %[1]s
  - issuer: %[2]s
resources:
  - name: tools
    resource: http://localhost:8080/mcp
    authorization_servers: [%[1]s]
    scopes: { required: [mcp:tools] }
    rules:
      - name: refund-finance-only
        match: { tools: [refund] }
        scopes: [payments:write]
        when: '"finance" in claims.groups'
        error_description: Refunds are for the finance group.
      - name: secrets-admin-only
        match: { resources: ["file:///secrets/*"] }
        when: 'claims.role == "admin"'
  - name: tenants
    resource: http://api.localhost:8080/t
    authorization_servers: [%[2]s]
    scopes: { required: [api] }
    identity_headers: { claims: { tenant: x-tenant } }
    rules:
      - name: own-tenant
        match: { paths: ["/t/*"] }
        when: 'request.path.startsWith("/t/" + claims.tenant + "/")'
`, srvA.URL, srvB.URL)
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	s := startService(t, cfg, Options{})
	mint := func(as *demoas.Server, iss, aud, scope string, extra map[string]any) string {
		c := map[string]any{"iss": iss, "sub": "u", "aud": aud, "client_id": "c", "scope": scope,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		tok, err := as.Mint(c, demoas.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	toolsAud, tenantsAud := "http://localhost:8080/mcp", "http://api.localhost:8080/t"
	finance := mint(a, srvA.URL, toolsAud, "mcp:tools payments:write", map[string]any{"groups": []string{"finance"}})
	staff := mint(a, srvA.URL, toolsAud, "mcp:tools payments:write", map[string]any{"groups": []string{"staff"}, "role": "user"})
	admin := mint(a, srvA.URL, toolsAud, "mcp:tools", map[string]any{"groups": []string{"it"}, "role": "admin"})
	noPay := mint(a, srvA.URL, toolsAud, "mcp:tools", map[string]any{"groups": []string{"finance"}})
	acme := mint(b, srvB.URL, tenantsAud, "api", map[string]any{"tenant": "acme"})
	acmeOnTools := mint(b, srvB.URL, toolsAud, "mcp:tools", map[string]any{"groups": []string{"finance"}})

	c := authv3.NewAuthorizationClient(dial(t, s.GRPCAddr()))
	body := func(method, param, name string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{%q:%q}}`, method, param, name)
	}
	mcp := func(tok, b string) *authv3.CheckRequest {
		r := checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json"})
		r.Attributes.Request.Http.Body = b
		return r
	}
	tenant := func(tok, path string) *authv3.CheckRequest {
		r := checkReq(path, map[string]string{"authorization": "Bearer " + tok, ":authority": "api.localhost:8080"})
		r.Attributes.Request.Http.Method, r.Attributes.Request.Http.Host = "GET", "api.localhost:8080"
		return r
	}
	for name, tc := range map[string]struct {
		req    *authv3.CheckRequest
		status int32 // 0: allowed
		want   string
	}{
		"finance refund":           {mcp(finance, body("tools/call", "name", "refund")), 0, ""},
		"staff refund":             {mcp(staff, body("tools/call", "name", "refund")), 403, "Refunds are for the finance group."},
		"refund without the scope": {mcp(noPay, body("tools/call", "name", "refund")), 403, `mcp:tools payments:write`},
		"staff echo":               {mcp(staff, body("tools/call", "name", "echo")), 0, ""},
		"admin reads a secret":     {mcp(admin, body("resources/read", "uri", "file:///secrets/k")), 0, ""},
		"staff reads a secret":     {mcp(staff, body("resources/read", "uri", "file:///secrets/k")), 403, "access_denied"},
		"own tenant":               {tenant(acme, "/t/acme/orders"), 0, "x-tenant"},
		"other tenant":             {tenant(acme, "/t/globex/orders"), 403, "access_denied"},
		"other issuer on tools":    {mcp(acmeOnTools, body("tools/call", "name", "echo")), 401, "invalid_token"},
		"tools token on tenants":   {tenant(finance, "/t/acme/orders"), 401, "invalid_token"},
	} {
		resp, err := c.Check(t.Context(), tc.req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := int32(resp.GetDeniedResponse().GetStatus().GetCode()); got != tc.status || tc.status == 0 && !allowed(resp) {
			t.Errorf("%s: status %d, want %d: %v", name, got, tc.status, resp)
			continue
		}
		if !strings.Contains(resp.String(), tc.want) {
			t.Errorf("%s: %q not in %v", name, tc.want, resp)
		}
	}
}

// The demo's refund rule, as its printout shows it: step-up, claim denial, allow.
func TestDemoRules(t *testing.T) {
	d := startDemo(t)
	c := authv3.NewAuthorizationClient(dial(t, d.GRPCAddr()))
	refund := func(tok string) *authv3.CheckResponse {
		resp, err := c.Check(t.Context(), checkReq("/mcp/payments", map[string]string{"authorization": "Bearer " + tok,
			"mcp-method": "tools/call", "mcp-name": "refund"}))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	pay := *d
	pay.Resource = PaymentsResource(d.Resource)
	resp := refund(tokenFor(t, &pay, "demo", "mcp:tools"))
	if ch := respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="mcp:tools payments:write"`) {
		t.Errorf("mcp:tools token: %v", resp)
	}
	resp = refund(tokenFor(t, &pay, "demo", "mcp:tools+payments:write"))
	if resp.GetDeniedResponse().GetStatus().GetCode() != 403 || respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate") != "" ||
		!strings.Contains(resp.GetDeniedResponse().GetBody(), "Refunds are for the finance group.") {
		t.Errorf("staff token: %v", resp)
	}
	resp = refund(tokenFor(t, &pay, "demo-finance", "mcp:tools+payments:write"))
	if !allowed(resp) || resp.GetDynamicMetadata().GetFields()["mcp_name"].GetStringValue() != "refund" ||
		resp.GetDynamicMetadata().GetFields()["subject"].GetStringValue() != "demo-finance" {
		t.Errorf("finance token: %v", resp)
	}
	// A POST to the payments server that names no operation could be a refund: refused.
	resp, _ = c.Check(t.Context(), checkReq("/mcp/payments", map[string]string{"authorization": "Bearer " + tokenFor(t, &pay, "demo-finance", "mcp:tools")}))
	if resp.GetDeniedResponse().GetStatus().GetCode() != 400 {
		t.Errorf("POST without an operation: %v", resp)
	}
}

// Decision logs say who called which tool, allowed or refused by a rule, and never the token.
func TestDecisionLogNamesCallerAndOperation(t *testing.T) {
	a, srv := as(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := replicaWith(t, srv.URL, nil, func(c *config.Config) {
		c.Log.Decisions = "info"
		c.Resources[0].Rules = []config.Rule{{Name: "no-refund", Match: config.RuleMatch{Tools: []string{"refund"}}, When: `subject == "nobody"`}}
	}, Options{Logger: log})
	tok, _ := a.Mint(map[string]any{"iss": srv.URL, "sub": "gina", "aud": resource, "client_id": "agent-7",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
	c := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr()))
	for _, tool := range []string{"echo", "refund"} {
		c.Check(t.Context(), checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok, "mcp-method": "tools/call", "mcp-name": tool}))
	}
	out := logs.String()
	for _, want := range []string{
		`"allow":true,"reason":"allow"`, `"allow":false,"reason":"policy_denied"`,
		`"subject":"gina","client_id":"agent-7","mcp_method":"tools/call","mcp_name":"echo"`,
		`"subject":"gina","client_id":"agent-7","mcp_method":"tools/call","mcp_name":"refund"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("decision log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Error("the token is in the decision log")
	}
}
