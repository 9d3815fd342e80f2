package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
	"github.com/mcp-authz/mcp-authz/internal/demoas"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemFile(t *testing.T, typ string, der []byte) string {
	return writeFile(t, "k.pem", pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestDPoPKeyCommand(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		file := filepath.Join(t.TempDir(), "dpop.jwk")
		out, errb, err := runCmd("dpop-key", "-alg", alg, file)
		if err != nil {
			t.Fatalf("%s: %v\n%s", alg, err, errb)
		}
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: key file %v, mode %v", alg, err, fi.Mode())
		}
		k, err := loadDPoPKey(file)
		if err != nil {
			t.Fatalf("%s: the written key does not load: %v", alg, err)
		}
		if string(k.alg) != alg || strings.TrimSpace(out) != k.thumbprint() || len(k.thumbprint()) != 43 {
			t.Errorf("%s: loaded %s, printed %q, thumbprint %q", alg, k.alg, out, k.thumbprint())
		}
		before, _ := os.ReadFile(file)
		if _, _, err := runCmd("dpop-key", file); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("%s: overwrote an existing key file: %v", alg, err)
		}
		if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
			t.Errorf("%s: the existing key file changed", alg)
		}
	}
	for _, args := range [][]string{{"dpop-key"}, {"dpop-key", "-alg", "HS256", filepath.Join(t.TempDir(), "x")}, {"dpop-key", "a", "b"}} {
		if _, _, err := runCmd(args...); err == nil || !strings.Contains(err.Error(), "dpop-key") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestLoadDPoPKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	pkcs8 := func(k any) []byte { b, _ := x509.MarshalPKCS8PrivateKey(k); return b }
	sec1, _ := x509.MarshalECPrivateKey(ec)
	jwk := func(k any, alg string) []byte {
		b, _ := (jose.JSONWebKey{Key: k, Algorithm: alg}).MarshalJSON()
		return b
	}
	cert := selfSignedCert(t, "c")

	good := map[string]struct {
		file string
		alg  jose.SignatureAlgorithm
	}{
		"EC JWK":              {writeFile(t, "k.jwk", jwk(ec, "")), jose.ES256},
		"EC JWK with alg":     {writeFile(t, "k.jwk", jwk(ec, "ES256")), jose.ES256},
		"P-384 JWK":           {writeFile(t, "k.jwk", jwk(ec384, "")), jose.ES384},
		"Ed25519 JWK":         {writeFile(t, "k.jwk", jwk(ed, "")), jose.EdDSA},
		"RSA JWK, RS256":      {writeFile(t, "k.jwk", jwk(rsaKey, "RS256")), jose.RS256},
		"PKCS #8 EC":          {pemFile(t, "PRIVATE KEY", pkcs8(ec)), jose.ES256},
		"PKCS #8 Ed25519":     {pemFile(t, "PRIVATE KEY", pkcs8(ed)), jose.EdDSA},
		"SEC 1 EC":            {pemFile(t, "EC PRIVATE KEY", sec1), jose.ES256},
		"PKCS #1 RSA (PS256)": {pemFile(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), jose.PS256},
	}
	for name, g := range good {
		k, err := loadDPoPKey(g.file)
		if err != nil || k.alg != g.alg {
			t.Errorf("%s: %v, alg %v", name, err, k)
		}
	}

	bad := map[string]struct {
		file, says string
	}{
		"missing":         {filepath.Join(t.TempDir(), "nope.jwk"), "no such file"},
		"empty":           {writeFile(t, "e", nil), "neither a JWK"},
		"garbage":         {writeFile(t, "g", []byte("hello")), "neither a JWK"},
		"broken JSON":     {writeFile(t, "j", []byte(`{"kty":"EC",`)), "not a usable JWK"},
		"public JWK":      {writeFile(t, "p", jwk(ec.Public(), "")), "public key"},
		"symmetric JWK":   {writeFile(t, "s", jwk([]byte("0123456789abcdef0123456789abcdef"), "")), "symmetric"},
		"alg mismatch":    {writeFile(t, "m", jwk(ec, "ES384")), `alg "ES384" does not fit`},
		"HS256 alg on EC": {writeFile(t, "h", jwk(ec, "HS256")), `alg "HS256"`},
		"certificate PEM": {pemFile(t, "CERTIFICATE", cert.Certificate[0]), `"CERTIFICATE" block, not a private key`},
		"corrupt PEM key": {pemFile(t, "PRIVATE KEY", []byte("junk")), "does not parse"},
		"PEM header only": {writeFile(t, "h", []byte("-----BEGIN PRIVATE KEY-----\nzz")), "without a valid PEM block"},
		"RSA 1024":        {pemFile(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "1024 bits"},
		"huge":            {writeFile(t, "big", bytes.Repeat([]byte("{"), 70<<10)), "not a key file"},
		"a directory":     {t.TempDir(), "is a directory"},
	}
	for name, b := range bad {
		_, err := loadDPoPKey(b.file)
		if err == nil || !strings.Contains(err.Error(), b.says) || !strings.Contains(err.Error(), b.file) {
			t.Errorf("%s: %v, want an error naming the file and saying %q", name, err, b.says)
		}
	}
	// Through the commands: a clear error and no request sent.
	for _, args := range [][]string{
		{"token", "-dpop-key", bad["public JWK"].file, "-token-url", "http://127.0.0.1:1/token"},
		{"check", "-token", "t", "-dpop-key", bad["garbage"].file, "-addr", "127.0.0.1:1"},
	} {
		_, _, err := runCmd(args...)
		if err == nil || !strings.Contains(err.Error(), "-dpop-key") || strings.Contains(err.Error(), "refused") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, _, err := runCmd("check", "-dpop-key", good["EC JWK"].file, "-addr", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "needs -token") {
		t.Errorf("-dpop-key without -token: %v", err)
	}
}

// The demo's demo-dpop client gets a token bound to the key `token -dpop-key` signs with;
// without a proof it gets an OAuth error, not a token.
func TestTokenDPoPFromTheDemo(t *testing.T) {
	_, _, _, as := startDemo(t)
	keyFile := filepath.Join(t.TempDir(), "dpop.jwk")
	jkt, _, err := runCmd("dpop-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	out, errb, err := runCmd("token", "-token-url", "http://"+as+"/token", "-client", "demo-dpop", "-dpop-key", keyFile)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb)
	}
	tok := strings.TrimSpace(out)
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims)
	if claims.Cnf["jkt"] != strings.TrimSpace(jkt) {
		t.Errorf("cnf %v, want jkt %s", claims.Cnf, jkt)
	}
	if _, _, err := runCmd("token", "-token-url", "http://"+as+"/token", "-client", "demo-dpop"); err == nil || !strings.Contains(err.Error(), "invalid_dpop_proof") {
		t.Errorf("demo-dpop without a key: %v", err)
	}
}

// An authorization server that asks for a nonce (RFC 9449 §8) gets a second proof with it.
func TestTokenDPoPNonce(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	as, err := demoas.New(demoas.Config{
		Issuer: srv.URL, Clients: []demoas.Client{{ID: "c", Secret: "s", DPoP: true}},
		Resources: []string{"http://r/mcp"}, DefaultResource: "http://r/mcp", DPoPNonce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as.Handler()
	keyFile := filepath.Join(t.TempDir(), "dpop.jwk")
	runCmd("dpop-key", keyFile)
	out, errb, err := runCmd("token", "-token-url", srv.URL+"/token", "-client", "c", "-secret", "s", "-scope", "", "-resource", "http://r/mcp", "-dpop-key", keyFile)
	if err != nil || strings.Count(out, ".") != 2 {
		t.Fatalf("%v %q\n%s", err, out, errb)
	}
	if c := as.Counts(); c.Token != 2 {
		t.Errorf("%d token requests, want 2 (one refused for its missing nonce)", c.Token)
	}
}

// recorder is an ext_authz server that keeps each CheckRequest and answers from a script:
// it stands in for mcp-authz where a test checks what `check` sends, not what it is told.
type recorder struct {
	authv3.UnimplementedAuthorizationServer
	mu      sync.Mutex
	reqs    []*authv3.CheckRequest
	answers []*authv3.CheckResponse // in turn; then allow
}

func (r *recorder) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	if len(r.answers) > 0 {
		a := r.answers[0]
		r.answers = r.answers[1:]
		return a, nil
	}
	return &authv3.CheckResponse{Status: &status.Status{}}, nil
}

func (r *recorder) requests() []*authv3.CheckRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*authv3.CheckRequest(nil), r.reqs...)
}

