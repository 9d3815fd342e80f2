package authz

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/policy"
)

func mustCompile(t testing.TB, src string) *policy.Program {
	t.Helper()
	p, err := policy.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rulesAuthorizer: two resources on two issuers with distinct rules, as the README's Policies
// section describes them.
func rulesAuthorizer(t testing.TB) *Authorizer {
	t.Helper()
	const iss2 = "https://login.example.org"
	id := func(issuer string, scopes []string, claims map[string]string) identity.Identity {
		aud := res
		if issuer == iss2 {
			aud = "https://api.example.com/t"
		}
		return identity.Identity{Issuer: issuer, Subject: "user-1", ClientID: "client-1", Audience: []string{aud},
			Scopes: scopes, Expiry: testNow.Add(time.Hour), Claims: claims, Source: identity.SourceJWT}
	}
	finance := map[string]string{"groups": `["finance","staff"]`, "role": `"user"`}
	staff := map[string]string{"groups": `["staff"]`, "role": `"user"`}
	admin := map[string]string{"groups": `["it"]`, "role": `"admin"`}
	tv := tableVerifier{
		"finance":         {id: id(iss, []string{"mcp:tools", "payments:write"}, finance)},
		"finance-noscope": {id: id(iss, []string{"mcp:tools"}, finance)},
		"staff":           {id: id(iss, []string{"mcp:tools", "payments:write"}, staff)},
		"admin":           {id: id(iss, []string{"mcp:tools"}, admin)},
		"noclaims":        {id: id(iss, []string{"mcp:tools", "payments:write"}, nil)},
		"acme":            {id: id(iss2, []string{"api"}, map[string]string{"tenant": `"acme"`})},
		"globex":          {id: id(iss2, []string{"api"}, map[string]string{"tenant": `"globex"`})},
		"acme-on-mcp":     {id: id(iss2, []string{"mcp:tools"}, map[string]string{"tenant": `"acme"`})},
	}
	a, err := New(Options{Unavailable: Unavailable{Status: 401},
		Resources: []Resource{{
			Name: "mcp", ID: res, AuthorizationServers: []string{iss},
			RequiredScopes: []string{"mcp:tools"},
			Headers:        IdentityHeaders{Subject: "x-auth-subject"},
			Rules: []Rule{
				{Name: "get-public", Methods: []string{"GET"}, Paths: []string{"/mcp/docs/*"}, Public: true},
				{Name: "refund", Tools: []string{"refund"}, Scopes: []string{"payments:write"},
					When: mustCompile(t, `"finance" in claims.groups`), Description: "Refunds are for the finance group."},
				{Name: "secrets", Resources: []string{"file:///secrets/*"}, When: mustCompile(t, `claims.role == "admin"`)},
				{Name: "small-refunds", Tools: []string{"refund"}, When: mustCompile(t, `mcp.arguments.amount <= 1000`)},
				{Name: "region", Tools: []string{"geo_*"}, When: mustCompile(t, `has(mcp.params.region) && mcp.params.region == "eu"`)},
			},
		}, {
			Name: "tenants", ID: "https://api.example.com/t", AuthorizationServers: []string{iss2},
			RequiredScopes: []string{"api"},
			Rules: []Rule{
				{Name: "own-tenant", Paths: []string{"/t/*"}, When: mustCompile(t, `request.path.startsWith("/t/" + claims.tenant + "/")`),
					Description: "Only your own tenant."},
				{Name: "post-needs-write", Methods: []string{"POST"}, Scopes: []string{"api:write"}},
			},
		}},
		Verifiers: Verifiers{Opaque: tv},
		Now:       func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mcpReq(token, body string, headers ...string) *Request {
	r := req("POST", "/mcp", append([]string{"authorization", "Bearer " + token, "content-type", "application/json"}, headers...)...)
	r.Body = []byte(body)
	return r
}

func call(tool, args string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, tool, args)
}

func TestRules(t *testing.T) {
	a := rulesAuthorizer(t)
	read := func(uri string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":%q}}`, uri)
	}
	tenant := func(method, path, token string) *Request {
		r := req(method, path, "authorization", "Bearer "+token)
		r.Host = "api.example.com"
		return r
	}
	for _, c := range []struct {
		name   string
		r      *Request
		status int
		golden bool
	}{
		{"refund_finance", mcpReq("finance", call("refund", `{"amount":250}`)), 200, false},
		{"refund_staff_denied", mcpReq("staff", call("refund", `{"amount":250}`)), 403, true},
		{"refund_no_claims_denied", mcpReq("noclaims", call("refund", `{"amount":250}`)), 403, false},
		{"refund_step_up_first", mcpReq("finance-noscope", call("refund", `{"amount":250}`)), 403, true},
		{"refund_too_large", mcpReq("finance", call("refund", `{"amount":5000}`)), 403, true},
		{"refund_no_arguments", mcpReq("finance", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"refund"}}`), 403, false},
		{"other_tool_staff", mcpReq("staff", call("echo", `{}`)), 200, false},
		{"batch_denied_if_any_member", mcpReq("staff", "["+call("echo", `{}`)+","+call("refund", `{"amount":1}`)+"]"), 403, false},
		{"batch_all_allowed", mcpReq("finance", "["+call("echo", `{}`)+","+call("refund", `{"amount":1}`)+"]"), 200, false},
		{"secrets_admin", mcpReq("admin", read("file:///secrets/db.txt")), 200, false},
		{"secrets_staff", mcpReq("staff", read("file:///secrets/db.txt")), 403, true},
		{"public_file_staff", mcpReq("staff", read("file:///public/secrets/x")), 200, false},
		{"headers_only_refund_staff", mcpReq("staff", "", "mcp-method", "tools/call", "mcp-name", "refund"), 403, false},
		{"headers_only_secrets_base64", mcpReq("staff", "", "mcp-method", "resources/read", "mcp-name", "=?base64?ZmlsZTovLy9zZWNyZXRzL2RiLnR4dA==?="), 403, false},
		{"param_header_eu", mcpReq("staff", call("geo_lookup", `{}`), "mcp-param-region", "eu"), 200, false},
		{"param_header_us", mcpReq("staff", call("geo_lookup", `{}`), "mcp-param-region", "us"), 403, false},
		{"param_header_base64", mcpReq("staff", call("geo_lookup", `{}`), "mcp-param-region", "=?base64?ZXU=?="), 200, false},
		{"param_header_missing", mcpReq("staff", call("geo_lookup", `{}`)), 403, false},
		{"param_header_bad_base64", mcpReq("staff", call("geo_lookup", `{}`), "mcp-param-region", "=?base64?%%?="), 400, false},
		{"get_docs_public", req("GET", "/mcp/docs/intro"), 0, false},
		{"post_docs_not_public", req("POST", "/mcp/docs/intro"), 401, false},
		{"get_docs_dot_segments", req("GET", "/mcp/docs/../admin"), 401, false},
		{"tenant_own", tenant("GET", "/t/acme/orders", "acme"), 200, false},
		{"tenant_other", tenant("GET", "/t/acme/orders", "globex"), 403, true},
		{"tenant_prefix_trick", tenant("GET", "/t/acme-evil/orders", "acme"), 403, false},
		{"tenant_post_step_up", tenant("POST", "/t/acme/orders", "acme"), 403, true},
		{"issuer_of_other_resource", mcpReq("acme-on-mcp", call("echo", `{}`)), 401, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := a.Check(t.Context(), c.r)
			switch {
			case c.status == 200 && (!d.Allow || d.Reason != ReasonAllow):
				t.Fatalf("want allow, got %d %s (%v)", d.Status, d.Reason, d.Err)
			case c.status == 0 && (!d.Allow || d.Reason != ReasonPublic):
				t.Fatalf("want public, got %d %s (%v)", d.Status, d.Reason, d.Err)
			case c.status > 200 && (d.Allow || d.Status != c.status):
				t.Fatalf("want %d, got allow=%v %d %s (%v)", c.status, d.Allow, d.Status, d.Reason, d.Err)
			}
			if c.golden {
				golden(t, render(d))
				// Byte-identical on repeat: MCP clients compare challenges to stop retrying.
				if again := render(a.Check(t.Context(), c.r)); again != render(d) {
					t.Errorf("second answer differs:\n%s", again)
				}
			}
		})
	}
}

// A failed condition never invites a step-up: no WWW-Authenticate, and the reason says so.
func TestRulePolicyDenialHasNoChallenge(t *testing.T) {
	a := rulesAuthorizer(t)
	d := a.Check(t.Context(), mcpReq("staff", call("refund", `{"amount":1}`)))
	if d.Reason != ReasonPolicy || d.Status != 403 {
		t.Fatalf("got %d %s", d.Status, d.Reason)
	}
	for _, h := range d.Headers {
		if h.Name == "www-authenticate" {
			t.Errorf("policy denial carries a challenge: %s", h.Value)
		}
	}
	if !strings.Contains(string(d.Body), "Refunds are for the finance group.") {
		t.Errorf("body %s lacks the rule's description", d.Body)
	}
	if d.Shared == 0 {
		t.Error("a rule's denial is built per Check; it is precomputed per rule")
	}
	if d.Operation == nil || d.Operation.Name != "refund" || d.Operation.Arguments != nil {
		t.Errorf("operation %+v", d.Operation)
	}
}

// Rules are copied by New: the caller's later changes (a reload builds a new Authorizer from
// new slices, but a caller could reuse them) do not reach a running Authorizer.
func TestRulesCopied(t *testing.T) {
	paths := []string{"/mcp/docs/*"}
	a, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: []Resource{{Name: "m", ID: res, AuthorizationServers: []string{iss},
		Rules: []Rule{{Name: "p", Methods: []string{"GET"}, Paths: paths, Public: true}}}},
		Verifiers: Verifiers{Opaque: tableVerifier{}}})
	if err != nil {
		t.Fatal(err)
	}
	paths[0] = "/*"
	if d := a.Check(t.Context(), req("GET", "/mcp/other")); d.Allow {
		t.Error("changing the caller's slice made another path public")
	}
}

func TestPublicRuleRefused(t *testing.T) {
	_, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: []Resource{{Name: "m", ID: res, AuthorizationServers: []string{iss},
		Rules: []Rule{{Name: "p", Tools: []string{"x"}, Public: true}}}}})
	if err == nil || !strings.Contains(err.Error(), "public rule") {
		t.Fatalf("err = %v", err)
	}
}

// A condition over the MCP operation on a resource that no MCP match makes read it: the
// operation must still be read, or mcp.name is "" and a negative condition passes any tool.
func TestRuleConditionOnMCPReadsTheOperation(t *testing.T) {
	tv := tableVerifier{"good": {id: goodID()}}
	a, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: []Resource{{Name: "m", ID: res, AuthorizationServers: []string{iss},
		Rules: []Rule{{Name: "no-refund", When: mustCompile(t, `mcp.name != "refund"`)}}}},
		Verifiers: Verifiers{Opaque: tv}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Check(t.Context(), mcpReq("good", call("refund", `{}`))); d.Allow {
		t.Error("refund allowed: the condition saw no operation")
	}
	if d := a.Check(t.Context(), mcpReq("good", "", "mcp-method", "tools/call", "mcp-name", "refund")); d.Allow {
		t.Error("refund by headers allowed")
	}
	if d := a.Check(t.Context(), mcpReq("good", call("echo", `{}`))); !d.Allow {
		t.Errorf("echo refused: %v", d.Err)
	}
}

// A header a condition reads, sent twice, is ambiguous (the upstream may take either copy).
func TestRuleConditionOnRepeatedHeader(t *testing.T) {
	tv := tableVerifier{"good": {id: goodID()}}
	a, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: []Resource{{Name: "m", ID: res, AuthorizationServers: []string{iss},
		Rules: []Rule{{Name: "tenant", When: mustCompile(t, `request.headers["x-tenant"] == "acme"`)}}}},
		Verifiers: Verifiers{Opaque: tv}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	r := req("GET", "/mcp", "authorization", "Bearer good", "x-tenant", "acme")
	if d := a.Check(t.Context(), r); !d.Allow {
		t.Fatalf("single header refused: %v", d.Err)
	}
	r.Repeated = []string{"x-tenant"}
	if d := a.Check(t.Context(), r); d.Allow || d.Status != 400 {
		t.Errorf("repeated x-tenant: allow=%v status=%d", d.Allow, d.Status)
	}
	r.Repeated = []string{"accept"} // not read by any condition
	if d := a.Check(t.Context(), r); !d.Allow {
		t.Errorf("a repeated header no condition reads: %v", d.Err)
	}
}
