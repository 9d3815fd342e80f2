package demoas

// Sender-constrained tokens at the demo authorization server: DPoP proofs at the token endpoint
// (RFC 9449 §5) and certificate-bound tokens (RFC 8705 §3). A token request that carries a
// valid proof gets a token whose cnf.jkt is the proof key's RFC 7638 thumbprint and the
// token_type "DPoP"; a client registered with DPoP must send one. A client registered with
// MTLS gets cnf.x5t#S256, the SHA-256 of the certificate it presented on the TLS connection.

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DPoPAlgs are the proof algorithms the token endpoint accepts: asymmetric only (RFC 9449
// §4.3 step 5: not none, not a MAC).
var DPoPAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
	jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512,
}

const (
	defaultDPoPWindow = 5 * time.Minute
	// maxProofJTIs bounds the replay memory: when it is full of unexpired jtis, token
	// requests with proofs are refused until some expire, rather than the map growing
	// with traffic.
	maxProofJTIs = 10000
	maxProofLen  = 8 << 10
)

// Binding says what a token is bound to; the zero value is a Bearer token.
type Binding struct {
	JKT string // RFC 7638 SHA-256 thumbprint of the DPoP key, base64url
	X5T string // SHA-256 of the client certificate's DER, base64url (RFC 8705 x5t#S256)
}

func (b Binding) bound() bool { return b.JKT != "" || b.X5T != "" }

// cnf is the RFC 7800 confirmation claim for the binding.
func (b Binding) cnf() map[string]any {
	c := map[string]any{}
	if b.JKT != "" {
		c["jkt"] = b.JKT
	}
	if b.X5T != "" {
		c["x5t#S256"] = b.X5T
	}
	return c
}

// tokenType is what the token response and introspection say: a DPoP-bound token is used
// with the DPoP scheme (RFC 9449 §5, §6.2); a certificate-bound one stays Bearer (RFC 8705).
func (b Binding) tokenType() string {
	if b.JKT != "" {
		return "DPoP"
	}
	return "Bearer"
}

// withCnf returns claims with the binding's cnf added, refusing to replace one.
func (b Binding) withCnf(claims map[string]any) (map[string]any, error) {
	if !b.bound() {
		return claims, nil
	}
	if _, has := claims["cnf"]; has {
		return nil, errors.New("demoas: the claims already carry cnf and the options bind the token too")
	}
	out := make(map[string]any, len(claims)+1)
	for k, v := range claims {
		out[k] = v
	}
	out["cnf"] = b.cnf()
	return out, nil
}

// JKT is the RFC 7638 SHA-256 thumbprint of a public key, base64url, as cnf.jkt holds it.
func JKT(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// CertThumbprint is the RFC 8705 x5t#S256 of a certificate's DER encoding.
func CertThumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// IssueOpaqueBound is IssueOpaque for a sender-constrained token: introspection answers with
// its cnf and token_type.
func (s *Server) IssueOpaqueBound(subject, clientID string, scopes []string, resource string, ttl time.Duration, b Binding) string {
	tok := s.IssueOpaque(subject, clientID, scopes, resource, ttl)
	s.mu.Lock()
	t := s.opaque[tok]
	t.bind = b
	s.opaque[tok] = t
	s.mu.Unlock()
	return tok
}

// dpopState is the token endpoint's DPoP state.
type dpopState struct {
	jtis      jtiMemory
	nonceOnce sync.Once
	nonceKey  []byte
}

// errUseNonce is a proof without a current nonce from this server.
var errUseNonce = errors.New("send the nonce in the DPoP-Nonce header")

// nonce is an HMAC'd timestamp: unpredictable without the per-process key, and checked
// without remembering the nonces handed out.
func (s *Server) nonce(at time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(at.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(ts[:], s.nonceMAC(ts[:])...))
}

func (s *Server) nonceMAC(ts []byte) []byte {
	s.dpop.nonceOnce.Do(func() {
		s.dpop.nonceKey = make([]byte, 32)
		rand.Read(s.dpop.nonceKey)
	})
	m := hmac.New(sha256.New, s.dpop.nonceKey)
	m.Write(ts)
	return m.Sum(nil)[:16]
}

// nonceValid reports whether n is one of this server's nonces, made within window of now.
func (s *Server) nonceValid(n string, now time.Time, window time.Duration) bool {
	raw, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(raw) != 24 || !hmac.Equal(raw[8:], s.nonceMAC(raw[:8])) {
		return false
	}
	at := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	return !at.Before(now.Add(-window)) && !at.After(now.Add(window))
}

// jtiMemory remembers the jtis of accepted proofs until their iat window has passed.
type jtiMemory struct {
	mu   sync.Mutex
	seen map[string]time.Time // jkt + " " + jti → forget after
}

// once records key and reports whether it is new; full reports that nothing could be recorded.
func (m *jtiMemory) once(key string, until, now time.Time) (fresh, full bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, false
	}
	if len(m.seen) >= maxProofJTIs {
		for k, exp := range m.seen {
			if !now.Before(exp) {
				delete(m.seen, k)
			}
		}
		if len(m.seen) >= maxProofJTIs {
			return false, true
		}
	}
	m.seen[key] = until
	return true, false
}

