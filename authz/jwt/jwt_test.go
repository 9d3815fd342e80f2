package jwt

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

func keyRSA() testKey { genKeys(); return testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaKey} }
func keyPS() testKey  { genKeys(); return testKey{kid: "rsa-1", alg: jose.PS256, priv: rsaKey} }
func keyEC() testKey  { genKeys(); return testKey{kid: "ec-1", alg: jose.ES256, priv: ecKey} }
func keyEd() testKey  { genKeys(); return testKey{kid: "ed-1", alg: jose.EdDSA, priv: edKey} }
func keyPinned() testKey {
	genKeys()
	return testKey{kid: "rsa-pinned", alg: jose.RS256, priv: rsaKey2, jwkAlg: "RS256"}
}

func allKeys() []testKey { return []testKey{keyRSA(), keyEC(), keyEd(), keyPinned()} }

type fixture struct {
	is    *testIssuer
	clock *clock
	v     *Verifier
	logs  *bytes.Buffer
}

// setup starts an issuer with every test key and a verifier for it. mod may change the
// config; JWKSURL is set unless the issuer serves discovery.
func setup(t testing.TB, discovery string, mod func(*Config)) *fixture {
	t.Helper()
	genKeys()
	is := newIssuer(t, discovery, allKeys()...)
	f := &fixture{is: is, clock: newClock(), logs: &bytes.Buffer{}}
	cfg := Config{
		Issuer:     is.URL,
		RequireTyp: true,
		ClockSkew:  30 * time.Second,
		HTTPClient: is.Client(),
		Now:        f.clock.Now,
		Logger:     slog.New(slog.NewTextHandler(&syncWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if discovery == discoveryNone {
		cfg.JWKSURL = is.URL + "/jwks"
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(required(cfg))
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (f *fixture) claims() map[string]any { return claimsFor(f.is.URL, f.clock.Now()) }

// wantErr asserts err wraps class, says reason, and leaks nothing of token.
func wantErr(t *testing.T, id identity.Identity, err error, class error, reason, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted (identity %+v), want %v", id, class)
	}
	if !errors.Is(err, class) {
		t.Errorf("error %q does not wrap %v", err, class)
	}
	other := identity.ErrUnavailable
	if class == identity.ErrUnavailable {
		other = identity.ErrInvalid
	}
	if errors.Is(err, other) {
		t.Errorf("error %q wraps both classes", err)
	}
	if reason != "" && !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not say %q", err, reason)
	}
	if !reflect.DeepEqual(id, identity.Identity{}) {
		t.Errorf("an identity came with the error: %+v", id)
	}
	parts := strings.Split(token, ".")
	for _, p := range parts {
		if len(p) > 8 && strings.Contains(err.Error(), p) {
			t.Errorf("error %q contains part of the token", err)
		}
	}
	if strings.Contains(err.Error(), "user-1") {
		t.Errorf("error %q contains a claim value", err)
	}
}

func TestVerifyGood(t *testing.T) {
	for _, k := range []testKey{keyRSA(), keyPS(), keyEC(), keyEd(), keyPinned()} {
		t.Run(string(k.alg)+"/"+k.kid, func(t *testing.T) {
			f := setup(t, discoveryNone, func(c *Config) { c.Claims = []string{"email"} })
			cl := f.claims()
			cl["aud"] = []string{"https://a.example", "https://mcp.example.com/mcp"}
			cl["nbf"] = f.clock.Now().Add(-time.Minute).Unix()
			cl["email"] = "u@example.com"
			id, err := f.v.Verify(t.Context(), mint(t, k, cl, nil))
			if err != nil {
				t.Fatal(err)
			}
			now := f.clock.Now()
			want := identity.Identity{
				Issuer:    f.is.URL,
				Subject:   "user-1",
				ClientID:  "client-1",
				Audience:  []string{"https://a.example", "https://mcp.example.com/mcp"},
				Scopes:    []string{"mcp:read", "mcp:write"},
				Expiry:    time.Unix(now.Add(5*time.Minute).Unix(), 0),
				NotBefore: time.Unix(now.Add(-time.Minute).Unix(), 0),
				Claims:    map[string]string{"email": `"u@example.com"`},
				Source:    identity.SourceJWT,
			}
			if !reflect.DeepEqual(id, want) {
				t.Errorf("got  %+v\nwant %+v", id, want)
			}
			if err := f.v.Ready(); err != nil {
				t.Errorf("Ready after a load: %v", err)
			}
		})
	}
}

// TestVerifyRejects is the RFC 8725 / RFC 9068 bad-input set: each must be refused as
// invalid, with no identity, for the stated reason.
func TestVerifyRejects(t *testing.T) {
	genKeys()
	evil := newIssuer(t, discoveryNone, testKey{kid: "rsa-1", alg: jose.RS256, priv: evilRSA})
	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}

	for _, tc := range []struct {
		name   string
		token  func(f *fixture) string
		reason string
		mod    func(*Config)
	}{
		{name: "alg none", reason: "alg not allowed", token: func(f *fixture) string {
			return b64(map[string]string{"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}) + "." + b64(f.claims()) + "."
		}},
		{name: "alg none with a signature", reason: "alg not allowed", token: func(f *fixture) string {
			good := mint(t, keyRSA(), f.claims(), nil)
			return b64(map[string]string{"alg": "none", "typ": "at+jwt"}) + "." + b64(f.claims()) + "." + good[strings.LastIndexByte(good, '.')+1:]
		}},
		{name: "HS256 keyed with the RSA public key (key confusion)", reason: "alg not allowed", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.HS256, hmac: pubPEM}, f.claims(), nil)
		}},
		{name: "HS256 keyed with the JWK n", reason: "alg not allowed", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.HS256, hmac: rsaKey.N.Bytes()}, f.claims(), nil)
		}},
		{name: "alg outside the configured list", reason: "alg not allowed", mod: func(c *Config) { c.Algorithms = []string{"ES256"} },
			token: func(f *fixture) string { return mint(t, keyRSA(), f.claims(), nil) }},
		{name: "unknown kid", reason: "unknown kid", token: func(f *fixture) string {
			return mint(t, testKey{kid: "nope", alg: jose.RS256, priv: rsaKey}, f.claims(), nil)
		}},
		{name: "no kid and no key for alg", reason: "no key for alg", mod: func(c *Config) { c.Algorithms = []string{"ES384"} },
			token: func(f *fixture) string {
				return mint(t, testKey{alg: jose.ES384, priv: ecKey384}, f.claims(), nil)
			}},
		{name: "expired", reason: "expired", token: func(f *fixture) string {
			cl := f.claims()
			cl["exp"] = f.clock.Now().Add(-31 * time.Second).Unix()
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "expired exactly at the leeway", reason: "expired", token: func(f *fixture) string {
			cl := f.claims()
			cl["exp"] = f.clock.Now().Add(-30 * time.Second).Unix()
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "expired, no leeway", reason: "expired", mod: func(c *Config) { c.ClockSkew = 0 }, token: func(f *fixture) string {
			cl := f.claims()
			cl["exp"] = f.clock.Now().Unix()
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "nbf in the future", reason: "nbf", token: func(f *fixture) string {
			cl := f.claims()
			cl["nbf"] = f.clock.Now().Add(31 * time.Second).Unix()
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "iat in the future", reason: "iat", token: func(f *fixture) string {
			cl := f.claims()
			cl["iat"] = f.clock.Now().Add(10 * time.Minute).Unix()
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "missing exp", reason: "exp missing", token: func(f *fixture) string {
			cl := f.claims()
			delete(cl, "exp")
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "exp not a number", reason: "malformed claims", token: func(f *fixture) string {
			cl := f.claims()
			cl["exp"] = "tomorrow"
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "exp absurd", reason: "malformed claims", token: func(f *fixture) string {
			cl := f.claims()
			cl["exp"] = 1e300
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "aud not strings", reason: "malformed claims", token: func(f *fixture) string {
			cl := f.claims()
			cl["aud"] = []int{1}
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "scope an object", reason: "malformed claims", token: func(f *fixture) string {
			cl := f.claims()
			cl["scope"] = map[string]string{"a": "b"}
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "wrong iss", reason: "wrong issuer", token: func(f *fixture) string {
			cl := f.claims()
			cl["iss"] = "https://other.example"
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "iss with a trailing slash", reason: "wrong issuer", token: func(f *fixture) string {
			cl := f.claims()
			cl["iss"] = f.is.URL + "/"
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "iss missing", reason: "wrong issuer", token: func(f *fixture) string {
			cl := f.claims()
			delete(cl, "iss")
			return mint(t, keyRSA(), cl, nil)
		}},
		{name: "typ JWT", reason: "typ", token: func(f *fixture) string {
			return mint(t, keyRSA(), f.claims(), map[string]any{"typ": "JWT"})
		}},
		{name: "typ missing", reason: "typ", token: func(f *fixture) string {
			return mint(t, keyRSA(), f.claims(), map[string]any{"typ": ""})
		}},
		{name: "typ not a string", reason: "typ", token: func(f *fixture) string {
			return mint(t, keyRSA(), f.claims(), map[string]any{"typ": 1})
		}},
		{name: "crit header", reason: "crit", token: func(f *fixture) string {
			return mint(t, keyRSA(), f.claims(), map[string]any{"crit": []string{"exp"}, "exp": 1})
		}},
		{name: "jku to another server, its key, same kid", reason: "bad signature", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.RS256, priv: evilRSA}, f.claims(), map[string]any{"jku": evil.URL + "/jwks"})
		}},
		{name: "jku to another server, its key, its kid", reason: "unknown kid", token: func(f *fixture) string {
			return mint(t, testKey{kid: "evil", alg: jose.RS256, priv: evilRSA}, f.claims(), map[string]any{"jku": evil.URL + "/jwks"})
		}},
		{name: "x5u to another server", reason: "bad signature", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.RS256, priv: evilRSA}, f.claims(), map[string]any{"x5u": evil.URL + "/jwks"})
		}},
		{name: "embedded jwk header", reason: "bad signature", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.RS256, priv: evilRSA}, f.claims(),
				map[string]any{"jwk": jose.JSONWebKey{Key: evilRSA.Public()}})
		}},
		{name: "JWK alg RS256, token PS256 with the same kid", reason: "alg does not match key", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-pinned", alg: jose.PS256, priv: rsaKey2}, f.claims(), nil)
		}},
		{name: "ES256 header on an RSA kid", reason: "alg does not match key", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.ES256, priv: ecKey}, f.claims(), nil)
		}},
		{name: "signature by another key", reason: "bad signature", token: func(f *fixture) string {
			return mint(t, testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaKey2}, f.claims(), nil)
		}},
		{name: "payload swapped", reason: "bad signature", token: func(f *fixture) string {
			good := strings.Split(mint(t, keyRSA(), f.claims(), nil), ".")
			cl := f.claims()
			cl["sub"] = "admin"
			return good[0] + "." + b64(cl) + "." + good[2]
		}},
		{name: "two segments", reason: "malformed", token: func(f *fixture) string {
			good := mint(t, keyRSA(), f.claims(), nil)
			return good[:strings.LastIndexByte(good, '.')]
		}},
		{name: "five segments (JWE)", reason: "JWE", token: func(f *fixture) string {
			return b64(map[string]string{"alg": "RSA-OAEP", "enc": "A256GCM"}) + ".a.b.c.d"
		}},
		{name: "four segments", reason: "malformed", token: func(f *fixture) string {
			return mint(t, keyRSA(), f.claims(), nil) + ".x"
		}},
		{name: "JSON serialization", reason: "malformed", token: func(f *fixture) string {
			return `{"payload":"e30","protected":"e30","signature":"x"}`
		}},
		{name: "garbage base64", reason: "malformed", token: func(f *fixture) string { return "!!!.@@@.###" }},
		{name: "padded base64", reason: "malformed", token: func(f *fixture) string {
			return mint(t, keyRSA(), f.claims(), nil) + "=="
		}},
		{name: "header not base64", reason: "malformed", token: func(f *fixture) string { return "a.e30.e30" }},
		{name: "header not JSON", reason: "malformed", token: func(f *fixture) string {
			return base64.RawURLEncoding.EncodeToString([]byte("hello")) + ".e30.e30"
		}},
		{name: "header without alg", reason: "alg not allowed", token: func(f *fixture) string { return "e30.e30.e30" }},
		{name: "empty payload", reason: "malformed", token: func(f *fixture) string { return b64(map[string]string{"alg": "RS256"}) + "..sig" }},
		{name: "empty", reason: "malformed", token: func(f *fixture) string { return "" }},
		{name: "whitespace", reason: "malformed", token: func(f *fixture) string { return " " + mint(t, keyRSA(), f.claims(), nil) }},
		{name: "too long", reason: "too long", token: func(f *fixture) string {
			cl := f.claims()
			cl["pad"] = strings.Repeat("a", maxTokenLen)
			return mint(t, keyRSA(), cl, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, discoveryNone, tc.mod)
			token := tc.token(f)
			id, err := f.v.Verify(t.Context(), token)
			wantErr(t, id, err, identity.ErrInvalid, tc.reason, token)
			if strings.Contains(f.logs.String(), token) && token != "" {
				t.Errorf("the token reached the logs")
			}
		})
	}
	if n := evil.jwksHits.Load(); n != 0 {
		t.Errorf("the server named by jku/x5u received %d requests", n)
	}
}

