// Package dpop verifies DPoP proofs (RFC 9449 §4.3) for a resource server: the proof's form and
// signature, its binding to the request (htm, htu), to the access token (ath) and to time (iat,
// nonce), and that it is used once (jti). Whether the proof's key is the one the access token is
// bound to (cnf.jkt, §6) is the caller's comparison of Proof.JKT with the token's.
//
// It is our own code, not a JOSE library: a proof is a small, fixed shape, and every member of
// it is read through the strict JSON reader (duplicate or case-variant members are errors), so
// that no proof means one thing here and another to a library that reads it differently. The
// end-to-end tests make proofs with third-party JOSE libraries (go-jose, panva's jose and
// oauth4webapi) to show the two agree.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
)

// MaxProofLen bounds what is decoded. An RSA-4096 proof is about 2 KiB.
const MaxProofLen = 8 << 10

// maxJTILen bounds the jti remembered for replay detection (it is hashed, but parsed first).
const maxJTILen = 256

// ErrInvalid is wrapped by every proof failure: the answer is 401 invalid_dpop_proof.
var ErrInvalid = errors.New("invalid DPoP proof")

// DefaultAlgs are the proof algorithms accepted when none are configured: asymmetric only
// (RFC 9449 §4.3 ¶2 item 5: "none" and MACs are never allowed).
var DefaultAlgs = []string{"ES256", "EdDSA", "ES384", "PS256", "RS256"}

// Supported are the algorithms this package can verify.
var Supported = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
}

