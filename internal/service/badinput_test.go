package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// handJWT builds a compact JWS with any header, for tokens no library would sign.
func handJWT(header, claims map[string]any, sign func(input string) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64url(h) + "." + b64url(c)
	return input + "." + b64url(sign(input))
}

// rsaPublicPEM fetches the demo AS's RSA key from its JWKS, as an attacker would.
func rsaPublicPEM(t *testing.T, asURL string) []byte {
	t.Helper()
	resp, err := http.Get(asURL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	der, err := x509.MarshalPKIXPublicKey(set.Key("rsa-1")[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestBadInputNeverAllowed runs the RFC 8725 bad-input set and the malformed-header set
// through the whole service (real gRPC, real JWT verification against the demo AS's keys):
// each gets its exact status and challenge, none is ever allowed.
func TestBadInputNeverAllowed(t *testing.T) {
	d := startDemo(t)
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": d.ASURL, "sub": "attacker", "aud": d.Resource, "client_id": "demo",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x", "scope": "mcp:tools",
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	mint := func(c map[string]any, o demoas.MintOptions) string {
		tok, err := d.AS.Mint(c, o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pub := rsaPublicPEM(t, d.ASURL)
	hs := func(key []byte) func(string) []byte {
		return func(in string) []byte { m := hmac.New(sha256.New, key); m.Write([]byte(in)); return m.Sum(nil) }
	}
	good := mint(claims(nil), demoas.MintOptions{})

	const (
		invalid = `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not meant for this resource.", scope="mcp:tools", resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`
		bare    = `Bearer scope="mcp:tools", resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`
		multi   = `Bearer error="invalid_request", error_description="The request carries more than one access token.", resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`
		query   = `Bearer error="invalid_request", error_description="Access tokens are not accepted in the query string.", resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`
		// A kid not in keys fetched within the refresh interval may be a key just rotated in:
		// "not verifiable right now" (retried, never cached as invalid).
		notYet = `Bearer error="invalid_token", error_description="The access token could not be verified right now.", scope="mcp:tools", resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`
	)
	cases := []struct {
		name      string
		path      string
		authz     string
		status    int
		challenge string
	}{
		{"alg none", "/mcp", "Bearer " + handJWT(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}, claims(nil), func(string) []byte { return nil }), 401, invalid},
		{"HS256 with the RSA public key", "/mcp", "Bearer " + handJWT(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"}, claims(nil), hs(pub)), 401, invalid},
		{"unknown kid", "/mcp", "Bearer " + mint(claims(nil), demoas.MintOptions{KID: "nobody"}), 401, notYet},
		{"expired", "/mcp", "Bearer " + mint(claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }), demoas.MintOptions{}), 401, invalid},
		{"nbf in the future", "/mcp", "Bearer " + mint(claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), demoas.MintOptions{}), 401, invalid},
		{"wrong aud", "/mcp", "Bearer " + mint(claims(func(c map[string]any) { c["aud"] = "http://localhost:8080/other" }), demoas.MintOptions{}), 401, invalid},
		{"wrong iss", "/mcp", "Bearer " + mint(claims(func(c map[string]any) { c["iss"] = d.ASURL + "/" }), demoas.MintOptions{}), 401, invalid},
		{"missing exp", "/mcp", "Bearer " + mint(claims(func(c map[string]any) { delete(c, "exp") }), demoas.MintOptions{}), 401, invalid},
		{"typ JWT (an ID token shape)", "/mcp", "Bearer " + mint(claims(nil), demoas.MintOptions{Typ: "JWT"}), 401, invalid},
		{"no typ", "/mcp", "Bearer " + mint(claims(nil), demoas.MintOptions{Typ: "-"}), 401, invalid},
		{"jku to elsewhere", "/mcp", "Bearer " + mint(claims(nil), demoas.MintOptions{KID: "evil", ExtraHeaders: map[string]any{"jku": "http://127.0.0.1:1/jwks"}}), 401, notYet},
		{"tampered payload", "/mcp", "Bearer " + tamper(good), 401, invalid},
		{"two credentials", "/mcp", "Bearer " + good + ", Bearer " + good, 400, multi},
		{"token in query", "/mcp?access_token=" + good, "", 400, query},
		{"non-ASCII", "/mcp", "Bearer tök€n", 401, invalid},
		{"64 KiB header", "/mcp", "Bearer " + strings.Repeat("A", 64<<10), 401, invalid},
		{"Basic", "/mcp", "Basic ZGVtbzpkZW1vLXNlY3JldA==", 401, bare},
		{"empty Bearer", "/mcp", "Bearer ", 401, invalid},
	}
	client := authv3.NewAuthorizationClient(dial(t, d.GRPCAddr()))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"x-auth-subject": "admin"}
			if tc.authz != "" {
				h["authorization"] = tc.authz
			}
			resp, err := client.Check(context.Background(), checkReq(tc.path, h))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetOkResponse() != nil || resp.GetStatus().GetCode() == 0 {
				t.Fatalf("ALLOWED: %v", resp)
			}
			dr := resp.GetDeniedResponse()
			if int(dr.GetStatus().GetCode()) != tc.status {
				t.Errorf("status %d, want %d", dr.GetStatus().GetCode(), tc.status)
			}
			if got := respHeader(dr.GetHeaders(), "www-authenticate"); got != tc.challenge {
				t.Errorf("challenge:\n got %s\nwant %s", got, tc.challenge)
			}
			if tc.authz != "" && len(tc.authz) > 20 && strings.Contains(resp.String(), tc.authz[7:27]) {
				t.Error("the token leaked into the response")
			}
		})
	}

	// Good token variants: lowercase scheme, extra spaces; a forged identity header is replaced.
	for _, a := range []string{"bearer " + good, "Bearer    " + good + "  "} {
		resp, err := client.Check(context.Background(), checkReq("/mcp", map[string]string{"authorization": a, "x-auth-subject": "admin"}))
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("%q: %v %v", a[:10], resp, err)
		}
		if got := respHeader(resp.GetOkResponse().GetHeaders(), "x-auth-subject"); got != "attacker" {
			t.Errorf("x-auth-subject = %q: the forged value must be overwritten by the token's sub", got)
		}
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"scope":"mcp:tools"`, `"scope":"mcp:admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}
