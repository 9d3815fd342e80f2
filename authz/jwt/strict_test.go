package jwt

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// mintRaw signs payload as it is, byte for byte, with k (typ at+jwt), so that duplicate and
// case-variant names reach the verifier as an issuer could have signed them.
func mintRaw(t *testing.T, k testKey, payload string, headers map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderType, "at+jwt")
	for h, v := range headers {
		opts.WithHeader(jose.HeaderKey(h), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 14 item 3: a signed payload that two JSON readers could read differently is refused,
// never read the way encoding/json would (case-insensitive, the last duplicate winning).
func TestAmbiguousClaimsRefused(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	now := f.clock.Now().Unix()
	base := func(extra string) string {
		return `{"iss":"` + f.is.URL + `","client_id":"client-1","iat":` + itoa(now) + `,` + extra + `}`
	}
	exp := `"exp":` + itoa(now+300)
	aud := `"aud":"https://mcp.example.com/mcp"`
	good := base(`"sub":"alice",` + aud + `,"scope":"mcp:read",` + exp)
	if id, err := f.v.Verify(t.Context(), mintRaw(t, keyRSA(), good, nil)); err != nil || id.Subject != "alice" {
		t.Fatalf("the unambiguous payload: %+v, %v", id, err)
	}
	for _, tc := range []struct{ name, payload string }{
		{"scope and Scope", base(`"sub":"alice",` + aud + `,"scope":"mcp:read","Scope":"mcp:tools",` + exp)},
		{"aud and AUD", base(`"sub":"alice","aud":"https://other.example","AUD":"https://mcp.example.com/mcp",` + exp)},
		{"exp and EXP", base(`"sub":"alice",` + aud + `,"exp":1,"EXP":` + itoa(now+300))},
		{"sub and SUB", base(`"sub":"alice","SUB":"admin",` + aud + `,` + exp)},
		{"sub and long-s sub (U+017F)", base(`"sub":"alice","\u017fub":"admin",` + aud + `,` + exp)},
		{"plain duplicate sub", base(`"sub":"alice","sub":"admin",` + aud + `,` + exp)},
		{"plain duplicate scope", base(`"sub":"alice",` + aud + `,"scope":"mcp:read","scope":"mcp:tools",` + exp)},
		{"duplicate inside a nested claim", base(`"sub":"alice",` + aud + `,` + exp + `,"act":{"sub":"a","sub":"b"}`)},
		{"invalid UTF-8 in a claim", base(`"sub":"al` + "\xff" + `ice",` + aud + `,` + exp)},
		{"a second JSON value after the payload", base(`"sub":"alice",`+aud+`,`+exp) + `{"sub":"admin"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := mintRaw(t, keyRSA(), tc.payload, nil)
			id, err := f.v.Verify(t.Context(), token)
			if err == nil {
				t.Fatalf("ALLOWED as %q with scopes %q and audience %q", id.Subject, id.Scopes, id.Audience)
			}
			wantErr(t, id, err, identity.ErrInvalid, "", token)
		})
	}
}

// The JOSE header is read as strictly as the payload.
func TestAmbiguousHeaderRefused(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.RequireTyp = false })
	claims := mustJSON(t, f.claims())
	good := `{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}`
	if _, err := f.v.Verify(t.Context(), signRaw(t, good, claims)); err != nil {
		t.Fatalf("the unambiguous header: %v", err)
	}
	for _, tc := range []struct{ name, header string }{
		{"typ and TYP", `{"alg":"RS256","typ":"at+jwt","TYP":"JWT","kid":"rsa-1"}`},
		{"alg and Alg", `{"alg":"RS256","Alg":"none","typ":"at+jwt","kid":"rsa-1"}`},
		{"kid and Kelvin-sign kid", "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"\u212aid\":\"ec-1\"}"},
		{"invalid UTF-8 in a header value", "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"x\":\"\xff\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := signRaw(t, tc.header, claims)
			id, err := f.v.Verify(t.Context(), token)
			wantErr(t, id, err, identity.ErrInvalid, "ambiguous", token)
		})
	}
}

// signRaw signs header and payload, both as they are, with the issuer's RS256 key rsa-1.
func signRaw(t *testing.T, header, payload string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// Issue 14 item 6: an OpenID Connect ID token, or another kind of JWT, is refused even where
// allow_typ admits its typ. The ID token shapes are those of real providers (Keycloak 26,
// Ory Hydra v2, Google), with the test issuer and times.
func TestIDTokensRefused(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.AllowTyp = []string{"JWT"} })
	jwtTyp := map[string]any{"typ": "JWT"}
	now := f.clock.Now().Unix()
	with := func(set map[string]any, drop ...string) map[string]any {
		cl := f.claims()
		for _, d := range drop {
			delete(cl, d)
		}
		for k, v := range set {
			cl[k] = v
		}
		return cl
	}
	const resource = "https://mcp.example.com/mcp"
	for _, tc := range []struct {
		name    string
		claims  map[string]any
		headers map[string]any
		reason  string
	}{
		{"Keycloak ID token", with(map[string]any{"typ": "ID", "aud": "mcp-client", "azp": "mcp-client", "nonce": "n-1",
			"at_hash": "x3k2bHQ9f1Qx", "auth_time": now, "session_state": "s", "acr": "1", "sid": "s"}, "client_id", "scope"), jwtTyp, "ID token"},
		{"Hydra ID token", with(map[string]any{"aud": []string{"mcp-client"}, "nonce": "n-1", "at_hash": "x3k2bHQ9f1Qx",
			"auth_time": now, "rat": now, "sid": "s"}, "client_id", "scope"), jwtTyp, "ID token"},
		{"Google ID token", with(map[string]any{"aud": "1234.apps.googleusercontent.com", "azp": "1234.apps.googleusercontent.com",
			"email": "u@example.com", "at_hash": "x3k2bHQ9f1Qx"}, "client_id", "scope"), jwtTyp, "ID token"},
		{"nonce naming the resource in aud", with(map[string]any{"aud": resource, "nonce": "n-1"}), jwtTyp, "ID token"},
		{"nonce under typ at+jwt", with(map[string]any{"nonce": "n-1"}), nil, "ID token"},
		{"c_hash", with(map[string]any{"c_hash": "LDktKdoQak3Pk0cnXxCltA"}), jwtTyp, "ID token"},
		{"s_hash", with(map[string]any{"s_hash": "LDktKdoQak3Pk0cnXxCltA"}), jwtTyp, "ID token"},
		{"aud only the client, azp the same", with(map[string]any{"aud": "client-1", "azp": "client-1"}), jwtTyp, "ID token"},
		{"aud only the client_id", with(map[string]any{"aud": []string{"client-1"}}), jwtTyp, "ID token"},
		{"typ id_token", f.claims(), map[string]any{"typ": "id_token"}, "not an access token"},
		{"typ application/id_token+jwt", f.claims(), map[string]any{"typ": "application/id_token+jwt"}, "not an access token"},
		{"typ logout+jwt", f.claims(), map[string]any{"typ": "logout+jwt"}, "not an access token"},
		{"Keycloak refresh token (typ Refresh)", with(map[string]any{"typ": "Refresh", "azp": "client-1"}), jwtTyp, "not an access token"},
		{"Keycloak offline token", with(map[string]any{"typ": "Offline", "azp": "client-1"}), jwtTyp, "not an access token"},
		{"Cognito ID token (token_use id)", with(map[string]any{"token_use": "id"}), jwtTyp, "not an access token"},
		{"token_use refresh_token", with(map[string]any{"token_use": "refresh_token"}), nil, "not an access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := mint(t, keyRSA(), tc.claims, tc.headers)
			id, err := f.v.Verify(t.Context(), token)
			wantErr(t, id, err, identity.ErrInvalid, tc.reason, token)
		})
	}
	// Access tokens that look a little like them still pass.
	for _, tc := range []struct {
		name    string
		claims  map[string]any
		headers map[string]any
	}{
		{"Keycloak 26 access token", with(map[string]any{"typ": "Bearer", "azp": "mcp-client", "aud": []string{resource, "account"},
			"sid": "s", "acr": "1", "realm_access": map[string]any{"roles": []string{"r"}}}, "client_id"), jwtTyp},
		{"Keycloak 23 access token with nonce (keycloak#26893)", with(map[string]any{"typ": "Bearer", "azp": "mcp-client",
			"aud": resource, "nonce": "n-1"}, "client_id"), jwtTyp},
		{"azp is the client, aud the resource", with(map[string]any{"azp": "client-1"}), nil},
		{"aud the resource and the client", with(map[string]any{"aud": []string{resource, "client-1"}, "azp": "client-1"}), nil},
		{"Cognito access token (token_use access)", with(map[string]any{"token_use": "access"}), jwtTyp},
		{"typ application/at+jwt", f.claims(), map[string]any{"typ": "application/at+jwt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), tc.claims, tc.headers)); err != nil {
				t.Fatalf("an access token refused: %v", err)
			}
		})
	}
}

// With require_typ off, the same rule holds: an ID token is no access token.
func TestIDTokenRefusedWithoutRequireTyp(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.RequireTyp = false })
	cl := f.claims()
	cl["nonce"] = "n-1"
	token := mint(t, keyRSA(), cl, map[string]any{"typ": ""})
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrInvalid, "ID token", token)
}

func TestAllowTypRefusesOtherKinds(t *testing.T) {
	for _, typ := range []string{"id_token", "ID", "urn:ietf:params:oauth:token-type:refresh_token", "logout+jwt", "application/dpop+jwt"} {
		if _, err := New(required(Config{Issuer: "https://as.example", RequireTyp: true, AllowTyp: []string{"JWT", typ}})); err == nil {
			t.Errorf("allow_typ %q accepted", typ)
		}
	}
	if _, err := New(required(Config{Issuer: "https://as.example", RequireTyp: true, AllowTyp: []string{"JWT", "at+jwt", "application/jwt"}})); err != nil {
		t.Error(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