func TestTyp(t *testing.T) {
	for _, tc := range []struct {
		typ     any
		require bool
		ok      bool
	}{
		{"at+jwt", true, true},
		{"AT+JWT", true, true},
		{"application/at+jwt", true, true},
		{"Application/AT+JWT", true, true},
		{"JWT", true, false},
		{"", true, false},
		{"at+jwt ", true, false},
		{"JWT", false, true},
		{"", false, true},
	} {
		t.Run(fmt.Sprintf("%v/require=%v", tc.typ, tc.require), func(t *testing.T) {
			f := setup(t, discoveryNone, func(c *Config) { c.RequireTyp = tc.require })
			token := mint(t, keyRSA(), f.claims(), map[string]any{"typ": tc.typ})
			id, err := f.v.Verify(t.Context(), token)
			if tc.ok {
				if err != nil || id.Subject != "user-1" {
					t.Fatalf("got %+v, %v; want accepted", id, err)
				}
				return
			}
			wantErr(t, id, err, identity.ErrInvalid, "typ", token)
		})
	}
}

func TestTimesWithinLeeway(t *testing.T) {
	f := setup(t, discoveryNone, nil) // 30 s leeway
	now := f.clock.Now()
	cl := f.claims()
	cl["exp"] = now.Add(-29 * time.Second).Unix()
	cl["nbf"] = now.Add(29 * time.Second).Unix()
	cl["iat"] = now.Add(29 * time.Second).Unix()
	id, err := f.v.Verify(t.Context(), mint(t, keyRSA(), cl, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !id.Expiry.Equal(now.Add(-29*time.Second)) || !id.NotBefore.Equal(now.Add(29*time.Second)) {
		t.Errorf("expiry %v, not before %v", id.Expiry, id.NotBefore)
	}
	// Fractional NumericDates (RFC 7519 §2) are kept to the nanosecond.
	cl["exp"] = float64(now.Unix()) + 60.5
	id, err = f.v.Verify(t.Context(), mint(t, keyRSA(), cl, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(60*time.Second + 500*time.Millisecond); !id.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", id.Expiry, want)
	}
}

func TestIdentityClaims(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) {
		c.Claims = []string{"email", "groups", "n", "f", "admin", "obj", "null", "mixed", "missing", "", "sub"}
	})
	for _, tc := range []struct {
		name   string
		set    map[string]any
		del    []string
		scopes []string
		client string
		aud    []string
		claims map[string]string
	}{
		{
			name:   "scope string and scp array, merged in order without duplicates",
			set:    map[string]any{"scope": "a b  c", "scp": []string{"c", "d", "a"}},
			scopes: []string{"a", "b", "c", "d"}, client: "client-1", aud: []string{"https://mcp.example.com/mcp"},
		},
		{
			name:   "scp only, as a string; azp when there is no client_id",
			set:    map[string]any{"scp": "x y", "azp": "azp-client", "aud": []string{}},
			del:    []string{"scope", "client_id"},
			scopes: []string{"x", "y"}, client: "azp-client", aud: []string{},
		},
		{
			name: "no scope at all; client_id wins over azp", set: map[string]any{"azp": "other"},
			del: []string{"scope", "aud"}, client: "client-1",
		},
		{
			name: "extra claims stringified",
			set: map[string]any{
				"email": "u@example.com", "groups": []string{"g1", "g2"}, "n": 42, "f": 1.5, "admin": true,
				"obj": map[string]any{"a": 1}, "null": nil, "mixed": []any{"a", 1},
			},
			scopes: []string{"mcp:read", "mcp:write"}, client: "client-1", aud: []string{"https://mcp.example.com/mcp"},
			claims: map[string]string{"email": `"u@example.com"`, "groups": `["g1","g2"]`, "n": "42", "f": "1.5", "admin": "true",
				"sub": `"user-1"`, "obj": `{"a":1}`, "null": "null", "mixed": `["a",1]`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := f.claims()
			for k, v := range tc.set {
				cl[k] = v
			}
			for _, k := range tc.del {
				delete(cl, k)
			}
			id, err := f.v.Verify(t.Context(), mint(t, keyEC(), cl, nil))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(id.Scopes, tc.scopes) {
				t.Errorf("scopes %q, want %q", id.Scopes, tc.scopes)
			}
			if id.ClientID != tc.client {
				t.Errorf("client %q, want %q", id.ClientID, tc.client)
			}
			if !reflect.DeepEqual(id.Audience, tc.aud) {
				t.Errorf("audience %#v, want %#v", id.Audience, tc.aud)
			}
			want := tc.claims
			if want == nil {
				want = map[string]string{"sub": `"user-1"`}
			}
			if !reflect.DeepEqual(id.Claims, want) {
				t.Errorf("claims %q, want %q", id.Claims, want)
			}
		})
	}
}

func TestTokenWithoutKid(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	for _, k := range []testKey{keyRSA(), keyEC(), keyEd()} {
		k.kid = ""
		if _, err := f.v.Verify(t.Context(), mint(t, k, f.claims(), nil)); err != nil {
			t.Errorf("%s without kid: %v", k.alg, err)
		}
	}
	// Without a kid, a key that declares another alg is not a candidate.
	k := keyPinned()
	k.kid, k.alg = "", jose.PS256
	token := mint(t, k, f.claims(), nil)
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrInvalid, "bad signature", token)
}