// tokenBinding decides what a token request's token is bound to. It answers the request
// itself (and returns ok false) when the proof or the certificate is wrong or missing.
func (s *Server) tokenBinding(w http.ResponseWriter, r *http.Request, c *Client) (b Binding, ok bool) {
	proofs := r.Header.Values("DPoP")
	switch {
	case len(proofs) > 1:
		oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", "send exactly one DPoP header")
		return b, false
	case len(proofs) == 1:
		jkt, err := s.verifyProof(proofs[0], http.MethodPost, s.cfg.Issuer+"/token")
		if errors.Is(err, errUseNonce) {
			w.Header().Set("DPoP-Nonce", s.nonce(s.now()))
			oauthError(w, http.StatusBadRequest, "use_dpop_nonce", "the DPoP proof needs a nonce from this server: "+err.Error())
			return b, false
		}
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", "the DPoP proof is not valid: "+err.Error())
			return b, false
		}
		b.JKT = jkt
	case c.DPoP:
		oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", "this client's tokens are DPoP-bound: send a DPoP proof (RFC 9449 §5)")
		return b, false
	}
	if c.MTLS {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			oauthError(w, http.StatusBadRequest, "invalid_request", "this client's tokens are certificate-bound: present a TLS client certificate (RFC 8705)")
			return b, false
		}
		b.X5T = CertThumbprint(r.TLS.PeerCertificates[0].Raw)
	}
	return b, true
}

// proofClaims are the RFC 9449 §4.2 claims the token endpoint reads.
type proofClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.Number     `json:"iat"`
	Nonce json.RawMessage `json:"nonce"`
}

// verifyProof runs RFC 9449 §4.3's checks for a proof sent with method to target and returns
// the thumbprint of its key. Its errors say which check failed; they hold nothing secret.
func (s *Server) verifyProof(proof, method, target string) (string, error) {
	if len(proof) > maxProofLen {
		return "", errors.New("too long")
	}
	jws, err := jose.ParseSignedCompact(proof, DPoPAlgs)
	if err != nil {
		return "", errors.New("not a compact JWS with an asymmetric algorithm")
	}
	if len(jws.Signatures) != 1 {
		return "", errors.New("not exactly one signature")
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", errors.New(`typ is not "dpop+jwt"`)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() {
		return "", errors.New("no valid jwk in the header")
	}
	// go-jose already refuses an embedded private key when parsing; this keeps the rule
	// (RFC 9449 §4.3 step 7) here if that ever changes.
	if !jwk.IsPublic() {
		return "", errors.New("the jwk holds a private key")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return "", errors.New("the signature does not verify with the jwk")
	}
	if err := noDuplicateMembers(payload); err != nil {
		return "", err
	}
	var c proofClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return "", errors.New("the claims are not a JSON object of the right types")
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return "", errors.New("jti is missing or too long")
	}
	if c.HTM != method {
		return "", errors.New("htm is not the request's method")
	}
	if !sameURI(c.HTU, target) {
		return "", errors.New("htu is not the token endpoint")
	}
	iat, err := c.IAT.Int64()
	if err != nil {
		return "", errors.New("iat is missing or not an integer")
	}
	window := s.cfg.DPoPWindow
	if window <= 0 {
		window = defaultDPoPWindow
	}
	now := s.now()
	at := time.Unix(iat, 0)
	if at.Before(now.Add(-window)) || at.After(now.Add(window)) {
		return "", errors.New("iat is outside the accepted window")
	}
	if !s.cfg.DPoPNonce && len(c.Nonce) != 0 {
		return "", errors.New("this server issued no nonce")
	}
	if s.cfg.DPoPNonce {
		var n string
		if json.Unmarshal(c.Nonce, &n) != nil || !s.nonceValid(n, now, window) {
			return "", errUseNonce
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", errors.New("no thumbprint for the jwk")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// A proof outlives its window by nothing: after iat+window it fails the iat check anyway.
	switch fresh, full := s.dpop.jtis.once(jkt+" "+c.JTI, at.Add(window), now); {
	case full:
		return "", errors.New("too many recent proofs; retry later")
	case !fresh:
		return "", errors.New("the jti was used before")
	}
	return jkt, nil
}

// noDuplicateMembers refuses a JSON object that names a member twice, even in another case:
// two parsers could each pick a different one.
func noDuplicateMembers(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("the claims are not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errors.New("the claims are not valid JSON")
		}
		name := strings.ToLower(t.(string))
		if seen[name] {
			return fmt.Errorf("the claims name %q twice", t)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errors.New("the claims are not valid JSON")
		}
	}
	return nil
}

// sameURI compares htu with the target as RFC 9449 §4.3 step 9 asks: ignoring query and
// fragment, with the scheme and host case-insensitive and a default port the same as none.
func sameURI(htu, target string) bool {
	a, errA := url.Parse(htu)
	b, errB := url.Parse(target)
	if errA != nil || errB != nil || a.Host == "" || a.Opaque != "" || a.User != nil {
		return false
	}
	norm := func(u *url.URL) string {
		scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		host = strings.TrimSuffix(host, map[string]string{"http": ":80", "https": ":443"}[scheme])
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		return scheme + "://" + host + p
	}
	return norm(a) == norm(b)
}

func (s *Server) bindingMetadata(m map[string]any) {
	algs := make([]string, len(DPoPAlgs))
	for i, a := range DPoPAlgs {
		algs[i] = string(a)
	}
	m["dpop_signing_alg_values_supported"] = algs
	m["tls_client_certificate_bound_access_tokens"] = true
}
