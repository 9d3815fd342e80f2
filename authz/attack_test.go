package authz

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

// Regression tests for issue 14 ("read every request exactly as the upstream will"). Each case
// was ALLOWED, or matched the wrong resource, before the strict reader and cleanPath: a token
// holding only mcp:tools, a resource whose tool delete_file needs files:write.

func perToolAuthorizer(t *testing.T) *Authorizer {
	return testAuthorizer(t, func(o *Options) {
		o.Resources[0].MCP = &MCPScopes{
			Tools:   map[string][]string{"delete_file": {"files:write"}},
			Methods: map[string][]string{"resources/read": {"files:read"}},
		}
		o.Resources = append(o.Resources, Resource{
			Name: "admin", ID: "https://mcp.example.com/admin", Hosts: []string{"mcp.example.com"},
			AuthorizationServers: []string{"https://admin-as.example.com"},
			RequiredScopes:       []string{"admin"},
			PublicPaths:          []string{"/admin/public"},
		})
	})
}

func TestAttackCaseVariantBodies(t *testing.T) {
	a := perToolAuthorizer(t)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","NAME":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"echo","name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","Name":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"ping","method":"tools/call","params":{"name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"PARAMS":{"name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"param\u017f":{"name":"delete_file"}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"},\"param\u017f\":{\"name\":\"delete_file\"}}",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","n\u0061me":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}} {"jsonrpc":"2.0","id":2,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file\ud800"}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"delete_file\xff\"}}",
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"delete_file"}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"},"params":{"name":"echo"}}`,
	} {
		r := req("POST", "/mcp", "authorization", "Bearer good", "content-type", "application/json")
		r.Body = []byte(body)
		d := a.Check(context.Background(), r)
		if d.Allow || d.Status != 400 || d.Reason != ReasonInvalidRequest {
			t.Errorf("%s\n  → allow=%v status=%d reason=%s, want 400 invalid_request", body, d.Allow, d.Status, d.Reason)
		}
	}
}

func TestAttackContentType(t *testing.T) {
	a := perToolAuthorizer(t)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`
	for _, tc := range []struct {
		ct       string
		repeated bool
		allowed  bool // the call itself needs files:write, so "allowed" means 403, never allow
	}{
		{ct: "text/plain, application/json"},
		{ct: `text/plain; x="application/json"`},
		{ct: "application/json, text/plain"},
		{ct: "application/jsonx"},
		{ct: "application/json; charset=latin1"},
		{ct: "application/json; charset=utf-8; x=1"},
		{ct: "application/vnd.api+json"},
		{ct: ""},
		{ct: "application/json,application/json", repeated: true},
		{ct: "application/json", allowed: true},
		{ct: "Application/JSON; Charset=\"UTF-8\"", allowed: true},
	} {
		r := req("POST", "/mcp", "authorization", "Bearer good", "content-type", tc.ct)
		if tc.ct == "" {
			delete(r.Headers, "content-type")
		}
		if tc.repeated {
			r.Repeated = []string{"content-type"}
		}
		r.Body = []byte(call)
		d := a.Check(context.Background(), r)
		want := 400
		if tc.allowed {
			want = 403
		}
		if d.Allow || d.Status != want {
			t.Errorf("content-type %q: allow=%v status=%d (%v), want %d", tc.ct, d.Allow, d.Status, d.Err, want)
		}
	}
}

func TestAttackTruncatedOrMislabelledBody(t *testing.T) {
	a := perToolAuthorizer(t)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`
	for name, h := range map[string][]string{
		"partial body":        {"x-envoy-auth-partial-body", "true"},
		"content-length":      {"content-length", "100000"},
		"gzip":                {"content-encoding", "gzip"},
		"repeated mcp-method": {"mcp-method", "tools/call"},
	} {
		r := req("POST", "/mcp", "authorization", "Bearer good", "content-type", "application/json", h[0], h[1])
		if name == "repeated mcp-method" {
			r.Repeated = []string{"mcp-method"}
		}
		r.Body = []byte(body)
		if d := a.Check(context.Background(), r); d.Allow || d.Status != 400 {
			t.Errorf("%s: allow=%v status=%d", name, d.Allow, d.Status)
		}
	}
	r := req("POST", "/mcp", "authorization", "Bearer good", "content-type", "application/json", "content-length", "71")
	r.Body = []byte(body)
	if d := a.Check(context.Background(), r); !d.Allow {
		t.Errorf("exact content-length refused: %v", d.Err)
	}
}