func TestJWKSMembersIgnored(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	pub := func(k testKey, use, alg string) json.RawMessage {
		b, err := json.Marshal(jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: use, Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	priv, err := json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "ec-private"})
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]any{"keys": []any{
		json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`),
		json.RawMessage(`{"kty":"ML-KEM","kid":"future"}`),
		json.RawMessage(`{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"}`),
		json.RawMessage(priv),
		pub(testKey{kid: "rsa-enc", priv: rsaKey2}, "enc", ""),
		pub(testKey{kid: "rsa-mislabelled", priv: rsaKey2}, "sig", "ES256"),
		pub(keyRSA(), "sig", ""),
	}}
	b, _ := json.Marshal(set)
	f.is.setRaw(string(b))
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatalf("the usable key was not kept: %v", err)
	}
	for _, k := range []testKey{
		{kid: "rsa-enc", alg: jose.RS256, priv: rsaKey2},
		{kid: "rsa-mislabelled", alg: jose.RS256, priv: rsaKey2},
		{kid: "ec-private", alg: jose.ES256, priv: ecKey},
		{kid: "hmac", alg: jose.ES256, priv: ecKey},
	} {
		// Past the refresh interval, so that each kid is looked for in a fresh fetch and
		// its absence is certain.
		f.clock.Advance(time.Minute)
		token := mint(t, k, f.claims(), nil)
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrInvalid, "unknown kid", token)
	}
	if !strings.Contains(f.logs.String(), "skipped=6") {
		t.Errorf("ignored members not logged:\n%s", f.logs)
	}
}

