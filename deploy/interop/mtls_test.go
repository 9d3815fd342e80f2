package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/internal/testenv"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
)

// asTLS is oidc-provider's https listener (as.mjs with AS_TLS_*), where it asks for client
// certificates.
type asTLS struct {
	addr string
	pool *x509.CertPool // trusts its server certificate
}

// setupASTLS makes a server certificate for oidc-provider's https listener and sets the
// AS_TLS_* variables that as.mjs reads, for the oidc-provider started after it.
func setupASTLS(t *testing.T, dir string) asTLS {
	t.Helper()
	addr := testenv.FreeAddr(t)
	key, der := newCert(t, "oidc-provider", net.ParseIP("127.0.0.1"))
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "as-tls.crt"), filepath.Join(dir, "as-tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	t.Setenv("AS_TLS_PORT", port(addr))
	t.Setenv("AS_TLS_CERT", certFile)
	t.Setenv("AS_TLS_KEY", keyFile)
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return asTLS{addr: addr, pool: pool}
}

// newCert is a self-signed ECDSA certificate: a client's (no IP) or a server's.
func newCert(t *testing.T, cn string, ip net.IP) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

// mtlsToken asks oidc-provider's https listener for agent-mtls's token, presenting cert (none
// when nil), and returns the HTTP status and the answer.
func mtlsToken(ctx context.Context, t *testing.T, as asTLS, resource string, cert *tls.Certificate) (int, map[string]any) {
	t.Helper()
	tc := &tls.Config{RootCAs: as.pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {"mcp:tools"}}
	var resp *http.Response
	var err error
	// The https listener starts with the http one, which start() waited for; give it a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+as.addr+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("agent-mtls", "agent-mtls-secret")
		if resp, err = hc.Do(req); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("oidc-provider's https listener: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("token answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func x5t(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The premise of the certificate-bound scenarios: oidc-provider binds agent-mtls's token to
// the certificate presented on the TLS connection (cnf.x5t#S256), and refuses it without one.
// It returns the token and the client certificate it is bound to.
func testMTLSToken(ctx context.Context, t *testing.T, as asTLS, resource string) (string, tls.Certificate) {
	key, der := newCert(t, "agent-mtls", nil)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	status, out := mtlsToken(ctx, t, as, resource, &cert)
	tok, _ := out["access_token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("agent-mtls with a client certificate: %d %v", status, out["error"])
	}
	claims := jwtClaims(t, tok)
	cnf, _ := claims["cnf"].(map[string]any)
	if cnf["x5t#S256"] != x5t(der) || claims["aud"] != resource || out["token_type"] != "Bearer" {
		t.Errorf("agent-mtls's token: cnf %v aud %v token_type %v; want x5t#S256 %s of the client certificate, aud %s, Bearer",
			cnf, claims["aud"], out["token_type"], x5t(der), resource)
	}
	if status, out := mtlsToken(ctx, t, as, resource, nil); status != 400 || out["error"] != "invalid_grant" {
		t.Errorf("agent-mtls without a client certificate: %d %v, want 400 invalid_grant", status, out)
	}
	return tok, cert
}

// testMTLSThroughMCPAuthz: the gRPC Check Envoy sends with include_peer_certificate, for the
// certificate the token is bound to, another one, and none.
func testMTLSThroughMCPAuthz(ctx context.Context, t *testing.T, tok string, cert tls.Certificate, grpcAddr, front, resource string) {
	ac := checkClient(t, grpcAddr)
	_, other := newCert(t, "someone-else", nil)
	check := func(scheme string, der []byte) *authv3.CheckResponse {
		req := extauthz.NewCheckRequest("POST", front, mustPath(t, resource), map[string]string{"authorization": scheme + " " + tok})
		if der != nil {
			req.Attributes.Source.Certificate = envoyURLEncode(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		}
		resp, err := ac.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ok := check("Bearer", cert.Certificate[0]).GetOkResponse()
	if ok == nil {
		t.Fatal("the token with the certificate it is bound to was refused")
	}
	var binding string
	for _, h := range ok.GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), "x-auth-token-binding") {
			binding = h.GetHeader().GetValue()
		}
	}
	if binding != "mtls" {
		t.Errorf("x-auth-token-binding %q, want mtls", binding)
	}
	for name, der := range map[string][]byte{"another certificate": other, "no certificate": nil} {
		d := check("Bearer", der).GetDeniedResponse()
		if d == nil || d.GetStatus().GetCode() != 401 || !strings.Contains(header(d.GetHeaders(), "www-authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %v, want 401 invalid_token (RFC 8705 §3)", name, d)
		}
	}
}

// envoyURLEncode is how Envoy writes attributes.source.certificate (include_peer_certificate):
// the PEM with newline, space, '+', '/' and '=' percent-encoded
// (Ssl::ConnectionInfo::urlEncodedPemEncodedPeerCertificate; newer Envoys percent-encode every
// reserved character the same way, and neither writes '+' for a space).
func envoyURLEncode(pem string) string {
	return strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(pem)
}