func startRecorder(t *testing.T, answers ...*authv3.CheckResponse) (*recorder, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{answers: answers}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, rec)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return rec, ln.Addr().String()
}

func deny401(headers map[string]string) *authv3.CheckResponse {
	d := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}}
	for k, v := range headers {
		d.Headers = append(d.Headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}})
	}
	return &authv3.CheckResponse{Status: &status.Status{Code: 16}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d}}
}

// verifyProof checks a proof the way a resource server does and returns its claims.
func verifyProof(t *testing.T, proof string, k *dpopKey) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("proof: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("proof header: typ %v, jwk %v", h.ExtraHeaders["typ"], h.JSONWebKey)
	}
	if tp, _ := demoas.JKT(h.JSONWebKey.Key); tp != k.thumbprint() {
		t.Errorf("proof jwk thumbprint %s, key file's %s", tp, k.thumbprint())
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("proof signature: %v", err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	return c
}

func TestCheckSendsDPoPProof(t *testing.T) {
	rec, addr := startRecorder(t)
	keyFile := filepath.Join(t.TempDir(), "dpop.jwk")
	if _, _, err := runCmd("dpop-key", keyFile); err != nil {
		t.Fatal(err)
	}
	k, _ := loadDPoPKey(keyFile)
	const token = "tok.en.value"
	sum := sha256.Sum256([]byte(token))
	ath := base64.RawURLEncoding.EncodeToString(sum[:])

	cfg := writeFile(t, "c.yaml", []byte("listen:\n  grpc: 127.0.0.1:1\n  http: \"\"\nissuers:\n  - issuer: https://127.0.0.1:1\nresources:\n  - resource: https://mcp.example.com/tools/mcp\n"))
	runs := []struct {
		args            []string
		wantHTM, wantHT string
	}{
		{[]string{"-method", "POST", "-host", "localhost:8080", "-path", "/mcp?session=1#x"}, "POST", "http://localhost:8080/mcp"},
		{[]string{"-method", "GET", "-host", "localhost:8080", "-path", "/mcp"}, "GET", "http://localhost:8080/mcp"},
		// With a configuration, htu comes from the resource's URL, not from -host.
		{[]string{"--config", cfg, "-host", "mcp.example.com", "-path", "/tools/mcp"}, "POST", "https://mcp.example.com/tools/mcp"},
		{[]string{"-htu", "https://elsewhere.example/mcp?q=1"}, "POST", "https://elsewhere.example/mcp"},
	}
	jtis := map[string]bool{}
	for i, r := range runs {
		args := append([]string{"check", "-addr", addr, "-token", token, "-dpop-key", keyFile}, r.args...)
		if _, errb, err := runCmd(args...); err != nil {
			t.Fatalf("%v: %v\n%s", r.args, err, errb)
		}
		req := rec.requests()[i]
		h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
		if h["authorization"] != "DPoP "+token {
			t.Errorf("%v: authorization %q", r.args, h["authorization"])
		}
		c := verifyProof(t, h["dpop"], k)
		iat, _ := c["iat"].(float64)
		jti, _ := c["jti"].(string)
		if c["htm"] != r.wantHTM || c["htu"] != r.wantHT || c["ath"] != ath || jti == "" || jtis[jti] || time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute || c["nonce"] != nil {
			t.Errorf("%v: claims %v", r.args, c)
		}
		jtis[jti] = true
	}
}

func TestCheckDPoPNonceRetry(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "dpop.jwk")
	runCmd("dpop-key", keyFile)
	k, _ := loadDPoPKey(keyFile)
	rec, addr := startRecorder(t, deny401(map[string]string{
		"www-authenticate": `Bearer resource_metadata="x", DPoP error="use_dpop_nonce", algs="ES256"`, "dpop-nonce": "n-123",
	}))
	_, errb, err := runCmd("check", "-addr", addr, "-token", "t", "-dpop-key", keyFile)
	if err != nil || !strings.Contains(errb, "asked for a DPoP nonce") {
		t.Fatalf("%v\n%s", err, errb)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d Checks, want 2", len(reqs))
	}
	if c := verifyProof(t, reqs[1].GetAttributes().GetRequest().GetHttp().GetHeaders()["dpop"], k); c["nonce"] != "n-123" {
		t.Errorf("second proof: %v", c)
	}
	// A 401 for another reason is the answer, even with a DPoP-Nonce header.
	rec, addr = startRecorder(t, deny401(map[string]string{"www-authenticate": `DPoP error="invalid_token"`, "dpop-nonce": "n-1"}))
	_, _, err = runCmd("check", "-addr", addr, "-token", "t", "-dpop-key", keyFile)
	var code exitCode
	if !errors.As(err, &code) || code.code != exitDenied401 || len(rec.requests()) != 1 {
		t.Errorf("invalid_token: %v after %d Checks", err, len(rec.requests()))
	}
}

