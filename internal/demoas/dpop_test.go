package demoas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// proofSpec shapes a DPoP proof; the zero value plus a key, method and URL is a valid one.
type proofSpec struct {
	key       crypto.Signer
	alg       jose.SignatureAlgorithm
	typ       string         // default dpop+jwt; "-" omits it
	jwk       any            // header jwk instead of the signing key's public key
	claims    map[string]any // replaces the default claims when set
	rawClaims string         // payload bytes verbatim
}

func makeProof(t *testing.T, p proofSpec, htm, htu string, iat time.Time) string {
	t.Helper()
	if p.alg == "" {
		p.alg = jose.ES256
	}
	so := &jose.SignerOptions{}
	switch p.typ {
	case "":
		so = so.WithType("dpop+jwt")
	case "-":
	default:
		so = so.WithType(jose.ContentType(p.typ))
	}
	if p.jwk != nil {
		so = so.WithHeader("jwk", p.jwk)
	} else {
		so.EmbedJWK = true
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: p.alg, Key: p.key}, so)
	if err != nil {
		t.Fatal(err)
	}
	claims := p.claims
	if claims == nil {
		claims = map[string]any{"jti": randomString(12), "htm": htm, "htu": htu, "iat": iat.Unix()}
	}
	payload, _ := json.Marshal(claims)
	if p.rawClaims != "" {
		payload = []byte(p.rawClaims)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func startBinding(t *testing.T, now func() time.Time, tlsServer bool) (*Server, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	if tlsServer {
		srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	as, err := New(Config{
		Issuer: srv.URL,
		Clients: []Client{
			{ID: "demo", Secret: "demo-secret", Scopes: []string{"mcp:tools"}},
			{ID: "demo-dpop", Secret: "demo-secret", Scopes: []string{"mcp:tools"}, DPoP: true},
			{ID: "demo-dpop-opaque", Secret: "demo-secret", Scopes: []string{"mcp:tools"}, DPoP: true, Opaque: true},
			{ID: "demo-mtls", Secret: "demo-secret", Scopes: []string{"mcp:tools"}, MTLS: true},
			{ID: "demo-mtls-opaque", Secret: "demo-secret", Scopes: []string{"mcp:tools"}, MTLS: true, Opaque: true},
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

// tokenRequest posts a client_credentials request with the given DPoP headers.
func tokenRequest(t *testing.T, hc *http.Client, tokenURL, client string, proofs ...string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:tools"}}
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, "demo-secret")
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func unverifiedClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	var c map[string]any
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
	return c
}

func TestDPoPTokenRequest(t *testing.T) {
	as, srv := startBinding(t, nil, false)
	tokenURL := srv.URL + "/token"
	key := ecKey(t)
	jkt, err := JKT(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7638 §3.1: the thumbprint hashes exactly {"crv","kty","x","y"} in that order.
	pub := key.PublicKey
	x, y := pub.X.FillBytes(make([]byte, 32)), pub.Y.FillBytes(make([]byte, 32))
	canon := `{"crv":"P-256","kty":"EC","x":"` + base64.RawURLEncoding.EncodeToString(x) + `","y":"` + base64.RawURLEncoding.EncodeToString(y) + `"}`
	if want := CertThumbprint([]byte(canon)); jkt != want {
		t.Fatalf("JKT %s, RFC 7638 gives %s", jkt, want)
	}

	proof := makeProof(t, proofSpec{key: key}, "POST", tokenURL, time.Now())
	status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop", proof)
	if status != 200 || out["token_type"] != "DPoP" {
		t.Fatalf("token request with a proof: %d %v", status, out)
	}
	claims := unverifiedClaims(t, out["access_token"].(string))
	if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != jkt || len(cnf) != 1 {
		t.Errorf("cnf = %v, want jkt %s", claims["cnf"], jkt)
	}

	// The same proof again: RFC 9449 §11.1 replay.
	if status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop", proof); status != 400 || out["error"] != "invalid_dpop_proof" {
		t.Errorf("replayed proof: %d %v", status, out)
	}
	// Without a proof, a DPoP client gets nothing.
	if status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop"); status != 400 || out["error"] != "invalid_dpop_proof" {
		t.Errorf("no proof: %d %v", status, out)
	}
	// Any client's proof binds its token (RFC 9449 §5); without one it stays Bearer.
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	status, out = tokenRequest(t, http.DefaultClient, tokenURL, "demo", makeProof(t, proofSpec{key: ed, alg: jose.EdDSA}, "POST", tokenURL, time.Now()))
	edJKT, _ := JKT(ed.Public())
	if cnf, _ := unverifiedClaims(t, out["access_token"].(string))["cnf"].(map[string]any); status != 200 || out["token_type"] != "DPoP" || cnf["jkt"] != edJKT {
		t.Errorf("demo client with an EdDSA proof: %d %v cnf %v", status, out, cnf)
	}
	status, out = tokenRequest(t, http.DefaultClient, tokenURL, "demo")
	if _, has := unverifiedClaims(t, out["access_token"].(string))["cnf"]; status != 200 || out["token_type"] != "Bearer" || has {
		t.Errorf("demo client without a proof: %d %v", status, out)
	}

	// Opaque DPoP tokens introspect as DPoP with cnf.jkt (RFC 9449 §6.2).
	status, out = tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop-opaque", makeProof(t, proofSpec{key: key}, "POST", tokenURL, time.Now()))
	if status != 200 || out["token_type"] != "DPoP" {
		t.Fatalf("opaque: %d %v", status, out)
	}
	_, got := post(t, srv.URL+"/introspect", url.Values{"token": {out["access_token"].(string)}}, "rs", "rs-secret")
	if cnf, _ := got["cnf"].(map[string]any); got["active"] != true || got["token_type"] != "DPoP" || cnf["jkt"] != jkt {
		t.Errorf("introspection of an opaque DPoP token: %v", got)
	}
	if c := as.Counts(); c.Token != 6 {
		t.Errorf("token requests counted: %d", c.Token)
	}
}

func TestDPoPProofChecks(t *testing.T) {
	now := time.Now()
	_, srv := startBinding(t, func() time.Time { return now }, false)
	tokenURL := srv.URL + "/token"
	key, other := ecKey(t), ecKey(t)
	hmacSigner := func() string {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
			(&jose.SignerOptions{}).WithType("dpop+jwt"))
		jws, _ := sig.Sign([]byte(`{"jti":"h","htm":"POST","htu":"` + tokenURL + `","iat":` + jsonInt(now) + `}`))
		s, _ := jws.CompactSerialize()
		return s
	}
	noneAlg := func() string {
		pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: key.Public()})
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":` + string(pubJWK) + `}`))
		c := base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"n","htm":"POST","htu":"` + tokenURL + `","iat":` + jsonInt(now) + `}`))
		return h + "." + c + "."
	}
	base := func(kv ...any) map[string]any {
		m := map[string]any{"jti": randomString(12), "htm": "POST", "htu": tokenURL, "iat": now.Unix()}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	u, _ := url.Parse(tokenURL)
	cases := []struct {
		name  string
		proof string
	}{
		{"htm GET", makeProof(t, proofSpec{key: key}, "GET", tokenURL, now)},
		{"htu of another endpoint", makeProof(t, proofSpec{key: key}, "POST", srv.URL+"/introspect", now)},
		{"htu of another host", makeProof(t, proofSpec{key: key}, "POST", "http://evil.example"+u.Path, now)},
		{"iat 6 minutes old", makeProof(t, proofSpec{key: key}, "POST", tokenURL, now.Add(-6*time.Minute))},
		{"iat 6 minutes ahead", makeProof(t, proofSpec{key: key}, "POST", tokenURL, now.Add(6*time.Minute))},
		{"typ JWT", makeProof(t, proofSpec{key: key, typ: "JWT"}, "POST", tokenURL, now)},
		{"no typ", makeProof(t, proofSpec{key: key, typ: "-"}, "POST", tokenURL, now)},
		{"HS256", hmacSigner()},
		{"alg none", noneAlg()},
		{"private key in jwk", makeProof(t, proofSpec{key: key, jwk: jose.JSONWebKey{Key: key}}, "POST", tokenURL, now)},
		{"jwk of another key", makeProof(t, proofSpec{key: key, jwk: jose.JSONWebKey{Key: other.Public()}}, "POST", tokenURL, now)},
		{"no jti", makeProof(t, proofSpec{key: key, claims: base("jti", nil)}, "", "", now)},
		{"no iat", makeProof(t, proofSpec{key: key, claims: base("iat", nil)}, "", "", now)},
		{"iat a string", makeProof(t, proofSpec{key: key, claims: base("iat", "1700000000")}, "", "", now)},
		{"iat fractional", makeProof(t, proofSpec{key: key, claims: base("iat", 1.5)}, "", "", now)},
		{"nonce nobody issued", makeProof(t, proofSpec{key: key, claims: base("nonce", "n")}, "", "", now)},
		{"htm lower case", makeProof(t, proofSpec{key: key, claims: base("htm", "post")}, "", "", now)},
		{"duplicate htu", makeProof(t, proofSpec{key: key, rawClaims: `{"jti":"d","htm":"POST","htu":"http://evil/token","htu":"` + tokenURL + `","iat":` + jsonInt(now) + `}`}, "", "", now)},
		{"case-variant htm", makeProof(t, proofSpec{key: key, rawClaims: `{"jti":"c","htm":"POST","HTM":"GET","htu":"` + tokenURL + `","iat":` + jsonInt(now) + `}`}, "", "", now)},
		{"claims not an object", makeProof(t, proofSpec{key: key, rawClaims: `["jti"]`}, "", "", now)},
		{"not a JWS", "not.a.jws"},
		{"too long", strings.Repeat("a", 9000)},
	}
	for _, tc := range cases {
		status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop", tc.proof)
		if status != 400 || out["error"] != "invalid_dpop_proof" {
			t.Errorf("%s: %d %v", tc.name, status, out)
		}
	}
	// Two proofs, each valid alone, from a client that needs none: still refused, not a
	// Bearer token.
	p1 := makeProof(t, proofSpec{key: key}, "POST", tokenURL, now)
	p2 := makeProof(t, proofSpec{key: key}, "POST", tokenURL, now)
	if status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo", p1, p2); status != 400 || out["error"] != "invalid_dpop_proof" {
		t.Errorf("two DPoP headers: %d %v", status, out)
	}
	// Controls: the edges of what is accepted.
	for name, p := range map[string]string{
		"iat 4 minutes old":     makeProof(t, proofSpec{key: key}, "POST", tokenURL, now.Add(-4*time.Minute)),
		"htu with a query":      makeProof(t, proofSpec{key: key}, "POST", tokenURL+"?x=1", now),
		"htu scheme upper case": makeProof(t, proofSpec{key: key}, "POST", strings.Replace(tokenURL, "http://", "HTTP://", 1), now),
		"PS256":                 makeProof(t, proofSpec{key: mustRSA(t), alg: jose.PS256}, "POST", tokenURL, now),
	} {
		if status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop", p); status != 200 {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
}

func TestDPoPReplayMemoryIsBounded(t *testing.T) {
	now := time.Now()
	as, srv := startBinding(t, func() time.Time { return now }, false)
	tokenURL := srv.URL + "/token"
	key := ecKey(t)
	as.dpop.jtis.mu.Lock()
	as.dpop.jtis.seen = map[string]time.Time{}
	for i := 0; i < maxProofJTIs; i++ {
		as.dpop.jtis.seen[randomString(8)] = now.Add(time.Minute)
	}
	as.dpop.jtis.mu.Unlock()
	if status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop", makeProof(t, proofSpec{key: key}, "POST", tokenURL, now)); status != 400 {
		t.Errorf("full replay memory accepted a proof: %d %v", status, out)
	}
	now = now.Add(2 * time.Minute) // every remembered jti has expired
	if status, out := tokenRequest(t, http.DefaultClient, tokenURL, "demo-dpop", makeProof(t, proofSpec{key: key}, "POST", tokenURL, now)); status != 200 {
		t.Errorf("after expiry: %d %v", status, out)
	}
	as.dpop.jtis.mu.Lock()
	n := len(as.dpop.jtis.seen)
	as.dpop.jtis.mu.Unlock()
	if n != 1 {
		t.Errorf("replay memory holds %d entries after pruning, want 1", n)
	}
}

func TestCertificateBoundTokens(t *testing.T) {
	_, srv := startBinding(t, nil, true)
	tokenURL := srv.URL + "/token"
	cert := selfSigned(t, "client-a")
	withCert := srv.Client()
	tr := withCert.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	withCert = &http.Client{Transport: tr}

	status, out := tokenRequest(t, withCert, tokenURL, "demo-mtls")
	if status != 200 || out["token_type"] != "Bearer" {
		t.Fatalf("mtls client: %d %v", status, out)
	}
	want := CertThumbprint(cert.Certificate[0])
	if cnf, _ := unverifiedClaims(t, out["access_token"].(string))["cnf"].(map[string]any); cnf["x5t#S256"] != want || len(cnf) != 1 {
		t.Errorf("cnf = %v, want x5t#S256 %s", cnf, want)
	}
	if status, out := tokenRequest(t, srv.Client(), tokenURL, "demo-mtls"); status != 400 || out["error"] != "invalid_request" {
		t.Errorf("mtls client without a certificate: %d %v", status, out)
	}
	// A certificate does not bind the tokens of a client not registered for it.
	_, out = tokenRequest(t, withCert, tokenURL, "demo")
	if _, has := unverifiedClaims(t, out["access_token"].(string))["cnf"]; has {
		t.Errorf("demo client's token is bound: %v", out)
	}
	// DPoP and a certificate together: both in cnf.
	key := ecKey(t)
	status, out = tokenRequest(t, withCert, tokenURL, "demo-mtls", makeProof(t, proofSpec{key: key}, "POST", tokenURL, time.Now()))
	jkt, _ := JKT(key.Public())
	if cnf, _ := unverifiedClaims(t, out["access_token"].(string))["cnf"].(map[string]any); status != 200 || out["token_type"] != "DPoP" || cnf["jkt"] != jkt || cnf["x5t#S256"] != want {
		t.Errorf("both bindings: %d %v cnf %v", status, out, cnf)
	}
	// Opaque: introspection says x5t#S256, token_type Bearer.
	_, out = tokenRequest(t, withCert, tokenURL, "demo-mtls-opaque")
	req, _ := http.NewRequest("POST", srv.URL+"/introspect", strings.NewReader(url.Values{"token": {out["access_token"].(string)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs", "rs-secret")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if cnf, _ := got["cnf"].(map[string]any); got["active"] != true || got["token_type"] != "Bearer" || cnf["x5t#S256"] != want {
		t.Errorf("introspection of an opaque certificate-bound token: %v", got)
	}
}

func TestMintBound(t *testing.T) {
	as, _ := start(t, nil)
	tok, err := as.Mint(map[string]any{"sub": "x"}, MintOptions{Bind: Binding{JKT: "abc", X5T: "def"}})
	if err != nil {
		t.Fatal(err)
	}
	if cnf, _ := unverifiedClaims(t, tok)["cnf"].(map[string]any); cnf["jkt"] != "abc" || cnf["x5t#S256"] != "def" {
		t.Errorf("cnf %v", cnf)
	}
	if _, err := as.Mint(map[string]any{"cnf": map[string]any{"jkt": "x"}}, MintOptions{Bind: Binding{JKT: "abc"}}); err == nil {
		t.Error("Bind replaced the claims' own cnf")
	}
	claims := map[string]any{"sub": "x"}
	as.Mint(claims, MintOptions{Bind: Binding{JKT: "abc"}})
	if _, has := claims["cnf"]; has {
		t.Error("Mint changed the caller's claims")
	}
}

func TestBindingMetadata(t *testing.T) {
	_, srv := start(t, nil)
	resp, err := http.Get(srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	algs, _ := m["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 || algs[0] != "ES256" || m["tls_client_certificate_bound_access_tokens"] != true {
		t.Errorf("metadata: %v", m)
	}
	for _, a := range algs {
		if a == "none" || strings.HasPrefix(a.(string), "HS") {
			t.Errorf("advertises %v", a)
		}
	}
}

func jsonInt(t time.Time) string { return big.NewInt(t.Unix()).String() }

func mustRSA(t *testing.T) crypto.Signer {
	t.Helper()
	as, _ := start(t, nil)
	return as.keys[as.current].key
}

func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	k := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func TestSameURI(t *testing.T) {
	for _, tc := range []struct {
		htu, target string
		same        bool
	}{
		{"https://as.example/token", "https://as.example/token", true},
		{"https://AS.example:443/token", "https://as.example/token", true},
		{"http://as.example:80/token#f", "http://as.example/token", true},
		{"https://as.example/token?q", "https://as.example/token", true},
		{"https://as.example:8443/token", "https://as.example/token", false},
		{"http://as.example/token", "https://as.example/token", false},
		{"https://as.example/Token", "https://as.example/token", false},
		{"https://as.example/token/", "https://as.example/token", false},
		{"https://user@as.example/token", "https://as.example/token", false},
		{"/token", "https://as.example/token", false},
		{"", "https://as.example/token", false},
	} {
		if got := sameURI(tc.htu, tc.target); got != tc.same {
			t.Errorf("sameURI(%q, %q) = %v", tc.htu, tc.target, got)
		}
	}
}

func TestDPoPNonce(t *testing.T) {
	now := time.Now()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	as, err := New(Config{
		Issuer: srv.URL, Clients: []Client{{ID: "demo-dpop", Secret: "demo-secret", Scopes: []string{"mcp:tools"}, DPoP: true}},
		Resources: []string{"http://r/mcp"}, DefaultResource: "http://r/mcp", DPoPNonce: true,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as.Handler()
	tokenURL := srv.URL + "/token"
	key := ecKey(t)
	withNonce := func(n any, iat time.Time) string {
		return makeProof(t, proofSpec{key: key, claims: map[string]any{"jti": randomString(8), "htm": "POST", "htu": tokenURL, "iat": iat.Unix(), "nonce": n}}, "", "", now)
	}
	ask := func(proof string) (int, map[string]any, string) {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo-dpop", "demo-secret")
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out, resp.Header.Get("DPoP-Nonce")
	}
	status, out, nonce := ask(makeProof(t, proofSpec{key: key}, "POST", tokenURL, now))
	if status != 400 || out["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("no nonce: %d %v nonce %q", status, out, nonce)
	}
	if status, out, _ := ask(withNonce(nonce, now)); status != 200 || out["token_type"] != "DPoP" {
		t.Errorf("with the nonce: %d %v", status, out)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(nonce)
	raw[len(raw)-1] ^= 1
	for name, n := range map[string]any{
		"forged MAC":    base64.RawURLEncoding.EncodeToString(raw),
		"not base64":    "!!",
		"a number":      42,
		"another nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		if status, out, fresh := ask(withNonce(n, now)); status != 400 || out["error"] != "use_dpop_nonce" || fresh == "" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	now = now.Add(6 * time.Minute) // the nonce is stale; the proof itself is new
	if status, out, _ := ask(withNonce(nonce, now)); status != 400 || out["error"] != "use_dpop_nonce" {
		t.Errorf("stale nonce: %d %v", status, out)
	}
}
