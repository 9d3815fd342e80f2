package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// tokenEndpoint is a real HTTP token endpoint answering with status, content type and body.
func tokenEndpoint(t *testing.T, status int, ctype, body string, check func(*http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if check != nil {
			check(r)
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

func newTestClient(t *testing.T, ep string) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{ClientID: "mcp authz", Secret: "s3cr%t", TokenEndpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every malformed or hostile answer is a clean error of the right kind, never a token, and
// the error text carries neither the secret nor the body's token.
func TestTokenEndpointAnswers(t *testing.T) {
	const js = "application/json"
	for _, c := range []struct {
		name          string
		status        int
		ctype, body   string
		refused, fine bool
	}{
		{"ok", 200, js, `{"access_token":"new-token","token_type":"Bearer","expires_in":60}`, false, true},
		{"ok N_A", 200, js + "; charset=utf-8", `{"access_token":"x","token_type":"N_A"}`, false, true},
		{"invalid_grant", 400, js, `{"error":"invalid_grant","error_description":"nope"}`, true, false},
		{"invalid_client", 401, js, `{"error":"invalid_client"}`, true, false},
		{"error without json", 400, "text/html", `<h1>bad</h1>`, true, false},
		{"5xx", 503, js, `{"error":"temporarily_unavailable"}`, false, false},
		{"not json", 200, "text/plain", `access_token=x`, false, false},
		{"duplicate member", 200, js, `{"access_token":"a","access_token":"b","token_type":"Bearer"}`, false, false},
		{"case-variant member", 200, js, `{"access_token":"a","Access_Token":"b","token_type":"Bearer"}`, false, false},
		{"no token", 200, js, `{"token_type":"Bearer"}`, false, false},
		{"control char in token", 200, js, `{"access_token":"a\r\nx: y","token_type":"Bearer"}`, false, false},
		{"not bearer", 200, js, `{"access_token":"a","token_type":"DPoP"}`, true, false},
		{"negative expires_in", 200, js, `{"access_token":"a","token_type":"Bearer","expires_in":-5}`, false, false},
		{"truncated", 200, js, `{"access_token":"a"`, false, false},
	} {
		ep := tokenEndpoint(t, c.status, c.ctype, c.body, nil)
		tok, err := newTestClient(t, ep).Request(context.Background(), "https://as.example.com", url.Values{"grant_type": {"client_credentials"}})
		switch {
		case c.fine && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.fine:
			if tok.AccessToken == "" {
				t.Errorf("%s: no token", c.name)
			}
		case err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.refused != errors.Is(err, ErrRefused) || c.refused == errors.Is(err, identity.ErrUnavailable):
			t.Errorf("%s: %v: refused %v, want %v", c.name, err, errors.Is(err, ErrRefused), c.refused)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "nope")) {
			t.Errorf("%s: error text carries the secret or the AS's description: %v", c.name, err)
		}
	}
}

// client_secret_basic form-urlencodes id and secret before base64 (RFC 6749 §2.3.1); the
// secret is not in the body.
func TestClientSecretBasic(t *testing.T) {
	ep := tokenEndpoint(t, 200, "application/json", `{"access_token":"a","token_type":"Bearer"}`, func(r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "mcp+authz" || p != "s3cr%25t" {
			t.Errorf("basic auth %q %q", u, p)
		}
		if r.PostForm.Get("client_secret") != "" {
			t.Error("secret in the body too")
		}
	})
	if _, err := newTestClient(t, ep).Request(context.Background(), "", url.Values{}); err != nil {
		t.Fatal(err)
	}
}

// private_key_jwt: the endpoint verifies the RFC 7523 assertion with the client's public key.
func TestPrivateKeyJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	var ep string
	ep = tokenEndpoint(t, 200, "application/json", `{"access_token":"a","token_type":"Bearer"}`, func(r *http.Request) {
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			t.Error("client_assertion_type")
		}
		jws, err := jose.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(&key.PublicKey)
		if err != nil {
			t.Fatal("assertion does not verify with the client's key")
		}
		var c map[string]any
		json.Unmarshal(payload, &c)
		if c["iss"] != "svc" || c["sub"] != "svc" || c["aud"] != ep || c["jti"] == "" || c["exp"] == nil {
			t.Errorf("assertion claims %v", c)
		}
		if _, _, ok := r.BasicAuth(); ok || r.PostForm.Get("client_secret") != "" {
			t.Error("a secret was sent as well")
		}
	})
	c, err := NewClient(ClientConfig{ClientID: "svc", AuthMethod: AuthPrivateKeyJWT, PrivateKeyPEM: pemKey, KeyID: "k1", TokenEndpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(context.Background(), "", url.Values{}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(ClientConfig{ClientID: "svc", AuthMethod: AuthPrivateKeyJWT, PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}); err == nil || strings.Contains(err.Error(), "AAAA") {
		t.Errorf("bad key: %v", err)
	}
}

// An exchange whose answer grants a scope beyond what was asked is refused, and remembered.
func TestExchangeRefusesBroaderScope(t *testing.T) {
	ep := tokenEndpoint(t, 200, "application/json", `{"access_token":"a","token_type":"Bearer","scope":"api:read api:admin","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`, nil)
	st, err := NewStore(StoreConfig{Secret: make([]byte, 32), L1Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	x, err := NewExchange(ExchangeConfig{Client: newTestClient(t, ep), Store: st, Audience: []string{"api"}, Scopes: []string{"api:read"}})
	if err != nil {
		t.Fatal(err)
	}
	id := &identity.Identity{Issuer: "https://as.example.com", Subject: "alice", Scopes: []string{"api:read", "api:admin"}, Expiry: time.Now().Add(time.Hour)}
	if _, err := x.Credential(context.Background(), authz.CallerToken{Token: "caller-token"}, id); !errors.Is(err, ErrRefused) {
		t.Fatalf("broader scope: %v", err)
	}
	if _, err := x.Credential(context.Background(), authz.CallerToken{Token: "caller-token"}, &identity.Identity{Source: identity.SourceAPIKey}); !errors.Is(err, ErrRefused) {
		t.Fatalf("an API key was exchanged: %v", err)
	}
}

// A Redis value moved to another key, or altered, does not open.
func TestSealedValueBoundToKey(t *testing.T) {
	st, err := NewStore(StoreConfig{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	e := entry{token: "tok", act: `{"sub":"x"}`, deadline: 5, mark: 3}
	v := st.seal("a", e)
	if got, err := st.open("a", v); err != nil || got.token != e.token || got.act != e.act || got.deadline != e.deadline || got.mark != e.mark {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := st.open("b", v); err == nil {
		t.Error("opened under another key")
	}
	v[len(v)-1] ^= 1
	if _, err := st.open("a", v); err == nil {
		t.Error("opened after tampering")
	}
	other, _ := NewStore(StoreConfig{Secret: []byte(strings.Repeat("j", 32))})
	if _, err := other.open("a", st.seal("a", e)); err == nil {
		t.Error("opened with another secret")
	}
}
