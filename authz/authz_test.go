package authz

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// tableVerifier stands in for the real verifiers (tested in authz/jwt and end to end in
// internal/service) so that these tests pin the decision core alone: token string → result.
type tableVerifier map[string]struct {
	id  identity.Identity
	err error
}

func (tv tableVerifier) Verify(_ context.Context, token string) (identity.Identity, error) {
	r, ok := tv[token]
	if !ok {
		return identity.Identity{}, fmt.Errorf("%w: unknown test token", identity.ErrInvalid)
	}
	return r.id, r.err
}

const (
	iss = "https://as.example.com"
	res = "https://mcp.example.com/mcp"
)

func goodID() identity.Identity {
	return identity.Identity{
		Issuer: iss, Subject: "user-1", ClientID: "client-1", Audience: []string{res},
		Scopes: []string{"mcp:tools", "mcp:read"}, Expiry: testNow.Add(time.Hour),
		Claims: map[string]string{"email": `"u@example.com"`}, Source: identity.SourceJWT,
	}
}

func testAuthorizer(t testing.TB, mod func(*Options)) *Authorizer {
	t.Helper()
	expired := goodID()
	expired.Expiry = testNow.Add(-time.Minute)
	wrongAud := goodID()
	wrongAud.Audience = []string{"https://other.example.com/mcp"}
	upperAud := goodID()
	upperAud.Audience = []string{"HTTPS://MCP.EXAMPLE.COM/mcp"}
	slashAud := goodID()
	slashAud.Audience = []string{res + "/"}
	wrongIss := goodID()
	wrongIss.Issuer = "https://evil.example.com"
	readOnly := goodID()
	readOnly.Scopes = []string{"mcp:read"}
	admin := goodID()
	admin.Scopes = []string{"mcp:admin"}
	future := goodID()
	future.NotBefore = testNow.Add(10 * time.Minute)
	badHeader := goodID()
	badHeader.Subject = "evil\r\nx-admin: 1"

	tv := tableVerifier{
		"good":      {id: goodID()},
		"expired":   {id: expired},
		"wrongaud":  {id: wrongAud},
		"upperaud":  {id: upperAud},
		"slashaud":  {id: slashAud},
		"wrongiss":  {id: wrongIss},
		"readonly":  {id: readOnly},
		"admin":     {id: admin},
		"future":    {id: future},
		"badheader": {id: badHeader},
		"down":      {err: fmt.Errorf("%w: jwks unreachable", identity.ErrUnavailable)},
	}
	o := Options{Unavailable: Unavailable{Status: 401},
		Resources: []Resource{{
			Name: "mcp", ID: res,
			AuthorizationServers: []string{iss},
			RequiredScopes:       []string{"mcp:tools"},
			ScopesSupported:      []string{"mcp:tools", "mcp:read", "offline_access"},
			PublicPaths:          []string{"/mcp/health"},
			Headers: IdentityHeaders{
				Subject: "x-auth-subject", ClientID: "x-auth-client-id", Scopes: "x-auth-scopes",
				Claims: map[string]string{"email": "x-auth-email", "tenant": "x-auth-tenant"},
			},
			ResourceName:       "Example MCP server",
			AllowCORSPreflight: true,
		}},
		Verifiers:    Verifiers{Opaque: tv},
		ScopeImplies: map[string][]string{"mcp:admin": {"mcp:tools", "mcp:read"}},
		Now:          func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func req(method, path string, headers ...string) *Request {
	h := map[string]string{}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return &Request{Method: method, Scheme: "https", Host: "mcp.example.com", Path: path, Headers: h}
}

func render(d *Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "allow: %v\nstatus: %d\nreason: %s\n", d.Allow, d.Status, d.Reason)
	for _, h := range d.Headers {
		fmt.Fprintf(&b, "header: %s: %s\n", h.Name, h.Value)
	}
	for _, r := range d.Remove {
		fmt.Fprintf(&b, "remove: %s\n", r)
	}
	if len(d.Body) > 0 {
		fmt.Fprintf(&b, "body: %s\n", d.Body)
	}
	return b.String()
}

func golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "__")+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (run go test ./authz -run %s -update): %v", t.Name(), err)
	}
	if got != string(want) {
		t.Errorf("decision differs from %s:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestChallenges pins every row of DESIGN.md's challenge table, byte for byte.
func TestChallenges(t *testing.T) {
	a := testAuthorizer(t, nil)
	a503 := testAuthorizer(t, func(o *Options) { o.Unavailable = Unavailable{Status: 503, RetryAfter: 5} })
	long := strings.Repeat("a", 64<<10)
	cases := []struct {
		name string
		a    *Authorizer
		r    *Request
	}{
		{"no_token", a, req("POST", "/mcp")},
		{"basic_scheme_is_no_bearer", a, req("POST", "/mcp", "authorization", "Basic dXNlcjpwdw==")},
		{"dpop_scheme_reserved", a, req("POST", "/mcp", "authorization", "DPoP good")},
		{"bearer_no_token", a, req("POST", "/mcp", "authorization", "Bearer")},
		{"bearer_space_in_token", a, req("POST", "/mcp", "authorization", "Bearer a b")},
		{"bearer_non_ascii", a, req("POST", "/mcp", "authorization", "Bearer t\u00f6ken")},
		{"bearer_64KiB", a, req("POST", "/mcp", "authorization", "Bearer "+long)},
		{"two_credentials", a, req("POST", "/mcp", "authorization", "Bearer good, Bearer good")},
		{"two_credentials_no_space", a, req("POST", "/mcp", "authorization", "Bearer good,Bearer other")},
		{"token_in_query", a, req("POST", "/mcp?access_token=good")},
		{"token_in_query_encoded", a, req("POST", "/mcp?x=1&access%5Ftoken=good")},
		{"token_in_query_and_header", a, req("POST", "/mcp?access_token=good", "authorization", "Bearer good")},
		{"invalid_token", a, req("POST", "/mcp", "authorization", "Bearer garbage")},
		{"expired", a, req("POST", "/mcp", "authorization", "Bearer expired")},
		{"not_yet_valid", a, req("POST", "/mcp", "authorization", "Bearer future")},
		{"wrong_audience", a, req("POST", "/mcp", "authorization", "Bearer wrongaud")},
		{"trailing_slash_audience", a, req("POST", "/mcp", "authorization", "Bearer slashaud")},
		{"wrong_issuer", a, req("POST", "/mcp", "authorization", "Bearer wrongiss")},
		{"insufficient_scope", a, req("POST", "/mcp", "authorization", "Bearer readonly")},
		{"unavailable_401", a, req("POST", "/mcp", "authorization", "Bearer down")},
		{"unavailable_503", a503, req("POST", "/mcp", "authorization", "Bearer down")},
		{"no_route", a, req("GET", "/other", "authorization", "Bearer good")},
		{"no_route_prefix_is_segment_aware", a, req("GET", "/mcpx", "authorization", "Bearer good")},
		{"metadata_get", a, req("GET", "/.well-known/oauth-protected-resource/mcp")},
		{"metadata_head", a, req("HEAD", "/.well-known/oauth-protected-resource/mcp")},
		{"metadata_options", a, req("OPTIONS", "/.well-known/oauth-protected-resource/mcp", "origin", "https://app.example", "access-control-request-method", "GET", "access-control-request-headers", "mcp-protocol-version")},
		{"metadata_post", a, req("POST", "/.well-known/oauth-protected-resource/mcp")},
		{"metadata_with_bad_token_still_answers", a, req("GET", "/.well-known/oauth-protected-resource/mcp", "authorization", "Bearer garbage")},
		{"public_path", a, req("GET", "/mcp/health", "authorization", "Bearer garbage", "x-auth-subject", "forged")},
		{"public_path_dot_segments_not_public", a, req("GET", "/mcp/health/../tools")},
		{"public_path_encoded_refused", a, req("GET", "/mcp/health%2F..%2Ftools")},
		{"cors_preflight", a, req("OPTIONS", "/mcp", "origin", "https://app.example", "access-control-request-method", "POST")},
		{"options_without_preflight_headers", a, req("OPTIONS", "/mcp")},
		{"allow", a, req("POST", "/mcp", "authorization", "Bearer good", "x-auth-subject", "forged", "x-auth-tenant", "forged")},
		{"allow_lowercase_bearer_extra_spaces", a, req("POST", "/mcp/sub", "authorization", "bearer    good  ")},
		{"allow_uppercase_audience_host", a, req("POST", "/mcp", "authorization", "Bearer upperaud")},
		{"allow_scope_hierarchy", a, req("POST", "/mcp", "authorization", "Bearer admin")},
		{"allow_header_injection_dropped", a, req("POST", "/mcp", "authorization", "Bearer badheader")},
		{"allow_host_with_port", a, &Request{Method: "POST", Host: "mcp.example.com:443", Path: "/mcp", Headers: map[string]string{"authorization": "Bearer good"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.a.Check(context.Background(), tc.r)
			golden(t, render(d))
			if d.Allow && d.Status != 0 {
				t.Errorf("allow with status %d", d.Status)
			}
			if !d.Allow && d.Reason != ReasonMetadata && d.Reason != ReasonNoRoute {
				if (d.Status == 401 || d.Status == 403) && !strings.HasPrefix(headerOf(d, "www-authenticate"), "Bearer ") {
					t.Errorf("%d without a Bearer challenge first", d.Status)
				}
				if strings.Contains(headerOf(d, "www-authenticate"), `scope=""`) {
					t.Error("empty scope parameter")
				}
				if strings.Contains(headerOf(d, "www-authenticate"), "offline_access") {
					t.Error("offline_access in a challenge")
				}
			}
		})
	}
}

func headerOf(d *Decision, name string) string {
	for _, h := range d.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// The same failure gets a byte-identical challenge every time: MCP clients compare them.
func TestChallengeIsConstant(t *testing.T) {
	a := testAuthorizer(t, nil)
	for _, tok := range []string{"garbage", "readonly", "expired"} {
		first := render(a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+tok, "x-request-id", "1")))
		again := render(a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+tok, "x-request-id", "2")))
		if first != again {
			t.Errorf("%s: challenge changed between requests:\n%s\n%s", tok, first, again)
		}
	}
}