// TestMCPHeaders: SEP-2243 Mcp-Method / Mcp-Name stand in for a body the proxy did not forward,
// and must agree with one it did.
func TestMCPHeaders(t *testing.T) {
	a := perToolAuthorizer(t)
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	del := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`
	for _, tc := range []struct {
		name, body string
		headers    []string
		status     int // 0: allowed
		jsonrpc    bool
	}{
		{"headers only, echo", "", []string{"mcp-method", "tools/call", "mcp-name", "echo"}, 0, false},
		{"headers only, delete_file", "", []string{"mcp-method", "tools/call", "mcp-name", "delete_file"}, 403, false},
		{"headers only, base64 delete_file", "", []string{"mcp-method", "tools/call", "mcp-name", b64("delete_file")}, 403, false},
		{"headers only, ping", "", []string{"mcp-method", "ping"}, 0, false},
		{"headers only, tools/call without name", "", []string{"mcp-method", "tools/call"}, 400, false},
		{"headers only, name without method", "", []string{"mcp-name", "echo"}, 400, false},
		{"headers only, bad base64", "", []string{"mcp-method", "tools/call", "mcp-name", "=?base64?!!?="}, 400, false},
		{"headers only, joined repeats of Mcp-Method", "", []string{"mcp-method", "tools/call,tools/call"}, 400, false},
		{"headers only, joined repeats of Mcp-Name", "", []string{"mcp-method", "tools/call", "mcp-name", "echo,delete_file"}, 400, false},
		{"headers only, a resource URI with a comma", "", []string{"mcp-method", "resources/read", "mcp-name", "file:///a,b"}, 403, false},
		{"body and agreeing headers", del, []string{"mcp-method", "tools/call", "mcp-name", "delete_file"}, 403, false},
		{"body and lying name", del, []string{"mcp-method", "tools/call", "mcp-name", "echo"}, 400, true},
		{"body and lying method", del, []string{"mcp-method", "ping"}, 400, true},
		{"body, method header without name", del, []string{"mcp-method", "tools/call"}, 400, true},
		{"body with headers of another case of name", del, []string{"mcp-method", "tools/call", "mcp-name", "Delete_File"}, 400, true},
		// A 2026-07-28 request must carry the headers its body requires (SEP-2243); a 2025
		// client sends neither them nor that version.
		{"2026-07-28 body without Mcp-Method", del, []string{"mcp-protocol-version", "2026-07-28"}, 400, true},
		{"2026-07-28 body without Mcp-Name", del, []string{"mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call"}, 400, true},
		{"2026-07-28 body with its headers", del, []string{"mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call", "mcp-name", "delete_file"}, 403, false},
		{"2025-11-25 body without headers", del, []string{"mcp-protocol-version", "2025-11-25"}, 403, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req("POST", "/mcp", append([]string{"authorization", "Bearer good", "content-type", "application/json"}, tc.headers...)...)
			r.Body = []byte(tc.body)
			d := a.Check(context.Background(), r)
			if tc.status == 0 {
				if !d.Allow {
					t.Fatalf("refused: %d %v", d.Status, d.Err)
				}
				return
			}
			if d.Allow || d.Status != tc.status {
				t.Fatalf("allow=%v status=%d (%v), want %d", d.Allow, d.Status, d.Err, tc.status)
			}
			if tc.jsonrpc && !strings.Contains(string(d.Body), `"code":-32020`) {
				t.Errorf("mismatch body %s lacks JSON-RPC -32020", d.Body)
			}
		})
	}
	// Without per-operation rules, nothing about the operation is read or refused.
	plain := testAuthorizer(t, nil)
	r := req("POST", "/mcp", "authorization", "Bearer good", "content-type", "text/plain", "mcp-method", "x")
	r.Body = []byte("{{{")
	if d := plain.Check(context.Background(), r); !d.Allow {
		t.Errorf("resource without per-operation rules refused: %v", d.Err)
	}
}

func TestAttackPaths(t *testing.T) {
	a := perToolAuthorizer(t)
	for _, p := range []string{
		"/mcp/..%2fadmin", "/mcp/%2e%2e/admin", "/mcp/..;/admin", "/mcp//../admin",
		"/mcp/health/..;/x", "/mcp/health/%252e%252e/x", "/mcp/health/..%09/x",
		"/mcp%2fadmin", "/mcp%5c..%5cadmin", "/mcp\\..\\admin", "/mcp/%00", "/admin/public/..;/secret",
		"/.well-known/oauth-protected-resource/mcp/..;/x",
	} {
		d := a.Check(context.Background(), req("POST", p, "authorization", "Bearer good"))
		if d.Allow || d.Status != 400 || d.Resource != "" {
			t.Errorf("%q: allow=%v status=%d resource=%q, want 400 before routing", p, d.Allow, d.Status, d.Resource)
		}
	}
	// A plain dot-segment is resolved as RFC 3986 says: /mcp/../admin is /admin, whose own
	// issuer and scope then apply (the token for /mcp is not good there).
	d := a.Check(context.Background(), req("POST", "/mcp/../admin", "authorization", "Bearer good"))
	if d.Allow || d.Resource != "admin" {
		t.Errorf("/mcp/../admin: allow=%v resource=%q, want the admin resource's denial", d.Allow, d.Resource)
	}
	d = a.Check(context.Background(), req("GET", "/admin/x/../public/", "authorization", "Bearer good"))
	if !d.Allow || d.Reason != ReasonPublic {
		t.Errorf("/admin/x/../public/: %v %s, want public", d.Allow, d.Reason)
	}
	d = a.Check(context.Background(), req("GET", "/mcp/health/../../admin/public"))
	if d.Reason != ReasonPublic || d.Resource != "admin" {
		t.Errorf("/mcp/health/../../admin/public: %s %q", d.Reason, d.Resource)
	}
}