func TestCheckSendsCertificate(t *testing.T) {
	rec, addr := startRecorder(t)
	cert := selfSignedCert(t, "client-a")
	keyDER, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	// The key first, as in a combined file: check finds the certificate.
	file := writeFile(t, "client.pem", append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})...))
	if _, errb, err := runCmd("check", "-addr", addr, "-cert", file); err != nil {
		t.Fatalf("%v\n%s", err, errb)
	}
	got := rec.requests()[0].GetAttributes().GetSource().GetCertificate()
	if strings.ContainsAny(got, "\n +/=") {
		t.Errorf("not URL-encoded: %q", got)
	}
	for name, unescape := range map[string]func(string) (string, error){"query": url.QueryUnescape, "path": url.PathUnescape} {
		p, err := unescape(got)
		if err != nil {
			t.Fatalf("%s unescape: %v", name, err)
		}
		block, _ := pem.Decode([]byte(p))
		if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, cert.Certificate[0]) {
			t.Errorf("%s unescape does not give the certificate back: %q", name, p)
		}
	}

	bad := map[string]struct{ file, says string }{
		"missing":   {filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
		"not PEM":   {writeFile(t, "x", []byte("hello")), "no PEM CERTIFICATE block"},
		"key only":  {pemFile(t, "PRIVATE KEY", keyDER), "no PEM CERTIFICATE block"},
		"corrupt":   {pemFile(t, "CERTIFICATE", []byte("junk")), "does not parse"},
		"too large": {writeFile(t, "big", bytes.Repeat([]byte("a"), 70<<10)), "not a certificate file"},
	}
	for name, b := range bad {
		_, _, err := runCmd("check", "-addr", addr, "-cert", b.file)
		if err == nil || !strings.Contains(err.Error(), "-cert") || !strings.Contains(err.Error(), b.says) {
			t.Errorf("%s: %v, want %q", name, err, b.says)
		}
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("%d Checks sent, want only the good one", n)
	}
}