func TestPRMDocument(t *testing.T) {
	a := testAuthorizer(t, nil)
	d := a.Check(context.Background(), req("GET", "/.well-known/oauth-protected-resource/mcp"))
	var doc map[string]any
	if err := json.Unmarshal(d.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["resource"] != res {
		t.Errorf("resource = %v, want exactly %s (RFC 9728 §3.3)", doc["resource"], res)
	}
	if as, _ := doc["authorization_servers"].([]any); len(as) != 1 || as[0] != iss {
		t.Errorf("authorization_servers = %v", doc["authorization_servers"])
	}
	if strings.Contains(string(d.Body), "offline_access") {
		t.Error("offline_access in scopes_supported")
	}
	if _, ok := doc["jwks_uri"]; ok {
		t.Error("jwks_uri must be omitted: it would be the RS's own keys, which we do not have")
	}
}

func TestMetadataLocation(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"https://h", "https://h/.well-known/oauth-protected-resource"},
		{"https://h/", "https://h/.well-known/oauth-protected-resource"},
		{"https://h/mcp", "https://h/.well-known/oauth-protected-resource/mcp"},
		{"https://h/a/b/", "https://h/.well-known/oauth-protected-resource/a/b/"},
		{"https://h:8443/mcp", "https://h:8443/.well-known/oauth-protected-resource/mcp"},
		{"https://h/mcp?t=1", "https://h/.well-known/oauth-protected-resource/mcp?t=1"},
	} {
		got, _, err := metadataLocation(tc.id)
		if err != nil || got != tc.want {
			t.Errorf("metadataLocation(%q) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
	for _, bad := range []string{"mcp.example.com", "https://h/mcp#frag", "/mcp"} {
		if _, _, err := metadataLocation(bad); err == nil {
			t.Errorf("metadataLocation(%q) accepted", bad)
		}
	}
}

// countingVerifier counts calls, to show the cache and singleflight at work.
type countingVerifier struct {
	tableVerifier
	calls int
}

func (c *countingVerifier) Verify(ctx context.Context, token string) (identity.Identity, error) {
	c.calls++
	return c.tableVerifier.Verify(ctx, token)
}

func TestJWTIssuerChosenBeforeVerification(t *testing.T) {
	jwtV := &countingVerifier{tableVerifier: tableVerifier{}}
	opaque := &countingVerifier{tableVerifier: tableVerifier{}}
	a := testAuthorizer(t, func(o *Options) {
		o.Verifiers = Verifiers{JWT: map[string]Verifier{iss: jwtV}, Opaque: opaque}
	})
	// header.payload.sig with iss = the known issuer → the JWT verifier, never introspection.
	tok := "eyJhbGciOiJSUzI1NiJ9." + b64(`{"iss":"`+iss+`"}`) + ".c2ln"
	a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+tok))
	if jwtV.calls != 1 || opaque.calls != 0 {
		t.Errorf("jwt=%d opaque=%d calls; want 1, 0", jwtV.calls, opaque.calls)
	}
	// A JWT from an unknown issuer and an opaque token go to the opaque verifier.
	other := "eyJhbGciOiJSUzI1NiJ9." + b64(`{"iss":"https://unknown"}`) + ".c2ln"
	a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+other))
	a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer opaque-token"))
	if jwtV.calls != 1 || opaque.calls != 2 {
		t.Errorf("jwt=%d opaque=%d calls; want 1, 2", jwtV.calls, opaque.calls)
	}
}