func TestNew(t *testing.T) {
	is := newIssuer(t, discoveryRFC8414, allKeys()...)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok, discovery", Config{Issuer: is.URL}, ""},
		{"ok, explicit", Config{Issuer: is.URL, JWKSURL: is.URL + "/jwks", Algorithms: []string{"RS256", "RS512", "PS384", "ES384", "ES512", "EdDSA"}}, ""},
		{"no issuer", Config{}, "issuer"},
		{"relative issuer", Config{Issuer: "as.example"}, "issuer"},
		{"bad jwks url", Config{Issuer: is.URL, JWKSURL: "file:///etc/passwd"}, "jwks url"},
		{"none", Config{Issuer: is.URL, Algorithms: []string{"RS256", "none"}}, `"none" not allowed`},
		{"HS256", Config{Issuer: is.URL, Algorithms: []string{"HS256"}}, `"HS256" not allowed`},
		{"lower case", Config{Issuer: is.URL, Algorithms: []string{"rs256"}}, `"rs256" not allowed`},
		{"negative skew", Config{Issuer: is.URL, ClockSkew: -time.Second}, "negative"},
		{"tiny interval", Config{Issuer: is.URL, RefreshInterval: time.Millisecond}, "under 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(required(tc.cfg))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Issuer() != tc.cfg.Issuer {
					t.Errorf("Issuer() = %q", v.Issuer())
				}
				if err := v.Ready(); err == nil || !strings.Contains(err.Error(), "not loaded yet") {
					t.Errorf("Ready before any load = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if n := is.jwksHits.Load() + is.discoveryHits.Load(); n != 0 {
		t.Errorf("New made %d requests; it must make none", n)
	}
}

func TestDiscovery(t *testing.T) {
	for _, d := range []string{discoveryRFC8414, discoveryOIDC} {
		t.Run(d, func(t *testing.T) {
			f := setup(t, d, nil)
			token := mint(t, keyRSA(), f.claims(), nil)
			// Concurrent first callers share one discovery and one JWKS fetch.
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for range 20 {
				wg.Go(func() {
					_, err := f.v.Verify(t.Context(), token)
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if d, j := f.is.discoveryHits.Load(), f.is.jwksHits.Load(); d != 1 || j != 1 {
				t.Errorf("discovery fetched %d times, JWKS %d times; want 1 and 1", d, j)
			}
		})
	}
}

func TestDiscoveryFailsUnavailable(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.JWKSURL = "" }) // serves no metadata
	token := mint(t, keyRSA(), f.claims(), nil)
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrUnavailable, "no metadata published", token)
	if err := f.v.Ready(); err == nil || !strings.Contains(err.Error(), "no metadata published") {
		t.Errorf("Ready = %v", err)
	}
}

// TestUnknownKidFlood: random kids cause at most one JWKS fetch per refresh interval.
func TestUnknownKidFlood(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.RefreshInterval = 30 * time.Second })
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Fatalf("initial load: %d fetches", n)
	}
	flood := func() {
		var wg sync.WaitGroup
		for i := range 100 {
			token := mint(t, testKey{kid: fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano()), alg: jose.RS256, priv: rsaKey}, f.claims(), nil)
			wg.Go(func() {
				// Inside the interval a kid may be a key rotated in since the last fetch:
				// unavailable, not invalid. After the interval, the one caller that
				// fetches learns the kid is unknown; the others are inside the new interval.
				id, err := f.v.Verify(t.Context(), token)
				if errors.Is(err, identity.ErrInvalid) {
					wantErr(t, id, err, identity.ErrInvalid, "unknown kid", token)
				} else {
					wantErr(t, id, err, identity.ErrUnavailable, "unknown kid", token)
				}
			})
		}
		wg.Wait()
	}
	flood() // within the interval of the initial load: no fetch at all
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Errorf("flood inside the interval: %d fetches, want 1 (the initial)", n)
	}
	f.clock.Advance(30 * time.Second)
	flood()
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("flood after the interval: %d fetches, want 2", n)
	}
	f.clock.Advance(29 * time.Second)
	flood()
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("second flood inside the interval: %d fetches, want 2", n)
	}
}

