package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// dpopKey is a client's DPoP key (RFC 9449): the private key that signs proofs and the
// algorithm it signs with.
type dpopKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

// maxKeyFile bounds what is read from a key or certificate file: both are a few KiB.
const maxKeyFile = 64 << 10

// loadDPoPKey reads a private key from a JWK (as `mcp-authz dpop-key` writes) or a PEM file
// (PKCS #8, SEC 1 "EC PRIVATE KEY", PKCS #1). Its errors name the file and what is wrong,
// never the key material.
func loadDPoPKey(path string) (*dpopKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(raw) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d KiB: not a key file", path, maxKeyFile>>10)
	}
	var (
		key      any
		declared string // the JWK's alg, if any
	)
	trimmed := strings.TrimSpace(string(raw))
	switch {
	case strings.HasPrefix(trimmed, "{"):
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON([]byte(trimmed)); err != nil {
			return nil, fmt.Errorf("%s: not a usable JWK: %v", path, err)
		}
		if jwk.IsPublic() {
			return nil, fmt.Errorf("%s: holds a public key; signing DPoP proofs needs the private key (make one with `mcp-authz dpop-key FILE`)", path)
		}
		key, declared = jwk.Key, jwk.Algorithm
	case strings.HasPrefix(trimmed, "-----BEGIN"):
		block, _ := pem.Decode([]byte(trimmed))
		if block == nil {
			return nil, fmt.Errorf("%s: a PEM header without a valid PEM block", path)
		}
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("%s: a PEM %q block, not a private key (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", path, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: the PEM private key does not parse: %v", path, err)
		}
	default:
		return nil, fmt.Errorf("%s: neither a JWK (JSON) nor a PEM private key", path)
	}
	k, err := signerFor(key, declared)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}

// signerFor picks the proof algorithm for a key: the curve decides for EC keys, EdDSA for
// Ed25519, and PS256 for RSA unless the JWK names another RSA algorithm.
func signerFor(key any, declared string) (*dpopKey, error) {
	var k dpopKey
	switch key := key.(type) {
	case *ecdsa.PrivateKey:
		switch key.Curve {
		case elliptic.P256():
			k.alg = jose.ES256
		case elliptic.P384():
			k.alg = jose.ES384
		case elliptic.P521():
			k.alg = jose.ES512
		default:
			return nil, errors.New("an EC key on a curve JOSE has no algorithm for")
		}
		k.key = key
	case ed25519.PrivateKey:
		k.alg, k.key = jose.EdDSA, key
	case *rsa.PrivateKey:
		if key.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits; DPoP needs at least 2048", key.N.BitLen())
		}
		k.alg, k.key = jose.PS256, key
		switch a := jose.SignatureAlgorithm(declared); a {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			k.alg = a
		}
	case []byte:
		return nil, errors.New("a symmetric key; DPoP proofs need an asymmetric key (RFC 9449 §4.2)")
	default:
		return nil, fmt.Errorf("a %T key, which DPoP cannot use", key)
	}
	if declared != "" && jose.SignatureAlgorithm(declared) != k.alg {
		return nil, fmt.Errorf("the JWK's alg %q does not fit its key (which signs %s)", declared, k.alg)
	}
	return &k, nil
}

// thumbprint is the key's RFC 7638 SHA-256 thumbprint, what a bound token's cnf.jkt holds.
func (k *dpopKey) thumbprint() string {
	tp, err := (&jose.JSONWebKey{Key: k.key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof builds an RFC 9449 §4.2 proof for a request with method to target. The query and
// fragment are not part of htu; ath binds the proof to accessToken when there is one.
func (k *dpopKey) proof(method, target, accessToken, nonce string, now time.Time) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("the DPoP target %q is not an absolute URL", target)
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": u.String(),
		"iat": now.Unix(),
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// newDPoPKey writes a new private JWK to a file of its own and prints its thumbprint, the
// cnf.jkt of the tokens it will get.
func newDPoPKey(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dpop-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("alg", "ES256", "ES256 or EdDSA")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("dpop-key: give the file to write: mcp-authz dpop-key [-alg ES256|EdDSA] FILE")
	}
	var key crypto.Signer
	switch *alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		key = k
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		key = k
	default:
		return fmt.Errorf("dpop-key: -alg %q: want ES256 or EdDSA", *alg)
	}
	jwk, err := (jose.JSONWebKey{Key: key, Algorithm: *alg, Use: "sig"}).MarshalJSON()
	if err != nil {
		return err
	}
	// O_EXCL: a typo must not overwrite the key an existing token is bound to.
	f, err := os.OpenFile(fs.Arg(0), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("dpop-key: %v", err)
	}
	if _, err := f.Write(append(jwk, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("dpop-key: %v", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dpop-key: %v", err)
	}
	k := &dpopKey{alg: jose.SignatureAlgorithm(*alg), key: key}
	fmt.Fprintf(stderr, "wrote a private %s JWK to %s; its thumbprint (cnf.jkt of the tokens bound to it):\n", *alg, fs.Arg(0))
	fmt.Fprintln(stdout, k.thumbprint())
	return nil
}

// peerCertificate reads a PEM certificate file and returns its first certificate the way
// Envoy puts it in attributes.source.certificate (include_peer_certificate): PEM, URL-encoded.
func peerCertificate(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if len(raw) > maxKeyFile {
		return "", fmt.Errorf("%s: larger than %d KiB: not a certificate file", path, maxKeyFile>>10)
	}
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", fmt.Errorf("%s: no PEM CERTIFICATE block", path)
		}
		if block.Type != "CERTIFICATE" {
			continue // a key in the same file, say
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("%s: the certificate does not parse: %v", path, err)
		}
		return percentEncode(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}))), nil
	}
}

// percentEncode escapes every byte but the RFC 3986 unreserved ones, so that either URL
// decoding (query or path rules) gives the PEM back: no '+' is left to mean a space.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