func TestFallbackToOpaqueOnlyWhenUnavailable(t *testing.T) {
	tok := "eyJhbGciOiJSUzI1NiJ9." + b64(`{"iss":"`+iss+`"}`) + ".c2ln"
	for _, tc := range []struct {
		name     string
		jwtErr   error
		fallback bool
		want     Reason
	}{
		{"unavailable_falls_back", identity.ErrUnavailable, true, ReasonAllow},
		{"unavailable_no_fallback", identity.ErrUnavailable, false, ReasonUnavailable},
		{"invalid_never_falls_back", identity.ErrInvalid, true, ReasonInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwtV := tableVerifier{tok: {err: tc.jwtErr}}
			opaque := tableVerifier{tok: {id: goodID()}}
			a := testAuthorizer(t, func(o *Options) {
				o.Verifiers = Verifiers{JWT: map[string]Verifier{iss: jwtV}, Opaque: opaque}
				if tc.fallback {
					o.Verifiers.Fallback = map[string]Verifier{iss: opaque}
				}
			})
			if d := a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+tok)); d.Reason != tc.want {
				t.Errorf("reason = %s, want %s", d.Reason, tc.want)
			}
		})
	}
}

func b64(s string) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out []byte
	in := []byte(s)
	for len(in) >= 3 {
		n := uint(in[0])<<16 | uint(in[1])<<8 | uint(in[2])
		out = append(out, enc[n>>18&63], enc[n>>12&63], enc[n>>6&63], enc[n&63])
		in = in[3:]
	}
	switch len(in) {
	case 1:
		n := uint(in[0]) << 16
		out = append(out, enc[n>>18&63], enc[n>>12&63])
	case 2:
		n := uint(in[0])<<16 | uint(in[1])<<8
		out = append(out, enc[n>>18&63], enc[n>>12&63], enc[n>>6&63])
	}
	return string(out)
}

