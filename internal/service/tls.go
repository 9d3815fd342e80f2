package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/mcp-authz/mcp-authz/internal/config"
)

// tlsFiles serves the gRPC listener's certificate and client CA from files, re-reading them
// when they change, so a rotated certificate takes effect without a restart. A rotation that
// cannot be read keeps the last good material and says so.
type tlsFiles struct {
	cfg config.TLS
	log *slog.Logger

	mu    sync.Mutex
	stamp string
	conf  *tls.Config
}

func newTLSFiles(c config.TLS, log *slog.Logger) (*tlsFiles, error) {
	t := &tlsFiles{cfg: c, log: log}
	conf, err := t.load()
	if err != nil {
		return nil, err
	}
	t.conf, t.stamp = conf, t.currentStamp()
	return t, nil
}

func (t *tlsFiles) currentStamp() string {
	s := ""
	for _, f := range []string{t.cfg.CertFile, t.cfg.KeyFile, t.cfg.ClientCAFile} {
		if f != "" {
			s += fileStamp(f) + ";"
		}
	}
	return s
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

func (t *tlsFiles) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.cfg.CertFile, t.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listen.tls.cert_file/key_file: %v", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	if t.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(t.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("listen.tls.client_ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("listen.tls.client_ca_file: no PEM certificate in it")
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// config is the listener's GetConfigForClient: handshakes are rare (the proxy keeps HTTP/2
// connections open), so checking the files' stamps on each is cheap.
func (t *tlsFiles) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.currentStamp(); st != t.stamp {
		t.stamp = st
		if conf, err := t.load(); err != nil {
			t.log.Error("TLS files changed but cannot be used; keeping the previous ones", "error", err)
		} else {
			t.conf = conf
			t.log.Info("TLS certificate reloaded")
		}
	}
	return t.conf, nil
}

// serverTLS is the tls.Config for the gRPC listener.
func (t *tlsFiles) serverTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: t.config}
}