func TestKeyRotation(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	newKey := testKey{kid: "rsa-2026", alg: jose.RS256, priv: rsaKey2}
	f.is.addKey(newKey)
	f.clock.Advance(time.Minute)
	id, err := f.v.Verify(t.Context(), mint(t, newKey, f.claims(), nil))
	if err != nil || id.Subject != "user-1" {
		t.Fatalf("token with the new kid: %+v, %v", id, err)
	}
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2 (initial + one refresh)", n)
	}
	// Both keys verify now without further fetches.
	for _, k := range []testKey{keyRSA(), newKey} {
		if _, err := f.v.Verify(t.Context(), mint(t, k, f.claims(), nil)); err != nil {
			t.Errorf("kid %s: %v", k.kid, err)
		}
	}
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want still 2", n)
	}
}

func TestJWKSDownFromStart(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	f.is.setDown(true)
	token := mint(t, keyRSA(), f.claims(), nil)
	verify := func() {
		t.Helper()
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrUnavailable, "keys unavailable", token)
	}
	verify()
	verify() // backing off: no new request
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1 during the first backoff", n)
	}
	if err := f.v.Ready(); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Ready = %v, want the load error", err)
	}
	// Backoff doubles: 1 s, 2 s, 4 s … up to 30 s.
	var want int32 = 1
	for _, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		f.clock.Advance(step - time.Millisecond)
		verify()
		if n := f.is.jwksHits.Load(); n != want {
			t.Fatalf("before the %s backoff ended: %d fetches, want %d", step, n, want)
		}
		f.clock.Advance(time.Millisecond)
		verify()
		want++
		if n := f.is.jwksHits.Load(); n != want {
			t.Fatalf("after the %s backoff: %d fetches, want %d", step, n, want)
		}
	}
	// The issuer comes back: the next attempt after the backoff loads the keys.
	f.is.setDown(false)
	f.clock.Advance(30 * time.Second)
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

