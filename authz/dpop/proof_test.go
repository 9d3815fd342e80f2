package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var t0 = time.Unix(1_790_000_000, 0)

const (
	origin = "https://mcp.example.com"
	path   = "/mcp"
	token  = "eyJ.access.token"
)

// signer makes proofs with go-jose, a JOSE library we did not write.
type signer struct {
	alg  jose.SignatureAlgorithm
	key  crypto.Signer
	opts func(*jose.SignerOptions)
}

func newSigner(t testing.TB, alg jose.SignatureAlgorithm) *signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signer{alg: alg, key: k}
}

func (s *signer) thumbprint(t testing.TB) string {
	t.Helper()
	j := jose.JSONWebKey{Key: s.key.Public()}
	tp, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func (s *signer) sign(t testing.TB, hdr map[jose.HeaderKey]any, claims any) string {
	t.Helper()
	o := &jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}}
	for k, v := range hdr {
		o.ExtraHeaders[k] = v
	}
	if hdr["typ"] == "-" {
		delete(o.ExtraHeaders, "typ")
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	if s, ok := claims.(string); ok {
		b = []byte(s)
	}
	jws, err := sg.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func claims(jti string) map[string]any {
	return map[string]any{"jti": jti, "htm": "POST", "htu": origin + path, "iat": t0.Unix(), "ath": TokenHash(token)}
}

func newChecker(t testing.TB, mut func(*Config)) *Checker {
	t.Helper()
	c := Config{ReplayKey: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return t0 }}
	c.Replay = NewReplay(nil, 100, nil, c.Now)
	if mut != nil {
		mut(&c)
	}
	k, err := NewChecker(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func in(proof string) Input {
	return Input{Proof: proof, Method: "POST", Origin: origin, Path: path, Token: token}
}

func TestProofFromGoJoseEveryAlg(t *testing.T) {
	k := newChecker(t, func(c *Config) {
		c.Algs = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256", "RS512", "PS384"}
	})
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.RS256, jose.PS256, jose.RS512, jose.PS384} {
		s := newSigner(t, alg)
		p, err := k.Check(context.Background(), in(s.sign(t, nil, claims("jti-"+string(alg)))))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if p.JKT != s.thumbprint(t) {
			t.Errorf("%s: thumbprint %s, go-jose says %s", alg, p.JKT, s.thumbprint(t))
		}
	}
}

// TestProofAttacks: every row must be refused as an invalid proof (or a nonce demand).
func TestProofAttacks(t *testing.T) {
	es := newSigner(t, jose.ES256)
	rs := newSigner(t, jose.RS512) // not in DefaultAlgs
	with := func(mut func(map[string]any)) map[string]any {
		c := claims("j1")
		mut(c)
		return c
	}
	ecPriv := es.key.(*ecdsa.PrivateKey)
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: ecPriv})
	hand := func(hdr, payload string, sig []byte) string {
		e := base64.RawURLEncoding.EncodeToString
		return e([]byte(hdr)) + "." + e([]byte(payload)) + "." + e(sig)
	}
	pub := func() string {
		b, _ := json.Marshal(jose.JSONWebKey{Key: ecPriv.Public()})
		return string(b)
	}()
	okPayload, _ := json.Marshal(claims("j1"))
	esSign := func(hdr string, payload []byte) string {
		e := base64.RawURLEncoding.EncodeToString
		in := e([]byte(hdr)) + "." + e(payload)
		h := sha256.Sum256([]byte(in))
		r, s, _ := ecdsa.Sign(rand.Reader, ecPriv, h[:])
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return in + "." + e(sig)
	}
	cases := map[string]string{
		"wrong htm":          es.sign(t, nil, with(func(c map[string]any) { c["htm"] = "GET" })),
		"lower-case htm":     es.sign(t, nil, with(func(c map[string]any) { c["htm"] = "post" })),
		"wrong htu host":     es.sign(t, nil, with(func(c map[string]any) { c["htu"] = "https://evil.example.com/mcp" })),
		"wrong htu path":     es.sign(t, nil, with(func(c map[string]any) { c["htu"] = origin + "/mcp/other" })),
		"htu http scheme":    es.sign(t, nil, with(func(c map[string]any) { c["htu"] = "http://mcp.example.com/mcp" })),
		"htu userinfo":       es.sign(t, nil, with(func(c map[string]any) { c["htu"] = "https://a@mcp.example.com/mcp" })),
		"htu relative":       es.sign(t, nil, with(func(c map[string]any) { c["htu"] = "/mcp" })),
		"htu other port":     es.sign(t, nil, with(func(c map[string]any) { c["htu"] = "https://mcp.example.com:8443/mcp" })),
		"htu encoded slash":  es.sign(t, nil, with(func(c map[string]any) { c["htu"] = origin + "%2Fmcp" })),
		"ath other token":    es.sign(t, nil, with(func(c map[string]any) { c["ath"] = TokenHash("other") })),
		"no ath":             es.sign(t, nil, with(func(c map[string]any) { delete(c, "ath") })),
		"old iat":            es.sign(t, nil, with(func(c map[string]any) { c["iat"] = t0.Add(-6 * time.Minute).Unix() })),
		"future iat":         es.sign(t, nil, with(func(c map[string]any) { c["iat"] = t0.Add(6 * time.Minute).Unix() })),
		"string iat":         es.sign(t, nil, with(func(c map[string]any) { c["iat"] = "1790000000" })),
		"no jti":             es.sign(t, nil, with(func(c map[string]any) { delete(c, "jti") })),
		"long jti":           es.sign(t, nil, with(func(c map[string]any) { c["jti"] = strings.Repeat("x", 300) })),
		"typ jwt":            es.sign(t, map[jose.HeaderKey]any{"typ": "JWT"}, claims("j1")),
		"typ case variant":   es.sign(t, map[jose.HeaderKey]any{"typ": "DPoP+jwt"}, claims("j1")),
		"no typ":             es.sign(t, map[jose.HeaderKey]any{"typ": "-"}, claims("j1")),
		"crit":               es.sign(t, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}, claims("j1")),
		"RS512 not allowed":  rs.sign(t, nil, claims("j1")),
		"alg none":           hand(`{"typ":"dpop+jwt","alg":"none","jwk":`+pub+`}`, string(okPayload), nil),
		"HS256":              hand(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`, string(okPayload), []byte("x")),
		"private key in jwk": esSign(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+string(privJWK)+`}`, okPayload),
		"duplicate claim":    esSign(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+pub+`}`, []byte(strings.Replace(string(okPayload), `{`, `{"htm":"GET",`, 1))),
		"case-variant claim": esSign(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+pub+`}`, []byte(strings.Replace(string(okPayload), `{`, `{"HTM":"GET",`, 1))),
		"duplicate jwk":      esSign(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+pub+`,"jwk":`+pub+`}`, okPayload),
		"alg/key mismatch":   esSign(`{"typ":"dpop+jwt","alg":"ES384","jwk":`+pub+`}`, okPayload),
		"bad signature":      es.sign(t, nil, claims("j1"))[:20] + "x" + es.sign(t, nil, claims("j1"))[21:],
		"two dots more":      es.sign(t, nil, claims("j1")) + ".x",
		"huge":               strings.Repeat("a", MaxProofLen+1),
		"empty":              "",
	}
	// A signature by another key than the one in the header.
	other := newSigner(t, jose.ES256)
	good := es.sign(t, nil, claims("j1"))
	forged := other.sign(t, nil, claims("j1"))
	cases["signature by another key"] = good[:strings.LastIndexByte(good, '.')] + forged[strings.LastIndexByte(forged, '.'):]
	for name, proof := range cases {
		k := newChecker(t, nil)
		_, err := k.Check(context.Background(), in(proof))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want an invalid proof", name, err)
		}
	}
}

func TestProofReplayAndNonce(t *testing.T) {
	es := newSigner(t, jose.ES256)
	k := newChecker(t, nil)
	p := es.sign(t, nil, claims("once"))
	if _, err := k.Check(context.Background(), in(p)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Check(context.Background(), in(p)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("replayed proof: %v", err)
	}
	// A refused proof does not use up its jti.
	bad := in(es.sign(t, nil, claims("kept")))
	bad.Method = "GET"
	if _, err := k.Check(context.Background(), bad); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if _, err := k.Check(context.Background(), in(es.sign(t, nil, claims("kept")))); err != nil {
		t.Fatalf("jti used up by a refused proof: %v", err)
	}

	now := t0
	nonces := NewNonces([]byte("nonce-key-0123456789"), 5*time.Minute, 0)
	kn := newChecker(t, func(c *Config) { c.Nonces = nonces; c.Now = func() time.Time { return now } })
	if _, err := kn.Check(context.Background(), in(es.sign(t, nil, claims("n0")))); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("no nonce: %v", err)
	}
	n := nonces.Issue(now)
	c := claims("n1")
	c["nonce"] = n
	if _, err := kn.Check(context.Background(), in(es.sign(t, nil, c))); err != nil {
		t.Fatalf("with nonce: %v", err)
	}
	c = claims("n2")
	c["nonce"] = n[:len(n)-2] + "AA"
	if _, err := kn.Check(context.Background(), in(es.sign(t, nil, c))); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("forged nonce: %v", err)
	}
	other := NewNonces([]byte("another-replicas-key"), 5*time.Minute, 0)
	c = claims("n3")
	c["nonce"] = other.Issue(now)
	if _, err := kn.Check(context.Background(), in(es.sign(t, nil, c))); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("nonce under another key: %v", err)
	}
	if nonces.Due(n, now) || !nonces.Due(n, now.Add(3*time.Minute)) {
		t.Error("a nonce is due for rotation past half its lifetime, not before")
	}
	if nonces.Issue(now) == nonces.Issue(now) {
		t.Error("two nonces in one second are equal: predictable")
	}
	now = t0.Add(6 * time.Minute)
	c = claims("n4")
	c["nonce"] = n
	c["iat"] = now.Unix()
	if _, err := kn.Check(context.Background(), in(es.sign(t, nil, c))); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("expired nonce: %v", err)
	}
}

func TestSameURI(t *testing.T) {
	for _, c := range []struct {
		htu, path string
		ok        bool
	}{
		{"https://mcp.example.com/mcp", "/mcp", true},
		{"HTTPS://MCP.Example.COM/mcp", "/mcp", true},
		{"https://mcp.example.com:443/mcp", "/mcp", true},
		{"https://mcp.example.com/mcp?x=1#f", "/mcp", true},
		{"https://mcp.example.com/%6Dcp", "/mcp", true},
		{"https://mcp.example.com/a%2fb", "/a%2Fb", true},
		{"https://mcp.example.com", "/", true},
		{"https://mcp.example.com/MCP", "/mcp", false},
		{"https://mcp.example.com/mcp/", "/mcp", false},
		{"https://mcp.example.com/a%2Fb", "/a/b", false},
		{"https://mcp.example.com/mcp%", "/mcp", false},
		{"https://mcp.example.com./mcp", "/mcp", false},
		{"https://mcp.example.com/m cp", "/m cp", false},
		{"https://mcp.example.com\\@evil/mcp", "/mcp", false},
		{"ftp://mcp.example.com/mcp", "/mcp", false},
	} {
		if got := SameURI(c.htu, origin, c.path); got != c.ok {
			t.Errorf("SameURI(%q, %q) = %v", c.htu, c.path, got)
		}
	}
}

func TestReplayMemoryBounded(t *testing.T) {
	r := NewReplay(nil, 1000, nil, func() time.Time { return t0 })
	for i := 0; i < 100_000; i++ {
		var id [32]byte
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		if first, _ := r.FirstUse(context.Background(), id, time.Minute, false); !first {
			t.Fatalf("id %d seen before", i)
		}
	}
	if n := len(r.local.m); n != 1000 || len(r.local.ring) != 1000 {
		t.Fatalf("memory holds %d entries (ring %d), bound 1000", n, len(r.local.ring))
	}
	if r.Evicted() != 99_000 {
		t.Errorf("evicted %d", r.Evicted())
	}
}

type downStore struct{}

func (downStore) FirstUse(context.Context, [32]byte, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}

func TestReplayStoreDown(t *testing.T) {
	var id [32]byte
	r := NewReplay(downStore{}, 10, nil, nil)
	if _, err := r.FirstUse(context.Background(), id, time.Minute, true); !errors.Is(err, ErrReplayUnavailable) {
		t.Fatalf("deny mode: %v", err)
	}
	if first, err := r.FirstUse(context.Background(), id, time.Minute, false); !first || err != nil {
		t.Fatalf("iat_window mode, first use: %v %v", first, err)
	}
	if first, _ := r.FirstUse(context.Background(), id, time.Minute, false); first {
		t.Fatal("iat_window mode forgot the replica's own record")
	}
}