// Proof is what a proof with a valid signature says.
type Proof struct {
	Alg string
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's public key, base64url: what a
	// DPoP-bound token's cnf.jkt must equal.
	JKT   string
	JTI   string
	HTM   string
	HTU   string
	IAT   time.Time
	ATH   string // "" when absent
	Nonce string // "" when absent
	// hasNonce tells an empty nonce member from an absent one.
	hasNonce bool
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

var b64 = base64.RawURLEncoding.Strict()

// Parse checks a proof's form and signature (RFC 9449 §4.3 ¶2 items 2–6) with algs, the
// accepted algorithms. The claims' meaning for a request is Checker's business.
func Parse(proof string, algs map[string]bool) (Proof, error) {
	if len(proof) > MaxProofLen {
		return Proof{}, invalid("proof longer than %d bytes", MaxProofLen)
	}
	h64, rest, ok1 := strings.Cut(proof, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s64, '.') >= 0 {
		return Proof{}, invalid("not a JWS in compact serialization")
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return Proof{}, invalid("header is not base64url")
	}
	var hdr struct {
		Typ  *string        `json:"typ"`
		Alg  string         `json:"alg"`
		JWK  jsontext.Value `json:"jwk"`
		Crit jsontext.Value `json:"crit"`
	}
	if err := strictjson.Unmarshal(hb, &hdr); err != nil {
		return Proof{}, invalid("header: %v", err)
	}
	// RFC 9449 §4.2: typ is exactly dpop+jwt. A case variant is refused, not folded: other
	// verifiers compare it exactly.
	if hdr.Typ == nil || *hdr.Typ != "dpop+jwt" {
		return Proof{}, invalid("typ is not dpop+jwt")
	}
	if hdr.Crit != nil {
		return Proof{}, invalid("crit header parameters are not understood")
	}
	if !algs[hdr.Alg] || !Supported[hdr.Alg] {
		return Proof{}, invalid("alg %q is not accepted", clip(hdr.Alg))
	}
	if hdr.JWK == nil || hdr.JWK.Kind() != '{' {
		return Proof{}, invalid("no jwk object in the header")
	}
	key, jkt, err := parseJWK(hdr.JWK, hdr.Alg)
	if err != nil {
		return Proof{}, err
	}
	sig, err := b64.DecodeString(s64)
	if err != nil {
		return Proof{}, invalid("signature is not base64url")
	}
	if err := verify(hdr.Alg, key, proof[:len(h64)+1+len(p64)], sig); err != nil {
		return Proof{}, err
	}
	pb, err := b64.DecodeString(p64)
	if err != nil {
		return Proof{}, invalid("payload is not base64url")
	}
	var cl struct {
		JTI   *string  `json:"jti"`
		HTM   *string  `json:"htm"`
		HTU   *string  `json:"htu"`
		IAT   *float64 `json:"iat"`
		ATH   *string  `json:"ath"`
		Nonce *string  `json:"nonce"`
	}
	if err := strictjson.Unmarshal(pb, &cl); err != nil {
		return Proof{}, invalid("payload: %v", err)
	}
	switch {
	case cl.JTI == nil || *cl.JTI == "":
		return Proof{}, invalid("no jti")
	case len(*cl.JTI) > maxJTILen:
		return Proof{}, invalid("jti longer than %d bytes", maxJTILen)
	case cl.HTM == nil || *cl.HTM == "":
		return Proof{}, invalid("no htm")
	case cl.HTU == nil || *cl.HTU == "":
		return Proof{}, invalid("no htu")
	case cl.IAT == nil || math.IsNaN(*cl.IAT) || math.IsInf(*cl.IAT, 0) || *cl.IAT < 0 || *cl.IAT > 1e11:
		return Proof{}, invalid("no usable iat")
	}
	p := Proof{Alg: hdr.Alg, JKT: jkt, JTI: *cl.JTI, HTM: *cl.HTM, HTU: *cl.HTU}
	sec, frac := math.Modf(*cl.IAT)
	p.IAT = time.Unix(int64(sec), int64(frac*1e9))
	if cl.ATH != nil {
		p.ATH = *cl.ATH
		if p.ATH == "" {
			return Proof{}, invalid("empty ath")
		}
	}
	if cl.Nonce != nil {
		p.Nonce, p.hasNonce = *cl.Nonce, true
	}
	return p, nil
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// jwk is the public key members we read. Any private member makes the proof invalid (RFC 9449
// §4.3 ¶2 item 6): a client that sends its private key has lost it.
type jwk struct {
	Kty string         `json:"kty"`
	Crv string         `json:"crv"`
	X   string         `json:"x"`
	Y   string         `json:"y"`
	N   string         `json:"n"`
	E   string         `json:"e"`
	D   jsontext.Value `json:"d"`
	P   jsontext.Value `json:"p"`
	Q   jsontext.Value `json:"q"`
	DP  jsontext.Value `json:"dp"`
	DQ  jsontext.Value `json:"dq"`
	QI  jsontext.Value `json:"qi"`
	Oth jsontext.Value `json:"oth"`
	K   jsontext.Value `json:"k"`
}

type curve struct {
	crv  string
	c    elliptic.Curve
	size int // bytes of a coordinate
	alg  string
}

var curves = []curve{
	{"P-256", elliptic.P256(), 32, "ES256"},
	{"P-384", elliptic.P384(), 48, "ES384"},
	{"P-521", elliptic.P521(), 66, "ES512"},
}

// minRSABits: RFC 7518 §3.3 asks for 2048 at least.
const minRSABits = 2048

// parseJWK reads the proof's public key for alg and computes its RFC 7638 thumbprint. Every
// member the thumbprint covers must be in its one canonical encoding (strict base64url, fixed
// length, no leading zeros), so one key has exactly one thumbprint.
func parseJWK(raw jsontext.Value, alg string) (any, string, error) {
	var k jwk
	if err := strictjson.Unmarshal(raw, &k); err != nil {
		return nil, "", invalid("jwk: %v", err)
	}
	if k.D != nil || k.P != nil || k.Q != nil || k.DP != nil || k.DQ != nil || k.QI != nil || k.Oth != nil || k.K != nil {
		return nil, "", invalid("jwk carries private or symmetric key material")
	}
	var thumb string
	var key any
	switch k.Kty {
	case "EC":
		var cv *curve
		for i := range curves {
			if curves[i].crv == k.Crv {
				cv = &curves[i]
			}
		}
		if cv == nil || cv.alg != alg {
			return nil, "", invalid("EC key on curve %q does not fit alg %s", clip(k.Crv), alg)
		}
		x, err1 := b64.DecodeString(k.X)
		y, err2 := b64.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != cv.size || len(y) != cv.size {
			return nil, "", invalid("EC key coordinates are not %d-byte base64url", cv.size)
		}
		pt := make([]byte, 0, 1+2*cv.size)
		pt = append(append(append(pt, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(cv.c, pt)
		if err != nil {
			return nil, "", invalid("EC key is not a point on %s", cv.crv)
		}
		key = pub
		thumb = `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	case "OKP":
		if k.Crv != "Ed25519" || alg != "EdDSA" {
			return nil, "", invalid("OKP key on curve %q does not fit alg %s", clip(k.Crv), alg)
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, "", invalid("Ed25519 key is not 32-byte base64url")
		}
		key = ed25519.PublicKey(x)
		thumb = `{"crv":"Ed25519","kty":"OKP","x":"` + k.X + `"}`
	case "RSA":
		if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return nil, "", invalid("RSA key does not fit alg %s", alg)
		}
		n, err1 := b64.DecodeString(k.N)
		e, err2 := b64.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || n[0] == 0 || e[0] == 0 {
			return nil, "", invalid("RSA key members are not canonical base64url")
		}
		nb := new(big.Int).SetBytes(n)
		if nb.BitLen() < minRSABits || nb.BitLen() > 8192 {
			return nil, "", invalid("RSA key of %d bits", nb.BitLen())
		}
		if len(e) > 4 {
			return nil, "", invalid("RSA exponent too large")
		}
		var ev int
		for _, c := range e {
			ev = ev<<8 | int(c)
		}
		if ev < 3 || ev%2 == 0 {
			return nil, "", invalid("RSA exponent %d", ev)
		}
		key = &rsa.PublicKey{N: nb, E: ev}
		thumb = `{"e":"` + k.E + `","kty":"RSA","n":"` + k.N + `"}`
	default:
		return nil, "", invalid("jwk kty %q is not an asymmetric key type", clip(k.Kty))
	}
	sum := sha256.Sum256([]byte(thumb))
	return key, b64.EncodeToString(sum[:]), nil
}

func hashFor(alg string) (crypto.Hash, func() hash.Hash) {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384, sha512.New384
	case "512":
		return crypto.SHA512, sha512.New
	}
	return crypto.SHA256, sha256.New
}

func verify(alg string, key any, signingInput string, sig []byte) error {
	if alg == "EdDSA" {
		if !ed25519.Verify(key.(ed25519.PublicKey), []byte(signingInput), sig) {
			return invalid("signature does not verify")
		}
		return nil
	}
	ch, newHash := hashFor(alg)
	h := newHash()
	h.Write([]byte(signingInput))
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		// RFC 7518 §3.4: R and S, each exactly the curve's size; DER is not JWS.
		if len(sig) != 2*size {
			return invalid("ECDSA signature of %d bytes", len(sig))
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return invalid("signature does not verify")
		}
	case *rsa.PublicKey:
		var err error
		if alg[0] == 'P' {
			err = rsa.VerifyPSS(k, ch, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: ch})
		} else {
			err = rsa.VerifyPKCS1v15(k, ch, digest, sig)
		}
		if err != nil {
			return invalid("signature does not verify")
		}
	default:
		return invalid("no key for alg %s", alg)
	}
	return nil
}

// TokenHash is the ath of a proof for token: base64url(SHA-256(token)) (RFC 9449 §4.2).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}