func TestJWKSDownAfterLoad(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	f.is.setDown(true)

	// An unknown kid while the issuer is down: the refresh fails, which is not the token's
	// fault (the kid may be real) …
	f.clock.Advance(time.Minute)
	token := mint(t, testKey{kid: "rsa-new", alg: jose.RS256, priv: rsaKey2}, f.claims(), nil)
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrUnavailable, "unknown kid and keys unavailable", token)
	// … and the next one inside the interval is refused without a request, still not as
	// the token's fault.
	id, err = f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrUnavailable, "unknown kid", token)
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}

	// Known keys keep verifying, also once they are stale and background refreshes fail.
	for range 3 {
		f.clock.Advance(defaultTTL)
		if _, err := f.v.Verify(t.Context(), mint(t, keyEC(), f.claims(), nil)); err != nil {
			t.Fatalf("last good keys no longer verify: %v", err)
		}
	}
	if err := f.v.Ready(); err != nil {
		t.Errorf("Ready with last good keys = %v", err)
	}
}

func TestStaleKeysRefreshInBackground(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	// The issuer withdraws rsa-1; once the keys are stale, a request triggers a refresh.
	f.is.mu.Lock()
	f.is.keys = []testKey{keyEC()}
	f.is.mu.Unlock()
	f.clock.Advance(defaultTTL + time.Second)
	if _, err := f.v.Verify(t.Context(), mint(t, keyEC(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	// The refresh runs in the background; wait for it (bounded) rather than guess a sleep.
	deadline := time.Now().Add(10 * time.Second)
	for f.is.jwksHits.Load() < 2 || f.v.keys.keys.Load().fetched.Equal(generatedAt) {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh")
		}
		time.Sleep(time.Millisecond)
	}
	// Inside the interval of that refresh the withdrawn kid is unavailable (it might have
	// come back); after it, a fetch settles that it is gone.
	token := mint(t, keyRSA(), f.claims(), nil)
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrUnavailable, "unknown kid", token)
	f.clock.Advance(31 * time.Second)
	token = mint(t, keyRSA(), f.claims(), nil)
	id, err = f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrInvalid, "unknown kid", token)
}