func TestNewRejects(t *testing.T) {
	for _, r := range []Resource{
		{ID: "", AuthorizationServers: []string{iss}},
		{ID: "https://h/mcp#x", AuthorizationServers: []string{iss}},
		{ID: "https://h/mcp"},
	} {
		if _, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: []Resource{r}}); err == nil {
			t.Errorf("New accepted %+v", r)
		}
	}
	if _, err := New(Options{Unavailable: Unavailable{Status: http.StatusTeapot}}); err == nil {
		t.Error("New accepted unavailable status 418")
	}
	// Defaults have one home, package config: the core takes no zero status.
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted no unavailable status")
	}
	var errNil error
	_ = errors.Is(errNil, identity.ErrInvalid)
}

func TestAPIKeys(t *testing.T) {
	key := identity.Identity{Subject: "legacy", ClientID: "ci", Scopes: []string{"mcp:tools"}, Source: identity.SourceAPIKey}
	keys := tableVerifier{"k3y": {id: key}}
	for _, tc := range []struct {
		name, scheme, header string
		allowKeys            bool
		want                 Reason
	}{
		{"bearer scheme", "Bearer", "Bearer k3y", true, ReasonAllow},
		{"token scheme", "Token", "token k3y", true, ReasonAllow},
		{"token scheme, wrong key", "Token", "Token nope", true, ReasonInvalidToken},
		{"token scheme, bearer sent", "Token", "Bearer k3y", true, ReasonInvalidToken},
		{"resource does not accept keys", "Bearer", "Bearer k3y", false, ReasonInvalidToken},
		{"token scheme, malformed", "Token", "Token a b", true, ReasonInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAuthorizer(t, func(o *Options) {
				o.Verifiers = Verifiers{APIKeys: keys, APIKeyScheme: tc.scheme}
				o.Resources[0].AllowAPIKeys = tc.allowKeys
			})
			d := a.Check(context.Background(), req("POST", "/mcp", "authorization", tc.header))
			if d.Reason != tc.want {
				t.Errorf("reason %s, want %s (%v)", d.Reason, tc.want, d.Err)
			}
			if d.Allow && headerOf(d, "x-auth-subject") != "legacy" {
				t.Errorf("headers %v", d.Headers)
			}
		})
	}
	if _, err := New(Options{Unavailable: Unavailable{Status: 401}, Verifiers: Verifiers{APIKeyScheme: "Token"}}); err == nil {
		t.Error("a Token scheme without keys accepted")
	}
}

