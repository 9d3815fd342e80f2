// Package dpoptest makes DPoP proofs (RFC 9449 §4.2) for tests with go-jose, a maintained JOSE
// library we did not write, so that our verifier is checked against someone else's proofs.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a client's DPoP key.
type Key struct{ Priv *ecdsa.PrivateKey }

// NewKey generates a P-256 key (ES256).
func NewKey() *Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Key{Priv: k}
}

// JKT is the key's RFC 7638 SHA-256 thumbprint, base64url: a bound token's cnf.jkt.
func (k *Key) JKT() string {
	tp, err := (&jose.JSONWebKey{Key: k.Priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// Proof makes a proof for method and htu with the access token's hash (token "" leaves ath
// out); mut may change the claims before signing.
func (k *Key) Proof(method, htu, token string, now time.Time, mut func(map[string]any)) string {
	var jti [16]byte
	rand.Read(jti[:])
	cl := map[string]any{"jti": fmt.Sprintf("%x", jti), "htm": method, "htu": htu, "iat": now.Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		cl["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if mut != nil {
		mut(cl)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Priv},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}})
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(cl)
	jws, err := sg.Sign(b)
	if err != nil {
		panic(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}