func TestCallerDeadlineWhileJWKSSlow(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	release := make(chan struct{})
	f.is.mu.Lock()
	f.is.hold = release
	f.is.mu.Unlock()
	token := mint(t, keyRSA(), f.claims(), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	id, err := f.v.Verify(ctx, token)
	wantErr(t, id, err, identity.ErrUnavailable, "deadline exceeded", token)
	// The fetch went on without that caller; once the issuer answers, keys are there.
	f.is.mu.Lock()
	f.is.hold = nil
	f.is.mu.Unlock()
	close(release)
	if err := f.v.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1 (the slow one, completed)", n)
	}
}

func TestJWKSBad(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"garbage", "<html>", "not a JWKS"},
		{"array", `[{"kty":"RSA"}]`, "not a JWKS"},
		{"null", `null`, "not a JWKS"},
		{"no keys", `{"keys":[]}`, "no usable signing keys"},
		{"only symmetric", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`, "no usable signing keys in JWKS (1 ignored)"},
		{"huge", `{"keys":[],"pad":"` + strings.Repeat("a", maxJWKS) + `"}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, discoveryNone, nil)
			f.is.setRaw(tc.raw)
			token := mint(t, keyRSA(), f.claims(), nil)
			id, err := f.v.Verify(t.Context(), token)
			wantErr(t, id, err, identity.ErrUnavailable, tc.want, token)
			if err := f.v.Ready(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Ready = %v", err)
			}
		})
	}
}

func TestDiscoveredJWKSURIUnusable(t *testing.T) {
	genKeys()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":"http://%s","jwks_uri":"/relative"}`, r.Host)
	}))
	defer srv.Close()
	base := srv.URL
	v, err := New(required(Config{Issuer: base, HTTPClient: srv.Client(), RequireTyp: true}))
	if err != nil {
		t.Fatal(err)
	}
	token := mint(t, keyRSA(), claimsFor(base, time.Now()), nil)
	id, err := v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrUnavailable, "no usable jwks_uri", token)
}
