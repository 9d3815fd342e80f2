package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
	"github.com/mcp-authz/mcp-authz/authz/dpop/dpoptest"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// testCert is a self-signed client certificate, URL-encoded PEM as Envoy forwards it, and its
// RFC 8705 thumbprint.
func testCert(t testing.TB, cn string) (escaped, x5t string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		base64.RawURLEncoding.EncodeToString(sum[:])
}

func dpopAuthorizer(t testing.TB, key *dpoptest.Key, certX5T string, mode, mtls BindingMode, nonce bool) *Authorizer {
	t.Helper()
	bound := goodID()
	bound.Confirmation.JKT = key.JKT()
	boundRO := bound
	boundRO.Scopes = []string{"mcp:read"}
	certBound := goodID()
	certBound.Confirmation.X5TS256 = certX5T
	both := bound
	both.Confirmation.X5TS256 = certX5T
	tv := tableVerifier{
		"good": {id: goodID()}, "bound": {id: bound}, "boundro": {id: boundRO}, "certbound": {id: certBound},
		"both": {id: both}, "down": {err: identity.ErrUnavailable},
	}
	c := dpop.Config{ReplayKey: []byte(strings.Repeat("r", 32)), Now: func() time.Time { return testNow },
		Replay: dpop.NewReplay(nil, 100, nil, func() time.Time { return testNow })}
	if nonce {
		c.Nonces = dpop.NewNonces([]byte("nonce-key-nonce-key"), 5*time.Minute, 0)
	}
	ck, err := dpop.NewChecker(c)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Unavailable: Unavailable{Status: 401},
		Resources: []Resource{{Name: "mcp", ID: res, AuthorizationServers: []string{iss},
			RequiredScopes: []string{"mcp:tools"},
			Headers:        IdentityHeaders{Subject: "x-auth-subject", Binding: "x-auth-token-binding"},
			DPoP:           mode, MTLSBound: mtls,
			Rules: []Rule{{Paths: []string{"/mcp/admin"}, Scopes: []string{"mcp:admin"}}}}},
		Verifiers: Verifiers{Opaque: tv},
		DPoP:      ck,
		Now:       func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDPoPChallenges pins every DPoP answer byte for byte (RFC 9449 §7.1, §7.2), and shows each
// is the same when repeated.
func TestDPoPChallenges(t *testing.T) {
	key := dpoptest.NewKey()
	other := dpoptest.NewKey()
	cert, x5t := testCert(t, "client")
	allowed := dpopAuthorizer(t, key, x5t, BindingAllowed, BindingAllowed, false)
	required := dpopAuthorizer(t, key, x5t, BindingRequired, BindingOff, false)
	htu := res
	dp := func(tok string, mut func(map[string]any)) []string {
		return []string{"authorization", "DPoP " + tok, "dpop", key.Proof("POST", htu, tok, testNow, mut)}
	}
	type tc struct {
		name string
		a    *Authorizer
		r    func() *Request
	}
	r := func(hs ...string) func() *Request { return func() *Request { return req("POST", "/mcp", hs...) } }
	rd := func(path, tok string, mut func(map[string]any)) func() *Request {
		return func() *Request { return req("POST", path, dp(tok, mut)...) }
	}
	cases := []tc{
		{"allowed_no_token", allowed, r()},
		{"allowed_bearer_invalid", allowed, r("authorization", "Bearer garbage")},
		{"allowed_bearer_good", allowed, r("authorization", "Bearer good")},
		{"allowed_dpop_good", allowed, rd("/mcp", "bound", nil)},
		{"allowed_dpop_no_proof", allowed, r("authorization", "DPoP bound")},
		{"allowed_dpop_two_proofs", allowed, func() *Request {
			return req("POST", "/mcp", "authorization", "DPoP bound", "dpop", key.Proof("POST", htu, "bound", testNow, nil)+","+key.Proof("POST", htu, "bound", testNow, nil))
		}},
		{"allowed_dpop_wrong_htm", allowed, rd("/mcp", "bound", func(c map[string]any) { c["htm"] = "GET" })},
		{"allowed_dpop_unbound_token", allowed, rd("/mcp", "good", nil)},
		{"allowed_dpop_wrong_key", allowed, func() *Request {
			return req("POST", "/mcp", "authorization", "DPoP bound", "dpop", other.Proof("POST", htu, "bound", testNow, nil))
		}},
		{"allowed_bound_token_as_bearer", allowed, r("authorization", "Bearer bound")},
		{"allowed_both_schemes", allowed, r("authorization", "Bearer good, DPoP bound")},
		{"allowed_dpop_insufficient_scope", allowed, rd("/mcp", "boundro", nil)},
		{"allowed_dpop_step_up", allowed, func() *Request {
			return req("POST", "/mcp/admin", "authorization", "DPoP bound", "dpop", key.Proof("POST", res+"/admin", "bound", testNow, nil))
		}},
		{"allowed_dpop_unavailable", allowed, rd("/mcp", "down", nil)},
		{"allowed_cert_bound_with_cert", allowed, func() *Request {
			rq := req("POST", "/mcp", "authorization", "Bearer certbound")
			rq.ClientCert = cert
			return rq
		}},
		{"allowed_cert_bound_without_cert", allowed, r("authorization", "Bearer certbound")},
		{"allowed_key_and_cert_bound", allowed, func() *Request {
			rq := req("POST", "/mcp", dp("both", nil)...)
			rq.ClientCert = cert
			return rq
		}},
		{"required_no_token", required, r()},
		{"required_bearer_good", required, r("authorization", "Bearer good")},
		{"required_dpop_good", required, rd("/mcp", "bound", nil)},
		{"required_dpop_bad_proof", required, rd("/mcp", "bound", func(c map[string]any) { c["ath"] = dpop.TokenHash("x") })},
		{"required_cert_bound_on_mtls_off", required, r("authorization", "Bearer certbound")},
		{"allowed_metadata", allowed, func() *Request { return req("GET", "/.well-known/oauth-protected-resource/mcp") }},
		{"required_metadata", required, func() *Request { return req("GET", "/.well-known/oauth-protected-resource/mcp") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.a.Check(context.Background(), c.r())
			got := render(d) + renderResponse(d)
			golden(t, got)
			if again := c.a.Check(context.Background(), c.r()); render(again)+renderResponse(again) != got {
				t.Errorf("a repeat answered differently:\n%s", render(again))
			}
			if w := headerOf(d, "www-authenticate"); w != "" && c.a.routes[0].DPoP != BindingRequired && !strings.HasPrefix(w, "Bearer ") {
				t.Errorf("Bearer is not the first challenge: %s", w)
			}
		})
	}
}

func renderResponse(d *Decision) string {
	var b strings.Builder
	for _, h := range d.ResponseHeaders {
		b.WriteString("response header: " + h.Name + ": " + h.Value + "\n")
	}
	return b.String()
}

// TestDPoPReplayAndNonce: a proof is good once; with nonces, the first proof gets
// use_dpop_nonce and a nonce that then works.
func TestDPoPReplayAndNonce(t *testing.T) {
	key := dpoptest.NewKey()
	a := dpopAuthorizer(t, key, "", BindingRequired, BindingOff, false)
	rq := req("POST", "/mcp", "authorization", "DPoP bound", "dpop", key.Proof("POST", res, "bound", testNow, nil))
	if d := a.Check(context.Background(), rq); !d.Allow {
		t.Fatalf("first use: %s", render(d))
	}
	if d := a.Check(context.Background(), rq); d.Allow || !strings.Contains(headerOf(d, "www-authenticate"), "invalid_dpop_proof") {
		t.Fatalf("replay: %s", render(d))
	}

	an := dpopAuthorizer(t, key, "", BindingRequired, BindingOff, true)
	d := an.Check(context.Background(), req("POST", "/mcp", "authorization", "DPoP bound", "dpop", key.Proof("POST", res, "bound", testNow, nil)))
	nonce := headerOf(d, "dpop-nonce")
	if d.Allow || d.Status != 401 || !strings.Contains(headerOf(d, "www-authenticate"), `error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("no nonce: %s", render(d))
	}
	d2 := an.Check(context.Background(), req("POST", "/mcp", "authorization", "DPoP bound", "dpop", key.Proof("POST", res, "bound", testNow, nil)))
	if headerOf(d2, "dpop-nonce") == nonce || headerOf(d2, "www-authenticate") != headerOf(d, "www-authenticate") {
		t.Error("the nonce repeats, or the challenge changed with it")
	}
	ok := an.Check(context.Background(), req("POST", "/mcp", "authorization", "DPoP bound", "dpop",
		key.Proof("POST", res, "bound", testNow, func(c map[string]any) { c["nonce"] = nonce })))
	if !ok.Allow {
		t.Fatalf("with the nonce: %s", render(ok))
	}
	if len(ok.ResponseHeaders) != 0 {
		t.Errorf("a fresh nonce was rotated at once: %v", ok.ResponseHeaders)
	}
}

// TestDPoPOffRefusesBoundTokens: where no binding is checked, a bound token is worth nothing.
func TestDPoPOffRefusesBoundTokens(t *testing.T) {
	key := dpoptest.NewKey()
	_, x5t := testCert(t, "c")
	bound := goodID()
	bound.Confirmation.JKT = key.JKT()
	cb := goodID()
	cb.Confirmation.X5TS256 = x5t
	a := testAuthorizer(t, func(o *Options) {
		o.Verifiers.Opaque = AnyOf(tableVerifier{"bound": {id: bound}, "certbound": {id: cb}}, o.Verifiers.Opaque)
	})
	for _, tok := range []string{"bound", "certbound"} {
		d := a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+tok))
		if d.Allow || d.Status != 401 || !strings.Contains(headerOf(d, "www-authenticate"), "invalid_token") {
			t.Errorf("%s as Bearer where DPoP and mTLS are off: %s", tok, render(d))
		}
	}
}

// TestCertThumbprintOneReading: text before or after the one certificate could be read
// another way by another parser (pem.Decode alone skips what precedes the armor): refused.
func TestCertThumbprintOneReading(t *testing.T) {
	cert, x5t := testCert(t, "c")
	if got, err := certThumbprint(cert); err != nil || got != x5t {
		t.Fatalf("the certificate: %q %v", got, err)
	}
	for name, c := range map[string]string{
		"text before": "junk%0A" + cert,
		"text after":  cert + "junk",
		"two":         cert + cert,
		"not encoded": "%zz",
		"empty":       "",
	} {
		if _, err := certThumbprint(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
