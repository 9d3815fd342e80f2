package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/authz/dpop/dpoptest"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

const htu = "http://localhost:8080/mcp"

func boundToken(t *testing.T, a *demoas.Server, iss string, cnf map[string]any) string {
	t.Helper()
	tok, err := a.Mint(map[string]any{"iss": iss, "sub": "alice", "aud": resource, "client_id": "c",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": "t-" + cnfString(cnf), "scope": "mcp:tools",
		"cnf": cnf}, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func cnfString(m map[string]any) string {
	b, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(b)[:12]
}

func dpopCheck(t *testing.T, s *Service, token, proof string, more ...string) *authv3.CheckResponse {
	t.Helper()
	h := map[string]string{"authorization": "DPoP " + token}
	if proof != "" {
		h["dpop"] = proof
	}
	for i := 0; i+1 < len(more); i += 2 {
		h[more[i]] = more[i+1]
	}
	resp, err := authv3.NewAuthorizationClient(dial(t, s.GRPCAddr())).Check(context.Background(), checkReq("/mcp", h))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func challengeOf(r *authv3.CheckResponse) string {
	return respHeader(r.GetDeniedResponse().GetHeaders(), "www-authenticate")
}

// handProof signs header and payload JSON as given with key (nil: no signature), for the
// proofs no JOSE library would make.
func handProof(hdr, payload string, key *ecdsa.PrivateKey, hs []byte) string {
	e := base64.RawURLEncoding.EncodeToString
	in := e([]byte(hdr)) + "." + e([]byte(payload))
	var sig []byte
	switch {
	case key != nil:
		h := sha256.Sum256([]byte(in))
		r, s, _ := ecdsa.Sign(rand.Reader, key, h[:])
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case hs != nil:
		m := hmac.New(sha256.New, hs)
		m.Write([]byte(in))
		sig = m.Sum(nil)
	}
	return in + "." + e(sig)
}

// TestDPoPAcrossReplicas: two replicas share a real redis-server; a proof used at one is
// refused at the other, and the attack corpus gets no allow at all.
func TestDPoPAcrossReplicas(t *testing.T) {
	rd := redistest.Start(t)
	a, srv := as(t)
	mod := func(c *config.Config) {
		c.Resources[0].DPoP = config.BindingRequired
	}
	r1 := replica(t, srv.URL, []string{rd.Addr()}, mod)
	r2 := replica(t, srv.URL, []string{rd.Addr()}, mod)
	key := dpoptest.NewKey()
	tok := boundToken(t, a, srv.URL, map[string]any{"jkt": key.JKT()})

	p := key.Proof("POST", htu, tok, time.Now(), nil)
	ok := dpopCheck(t, r1, tok, p)
	if !allowed(ok) {
		t.Fatalf("a good proof at replica 1: %v", ok)
	}
	okr := ok.GetOkResponse()
	if respHeader(okr.GetHeaders(), "x-auth-token-binding") != "dpop" {
		t.Errorf("binding header: %v", okr.GetHeaders())
	}
	removed := strings.Join(okr.GetHeadersToRemove(), ",")
	if !strings.Contains(removed, "authorization") || !strings.Contains(removed, "dpop") {
		t.Errorf("the token or the proof reaches upstream: remove %q", removed)
	}
	if got := ok.GetDynamicMetadata().GetFields()["token_binding"].GetStringValue(); got != "dpop" {
		t.Errorf("dynamic metadata token_binding %q", got)
	}
	if r := dpopCheck(t, r2, tok, p); allowed(r) || !strings.Contains(challengeOf(r), "invalid_dpop_proof") {
		t.Fatalf("the proof replayed at replica 2: %v", r)
	}

	other := dpoptest.NewKey()
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key.Priv})
	pub, _ := json.Marshal(jose.JSONWebKey{Key: key.Priv.Public()})
	payload := func() string {
		b, _ := json.Marshal(map[string]any{"jti": randID(), "htm": "POST", "htu": htu, "iat": time.Now().Unix(), "ath": athOf(tok)})
		return string(b)
	}
	otherTok := boundToken(t, a, srv.URL, map[string]any{"jkt": key.JKT(), "x": 1})
	now := time.Now()
	attacks := map[string]struct{ token, proof, scheme string }{
		"wrong htm":                {tok, key.Proof("GET", htu, tok, now, nil), "DPoP"},
		"wrong htu":                {tok, key.Proof("POST", "http://localhost:8080/other", tok, now, nil), "DPoP"},
		"htu another host":         {tok, key.Proof("POST", "http://evil.example:8080/mcp", tok, now, nil), "DPoP"},
		"wrong ath":                {tok, key.Proof("POST", htu, "another-token", now, nil), "DPoP"},
		"proof for another token":  {otherTok, key.Proof("POST", htu, tok, now, nil), "DPoP"},
		"wrong jkt":                {tok, other.Proof("POST", htu, tok, now, nil), "DPoP"},
		"replayed jti":             {tok, p, "DPoP"},
		"old iat":                  {tok, key.Proof("POST", htu, tok, now.Add(-10*time.Minute), nil), "DPoP"},
		"future iat":               {tok, key.Proof("POST", htu, tok, now.Add(10*time.Minute), nil), "DPoP"},
		"alg none":                 {tok, handProof(`{"typ":"dpop+jwt","alg":"none","jwk":`+string(pub)+`}`, payload(), nil, nil), "DPoP"},
		"HS256":                    {tok, handProof(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`, payload(), nil, []byte("secret")), "DPoP"},
		"private key in jwk":       {tok, handProof(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+string(priv)+`}`, payload(), key.Priv, nil), "DPoP"},
		"no ath":                   {tok, key.Proof("POST", htu, "", now, nil), "DPoP"},
		"no proof":                 {tok, "", "DPoP"},
		"bound token as Bearer":    {tok, "", "Bearer"},
		"unbound token with proof": {"", "", "DPoP"},
	}
	unbound, err := a.Mint(map[string]any{"iss": srv.URL, "sub": "alice", "aud": resource, "client_id": "c",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": "u", "scope": "mcp:tools"}, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allows := 0
	for name, at := range attacks {
		token, proof := at.token, at.proof
		if name == "unbound token with proof" {
			token, proof = unbound, key.Proof("POST", htu, unbound, now, nil)
		}
		h := map[string]string{"authorization": at.scheme + " " + token}
		if proof != "" {
			h["dpop"] = proof
		}
		for _, s := range []*Service{r1, r2} {
			r, err := authv3.NewAuthorizationClient(dial(t, s.GRPCAddr())).Check(context.Background(), checkReq("/mcp", h))
			if err != nil {
				t.Fatal(err)
			}
			if allowed(r) {
				allows++
				t.Errorf("%s: allowed", name)
			} else if st := r.GetDeniedResponse().GetStatus().GetCode(); st != 401 {
				t.Errorf("%s: status %d, want 401", name, st)
			}
		}
	}
	t.Logf("attack corpus: %d cases × 2 replicas, %d allowed", len(attacks), allows)
}

func randID() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func athOf(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestDPoPReplayStoreDown: with Redis down, on_replay_store_unavailable decides.
func TestDPoPReplayStoreDown(t *testing.T) {
	rd := redistest.Start(t)
	a, srv := as(t)
	deny := replica(t, srv.URL, []string{rd.Addr()}, func(c *config.Config) { c.Resources[0].DPoP = config.BindingRequired })
	var logs syncBuffer
	window := replicaLog(t, srv.URL, []string{rd.Addr()}, func(c *config.Config) {
		c.Resources[0].DPoP = config.BindingRequired
		c.DPoP.OnReplayStoreUnavailable = "iat_window"
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	key := dpoptest.NewKey()
	tok := boundToken(t, a, srv.URL, map[string]any{"jkt": key.JKT()})
	// Warm both replicas' token caches, so only the replay store is missing below.
	for _, s := range []*Service{deny, window} {
		if r := dpopCheck(t, s, tok, key.Proof("POST", htu, tok, time.Now(), nil)); !allowed(r) {
			t.Fatalf("before the outage: %v", r)
		}
	}
	rd.Kill()
	if r := dpopCheck(t, deny, tok, key.Proof("POST", htu, tok, time.Now(), nil)); allowed(r) {
		t.Error("deny mode allowed a proof it could not record")
	}
	p := key.Proof("POST", htu, tok, time.Now(), nil)
	if r := dpopCheck(t, window, tok, p); !allowed(r) {
		t.Errorf("iat_window mode refused a fresh proof: %v", r)
	}
	if r := dpopCheck(t, window, tok, p); allowed(r) {
		t.Error("iat_window mode forgot the proof it just accepted")
	}
	for range 5 {
		dpopCheck(t, window, tok, key.Proof("POST", htu, tok, time.Now(), nil))
	}
	if n := strings.Count(logs.String(), "DPoP replay store unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token is in the log")
	}
}

// selfSigned is a client certificate as Envoy forwards it (URL-encoded PEM) and its
// x5t#S256.
func selfSigned(t *testing.T) (string, string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateBound: RFC 8705 over ext_authz (include_peer_certificate) and over
// forward-auth (x-forwarded-client-cert from a trusted proxy).
func TestCertificateBound(t *testing.T) {
	a, srv := as(t)
	cert, x5t := selfSigned(t)
	otherCert, _ := selfSigned(t)
	s := replica(t, srv.URL, nil, func(c *config.Config) {
		c.Resources[0].MTLSBound = config.BindingAllowed
		c.ForwardAuth.ClientCertificateHeader = "x-forwarded-client-cert"
	})
	untrusting := replica(t, srv.URL, nil, func(c *config.Config) {
		c.Resources[0].MTLSBound = config.BindingAllowed
		c.ForwardAuth.ClientCertificateHeader = "x-forwarded-client-cert"
		c.ForwardAuth.TrustedProxies = []string{"10.0.0.0/8"}
	})
	tok := boundToken(t, a, srv.URL, map[string]any{"x5t#S256": x5t})
	grpcCheck := func(cert string) *authv3.CheckResponse {
		req := checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok})
		if cert != "" {
			req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: cert}
		}
		r, err := authv3.NewAuthorizationClient(dial(t, s.GRPCAddr())).Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := grpcCheck(cert); !allowed(r) || respHeader(r.GetOkResponse().GetHeaders(), "x-auth-token-binding") != "mtls" {
		t.Fatalf("the bound certificate: %v", r)
	}
	for name, c := range map[string]string{"another certificate": otherCert, "no certificate": "", "garbage": "%%%", "two certificates": cert + cert} {
		if r := grpcCheck(c); allowed(r) || !strings.Contains(challengeOf(r), "invalid_token") {
			t.Errorf("%s: %v", name, r)
		}
	}
	fa := func(s *Service, xfcc string) int {
		req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr()+"/forward-auth/mcp", nil)
		req.Header.Set("X-Forwarded-Host", "localhost:8080")
		req.Header.Set("X-Forwarded-Uri", "/mcp")
		req.Header.Set("X-Forwarded-Method", "POST")
		req.Header.Set("Authorization", "Bearer "+tok)
		if xfcc != "" {
			req.Header.Set("X-Forwarded-Client-Cert", xfcc)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	xfcc := `By=spiffe://mcp;Hash=00;Cert="` + cert + `";Subject="CN=client"`
	if got := fa(s, xfcc); got != 200 {
		t.Errorf("forward-auth with the XFCC of a trusted proxy: %d", got)
	}
	if got := fa(untrusting, xfcc); got != 401 {
		t.Errorf("forward-auth with the XFCC of an untrusted peer: %d, want 401", got)
	}
	if got := fa(s, xfcc+`,By=x;Cert="`+otherCert+`"`); got != 401 {
		t.Errorf("forward-auth with two XFCC elements: %d, want 401", got)
	}
}