func selfSignedCert(t *testing.T, cn string) struct {
	Certificate [][]byte
	PrivateKey  *ecdsa.PrivateKey
} {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return struct {
		Certificate [][]byte
		PrivateKey  *ecdsa.PrivateKey
	}{[][]byte{der}, k}
}

// The proofs `check` and `token` make pass the service's own verifier (authz/dpop), for every
// kind of key file, and the thumbprint `dpop-key` prints is the one it computes: two
// implementations that must agree.
func TestProofsPassTheServiceVerifier(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs8 := func(k any) []byte { b, _ := x509.MarshalPKCS8PrivateKey(k); return b }
	checker, err := dpop.NewChecker(dpop.Config{ReplayKey: bytes.Repeat([]byte("k"), 32), Replay: dpop.NewReplay(nil, 100, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{
		"ES256 JWK":     writeFile(t, "k.jwk", func() []byte { b, _ := (jose.JSONWebKey{Key: ec}).MarshalJSON(); return b }()),
		"EdDSA PKCS #8": pemFile(t, "PRIVATE KEY", pkcs8(ed)),
		"RSA PKCS #1":   pemFile(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
	} {
		k, err := loadDPoPKey(file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		const tok = "an.access.token"
		p, err := k.proof("POST", "https://mcp.example.com:8443/tools/mcp?x=1", tok, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got, err := checker.Check(context.Background(), dpop.Input{Proof: p, Method: "POST", Origin: "https://mcp.example.com:8443", Path: "/tools/mcp", Token: tok})
		if err != nil {
			t.Errorf("%s: the service refuses the proof: %v", name, err)
			continue
		}
		if got.JKT != k.thumbprint() || got.Alg != string(k.alg) {
			t.Errorf("%s: service sees jkt %s alg %s, the CLI %s %s", name, got.JKT, got.Alg, k.thumbprint(), k.alg)
		}
		if _, err := checker.Check(context.Background(), dpop.Input{Proof: p, Method: "POST", Origin: "https://mcp.example.com:8443", Path: "/tools/mcp", Token: tok}); err == nil {
			t.Errorf("%s: the same proof passed twice", name)
		}
	}
}

// The demo end to end, on its DPoP resource (/mcp/dpop): demo-dpop's token, got with
// `token -dpop-key`, is allowed with the proofs `check -dpop-key` makes, and refused as
// Bearer, with another key's proofs, and with a proof for another URL; a Bearer token of
// client demo is refused there (dpop: required).
func TestDemoDPoPEndToEnd(t *testing.T) {
	_, grpcAddr, _, as := startDemo(t)
	dir := t.TempDir()
	key, other := filepath.Join(dir, "dpop.jwk"), filepath.Join(dir, "other.jwk")
	for _, f := range []string{key, other} {
		if _, _, err := runCmd("dpop-key", f); err != nil {
			t.Fatal(err)
		}
	}
	const resource = "http://localhost:8080/mcp/dpop"
	out, errb, err := runCmd("token", "-token-url", "http://"+as+"/token", "-client", "demo-dpop", "-dpop-key", key, "-resource", resource)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb)
	}
	tok := strings.TrimSpace(out)
	bearer, _, err := runCmd("token", "-token-url", "http://"+as+"/token", "-client", "demo", "-resource", resource)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"check", "-addr", grpcAddr, "-host", "localhost:8080", "-path", "/mcp/dpop", "-token", tok}
	out, errb, err = runCmd(append(base, "-dpop-key", key)...)
	if err != nil || !strings.Contains(out, `"x-auth-token-binding"`) || !strings.Contains(out, `"dpop"`) {
		t.Fatalf("with proofs: %v\n%s\n%s", err, out, errb)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"as Bearer":               {base, `error=\"invalid_token\"`},
		"another key's proof":     {append(base, "-dpop-key", other), `error=\"invalid_token\"`},
		"a proof for another URL": {append(base, "-dpop-key", key, "-htu", "http://localhost:8080/mcp"), `error=\"invalid_dpop_proof\"`},
		"a Bearer token":          {[]string{"check", "-addr", grpcAddr, "-host", "localhost:8080", "-path", "/mcp/dpop", "-token", strings.TrimSpace(bearer)}, `error=\"invalid_token\"`},
	} {
		out, _, err := runCmd(c.args...)
		var code exitCode
		if !errors.As(err, &code) || code.code != exitDenied401 || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v, want exit %d with %s\n%s", name, err, exitDenied401, c.want, out)
		}
	}
}

// `check -cert` against a running service: a certificate-bound token (RFC 8705) is allowed
// with its certificate, and refused with another one or none.
func TestCheckCertificateEndToEnd(t *testing.T) {
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	as, err := demoas.New(demoas.Config{Issuer: srv.URL, Resources: []string{"http://localhost:8080/mcp"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as.Handler()
	bound, other := selfSignedCert(t, "bound"), selfSignedCert(t, "other")
	dir := t.TempDir()
	boundFile, otherFile := filepath.Join(dir, "bound.pem"), filepath.Join(dir, "other.pem")
	os.WriteFile(boundFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bound.Certificate[0]}), 0o600)
	os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate[0]}), 0o600)
	now := time.Now()
	tok, err := as.Mint(map[string]any{"iss": srv.URL, "sub": "svc", "aud": "http://localhost:8080/mcp", "scope": "mcp:tools",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, demoas.MintOptions{Bind: demoas.Binding{X5T: demoas.CertThumbprint(bound.Certificate[0])}})
	if err != nil {
		t.Fatal(err)
	}

	grpcAddr := testenv.FreeAddr(t)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("listen:\n  grpc: "+grpcAddr+"\n  http: \"\"\nshutdown: {drain: 0s}\ndev: {allow_http: true}\nissuers:\n  - issuer: "+srv.URL+
		"\nresources:\n  - resource: http://localhost:8080/mcp\n    scopes: {required: [mcp:tools]}\n    mtls_bound: allowed\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", cfg}, func(string) string { return "" }, &bytes.Buffer{}, &logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, logs.String())
		}
	}()
	base := []string{"check", "-addr", grpcAddr, "-host", "localhost:8080", "-path", "/mcp", "-token", tok}
	var out, errb string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, errb, err = runCmd(append(base, "-cert", boundFile)...); !strings.Contains(fmtErr(err), "connection refused") {
			break
		}
	}
	if err != nil || !strings.Contains(out, `"mtls"`) {
		t.Fatalf("with its certificate: %v\n%s\n%s\n%s", err, out, errb, logs.String())
	}
	for name, args := range map[string][]string{"another certificate": append(base, "-cert", otherFile), "no certificate": base} {
		out, _, err := runCmd(args...)
		var code exitCode
		if !errors.As(err, &code) || code.code != exitDenied401 || !strings.Contains(out, `error=\"invalid_token\"`) {
			t.Errorf("%s: %v, want exit %d invalid_token\n%s", name, err, exitDenied401, out)
		}
	}
}