func TestAnyOf(t *testing.T) {
	good := tableVerifier{"t": {id: goodID()}}
	bad := tableVerifier{}
	down := tableVerifier{"t": {err: identity.ErrUnavailable}}
	for _, tc := range []struct {
		name string
		vs   []Verifier
		want error
	}{
		{"second accepts", []Verifier{bad, good}, nil},
		{"all reject", []Verifier{bad, bad}, identity.ErrInvalid},
		{"one down, none accept", []Verifier{bad, down}, identity.ErrUnavailable},
		{"one down, one accepts", []Verifier{down, good}, nil},
	} {
		_, err := AnyOf(tc.vs...).Verify(context.Background(), "t")
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestMCPPerToolScopes(t *testing.T) {
	files := goodID()
	files.Scopes = []string{"mcp:tools", "files:read"}
	all := goodID()
	all.Scopes = []string{"mcp:tools", "files:*"}
	ids := tableVerifier{"good": {id: goodID()}, "files": {id: files}, "all": {id: all}}
	a := testAuthorizer(t, func(o *Options) {
		o.Verifiers = Verifiers{Opaque: ids}
		o.Resources[0].MCP = &MCPScopes{
			Tools:   map[string][]string{"delete_file": {"files:write"}, "read_file": {"files:read"}},
			Methods: map[string][]string{"resources/read": {"files:read"}},
		}
		o.ScopeImplies = map[string][]string{"files:*": {"files:read", "files:write"}}
	})
	call := func(tok, body, ct string) *Decision {
		r := req("POST", "/mcp", "authorization", "Bearer "+tok, "content-type", ct)
		r.Body = []byte(body)
		return a.Check(context.Background(), r)
	}
	const json = "application/json"
	for _, tc := range []struct {
		name, tok, body, ct string
		want                Reason
		scope               string // expected challenge scope on 403
	}{
		{"no body, no Mcp-Method: refused", "good", "", json, ReasonInvalidRequest, ""},
		{"tool not listed, no *", "good", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, json, ReasonAllow, ""},
		{"tool needs files:write", "files", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/x"}}}`, json, ReasonInsufficientScope, "mcp:tools files:write"},
		{"tool satisfied", "files", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}`, json, ReasonAllow, ""},
		{"method scope", "good", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x"}}`, "application/json; charset=utf-8", ReasonInsufficientScope, "mcp:tools files:read"},
		{"batch needs the union", "good", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}},{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x"}}]`, json, ReasonInsufficientScope, "mcp:tools files:read files:write"},
		{"hierarchy: files:* implies files:write", "all", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`, json, ReasonAllow, ""},
		{"malformed JSON is refused", "files", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_fi`, json, ReasonInvalidRequest, ""},
		{"malformed JSON refused even with every scope", "all", `{{{`, json, ReasonInvalidRequest, ""},
		{"non-JSON content type refused", "good", `not json at all`, "text/plain", ReasonInvalidRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := call(tc.tok, tc.body, tc.ct)
			if d.Reason != tc.want {
				t.Fatalf("reason %s, want %s (%v)", d.Reason, tc.want, d.Err)
			}
			if tc.scope != "" {
				if got := headerOf(d, "www-authenticate"); !strings.Contains(got, `scope="`+tc.scope+`"`) || !strings.HasPrefix(got, `Bearer error="insufficient_scope"`) {
					t.Errorf("challenge %s, want scope=%q", got, tc.scope)
				}
				// The same operation gets the same challenge, byte for byte.
				if again := call(tc.tok, tc.body, tc.ct); headerOf(again, "www-authenticate") != headerOf(d, "www-authenticate") {
					t.Error("the step-up challenge changed between identical requests")
				}
			}
		})
	}
}
