package demoas

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func start(t *testing.T, now func() time.Time) (*Server, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	as, err := New(Config{
		Issuer: srv.URL,
		Clients: []Client{
			{ID: "demo", Secret: "demo-secret", Scopes: []string{"mcp:tools", "mcp:read"}},
			{ID: "demo-opaque", Secret: "p:w%d", Scopes: []string{"mcp:tools"}, Opaque: true},
		},
		Resources:            []string{"http://localhost:8080/mcp"},
		DefaultResource:      "http://localhost:8080/mcp",
		IntrospectionClients: map[string]string{"rs": "rs-secret"},
		Now:                  now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as.Handler()
	return as, srv
}

func post(t *testing.T, u string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestMetadata(t *testing.T) {
	_, srv := start(t, nil)
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "introspection_endpoint", "response_types_supported", "grant_types_supported", "code_challenge_methods_supported"} {
			if m[k] == nil {
				t.Errorf("%s: no %s", p, k)
			}
		}
		if m["issuer"] != srv.URL {
			t.Errorf("issuer %v", m["issuer"])
		}
	}
}

func TestTokenEndpoint(t *testing.T) {
	as, srv := start(t, nil)
	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		errCode    string
	}{
		{"basic", form("scope", "mcp:tools"), "demo", "demo-secret", 200, ""},
		{"post", form("scope", "mcp:read", "client_id", "demo", "client_secret", "demo-secret"), "", "", 200, ""},
		{"wrong secret", form(), "demo", "nope", 401, "invalid_client"},
		{"grant", url.Values{"grant_type": {"password"}}, "demo", "demo-secret", 400, "unsupported_grant_type"},
		{"scope not allowed", form("scope", "admin"), "demo", "demo-secret", 400, "invalid_scope"},
		{"wrong resource", form("resource", "http://evil/mcp"), "demo", "demo-secret", 400, "invalid_target"},
		{"two resources", form("resource", "http://localhost:8080/mcp", "resource", "http://localhost:8080/mcp"), "demo", "demo-secret", 400, "invalid_target"},
	}
	for _, tc := range cases {
		status, out := post(t, srv.URL+"/token", tc.form, tc.user, tc.pass)
		if status != tc.status || tc.errCode != "" && out["error"] != tc.errCode {
			t.Errorf("%s: %d %v", tc.name, status, out)
		}
	}

	_, out := post(t, srv.URL+"/token", form("scope", "mcp:tools"), "demo", "demo-secret")
	tok, _ := out["access_token"].(string)
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != "at+jwt" {
		t.Errorf("typ = %v", typ)
	}
	resp, _ := http.Get(srv.URL + "/jwks")
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["aud"] != "http://localhost:8080/mcp" || claims["scope"] != "mcp:tools" || claims["client_id"] != "demo" || claims["iss"] != srv.URL || claims["jti"] == nil {
		t.Errorf("claims %v", claims)
	}

	// No scope requested: no scope claim at all.
	_, out = post(t, srv.URL+"/token", form(), "demo", "demo-secret")
	jws, _ = jose.ParseSigned(out["access_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	claims = nil
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims)
	if _, has := claims["scope"]; has {
		t.Errorf("scopeless request got scope %v", claims["scope"])
	}

	// Rotation keeps the old key published.
	old := jws.Signatures[0].Header.KeyID
	if _, err := as.RotateKey(); err != nil {
		t.Fatal(err)
	}
	resp, _ = http.Get(srv.URL + "/jwks")
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if len(set.Key(old)) != 1 || len(set.Keys) != 4 {
		t.Errorf("after rotation: %d keys, old present %v", len(set.Keys), len(set.Key(old)) == 1)
	}
	if c := as.Counts(); c.Token < 9 || c.JWKS != 2 {
		t.Errorf("counts %+v", c)
	}
}

func TestOpaqueAndIntrospection(t *testing.T) {
	now := time.Now()
	as, srv := start(t, func() time.Time { return now })
	_, out := post(t, srv.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:tools"}}, "demo-opaque", "p:w%d")
	tok, _ := out["access_token"].(string)
	if tok == "" || strings.Count(tok, ".") == 2 {
		t.Fatalf("opaque client got %q", tok)
	}
	introspect := func(user, pass string) (int, map[string]any) {
		return post(t, srv.URL+"/introspect", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, user, pass)
	}
	if status, _ := introspect("", ""); status != 401 {
		t.Errorf("unauthenticated introspection: %d", status)
	}
	status, got := introspect("rs", "rs-secret")
	if status != 200 || got["active"] != true || got["aud"] != "http://localhost:8080/mcp" || got["scope"] != "mcp:tools" {
		t.Errorf("introspection: %d %v", status, got)
	}
	now = now.Add(2 * time.Hour)
	if _, got := introspect("rs", "rs-secret"); got["active"] != false {
		t.Errorf("expired token active: %v", got)
	}
	now = now.Add(-2 * time.Hour)
	tok2 := as.IssueOpaque("u", "c", nil, "http://localhost:8080/mcp", time.Hour)
	as.Revoke(tok2)
	tok = tok2
	if _, got := introspect("rs", "rs-secret"); got["active"] != false {
		t.Errorf("revoked token active: %v", got)
	}
}

func TestDown(t *testing.T) {
	as, srv := start(t, nil)
	as.SetDown(true)
	resp, err := http.Get(srv.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("down: %d", resp.StatusCode)
	}
}

func TestMintOptions(t *testing.T) {
	as, _ := start(t, nil)
	for _, o := range []MintOptions{{Key: "ec"}, {Key: "ed"}, {Typ: "-", KID: "-"}, {Typ: "JWT", ExtraHeaders: map[string]any{"jku": "https://evil"}}} {
		tok, err := as.Mint(map[string]any{"sub": "x"}, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		h := jws.Signatures[0].Header
		if o.Typ == "-" && (h.ExtraHeaders["typ"] != nil || h.KeyID != "") {
			t.Errorf("typ/kid not omitted: %+v", h)
		}
	}
	if _, err := as.Mint(nil, MintOptions{Key: "nope"}); err == nil {
		t.Error("unknown key accepted")
	}
}