// check-config -envoy holds a configuration with DPoP or certificate-bound tokens against the
// Envoy bootstrap that is to send them.
func TestCheckConfigSenderConstrainedEnvoy(t *testing.T) {
	src, err := os.ReadFile("../../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	withBinding := func(lines string) string {
		out := strings.Replace(string(src), "    scopes:\n", lines+"    scopes:\n", 1)
		if out == string(src) {
			t.Fatal("fixture no longer has a resource scopes block")
		}
		return writeFile(t, "c.yaml", []byte(out))
	}
	dpopCfg, mtlsCfg := withBinding("    dpop: required\n"), withBinding("    mtls_bound: required\n")
	for _, c := range []struct {
		name, envoy, cfg, want string
	}{
		{"DPoP, gRPC", "../../envoy/envoy.yaml", dpopCfg, ""},
		{"DPoP, HTTP service", "../../envoy/envoy-http.yaml", dpopCfg, ""},
		{"mTLS, the client-certificate example", "../../envoy/envoy-client-mtls.yaml", mtlsCfg, ""},
		{"mTLS, gRPC without the certificate", "../../envoy/envoy.yaml", mtlsCfg, "resources[0].mtls_bound accept sender-constrained tokens, but:\n  listener \"mcp\", filter \"envoy.filters.http.ext_authz\": no include_peer_certificate"},
		{"mTLS, HTTP service", "../../envoy/envoy-http.yaml", mtlsCfg, `lacks "x-forwarded-client-cert"`},
	} {
		_, _, err := runCmd("check-config", "-envoy", c.envoy, c.cfg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
