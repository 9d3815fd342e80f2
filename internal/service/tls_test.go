package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/mcp-authz/mcp-authz/internal/config"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM cert and key for a leaf with the given serial.
func (ca *testCA) issue(t *testing.T, serial int64, server bool) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// mTLS on the gRPC listener: a proxy with a certificate from the client CA gets answers,
// one without is refused; a rotated server certificate is served without a restart.
func TestMTLSAndCertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc, sk := ca.issue(t, 100, true)
	certFile, keyFile, caFile := write("server.crt", sc), write("server.key", sk), write("ca.crt", ca.pem)
	_, srv := as(t)
	r := replica(t, srv.URL, nil, func(c *config.Config) {
		c.Listen.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	cc, ck := ca.issue(t, 200, false)
	clientCert, err := tls.X509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	call := func(withCert bool) (serial int64, err error) {
		conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		if withCert {
			conf.Certificates = []tls.Certificate{clientCert}
		}
		var seen int64
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			seen = cs.PeerCertificates[0].SerialNumber.Int64()
			return nil
		}
		conn, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = authv3.NewAuthorizationClient(conn).Check(ctx, checkReq("/mcp", nil))
		return seen, err
	}
	if serial, err := call(true); err != nil || serial != 100 {
		t.Fatalf("with a client certificate: serial %d, %v", serial, err)
	}
	if _, err := call(false); err == nil {
		t.Error("a client without a certificate was answered")
	}
	// Rotate the server certificate on disk (a different size too, so the change is seen
	// even within one mtime tick).
	sc2, sk2 := ca.issue(t, 1000001, true)
	write("server.key", sk2)
	write("server.crt", sc2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		serial, err := call(true)
		if err == nil && serial == 1000001 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated certificate not served: serial %d, %v", serial, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken rotation keeps the last good certificate.
	write("server.crt", []byte("not a certificate"))
	if serial, err := call(true); err != nil || serial != 1000001 {
		t.Errorf("after a broken rotation: serial %d, %v", serial, err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	_, srv := as(t)
	cfg := &config.Config{
		Listen:    config.Listen{GRPC: "127.0.0.1:0", TLS: config.TLS{CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key"}},
		Dev:       config.Dev{AllowHTTP: true},
		Issuers:   []config.Issuer{{Issuer: srv.URL}},
		Resources: []config.Resource{{Resource: resource}},
	}
	cfg.ApplyDefaults()
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "listen.tls") {
		t.Errorf("missing certificate files: %v", err)
	}
}
