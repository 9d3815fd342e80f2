package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testKey is a real signing key of the test issuer.
type testKey struct {
	kid    string
	alg    jose.SignatureAlgorithm
	priv   crypto.Signer
	jwkAlg string // alg published in the JWKS; empty publishes none
	use    string // use published in the JWKS
	hmac   []byte // signs with HMAC instead of priv (attack tokens only)
}

// Keys are generated once per test binary: RSA-2048 generation is the slowest thing here.
var (
	keysOnce         sync.Once
	rsaKey, rsaKey2  *rsa.PrivateKey
	ecKey, ecKey384  *ecdsa.PrivateKey
	edKey            ed25519.PrivateKey
	evilRSA          *rsa.PrivateKey
	generatedAt      = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	discoveryRFC8414 = "rfc8414"
	discoveryOIDC    = "oidc"
	discoveryNone    = "none"
)

func genKeys() {
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		evilRSA, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecKey384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
}

// testIssuer is an httptest authorization server with discovery (RFC 8414, OIDC or none)
// and a JWKS it can rotate, break, or stop serving; it counts what it is asked.
type testIssuer struct {
	*httptest.Server
	discovery string

	mu   sync.Mutex
	keys []testKey
	down bool // JWKS answers 503
	hold chan struct{}
	raw  string // when set, served as the JWKS verbatim
	cc   string // Cache-Control of the JWKS response, when set

	jwksHits, discoveryHits atomic.Int32
}

func newIssuer(t testing.TB, discovery string, keys ...testKey) *testIssuer {
	t.Helper()
	genKeys()
	is := &testIssuer{discovery: discovery, keys: keys}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		is.discoveryHits.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": is.URL + "/jwks"})
	}
	switch discovery {
	case discoveryRFC8414:
		mux.HandleFunc("GET /.well-known/oauth-authorization-server", meta)
	case discoveryOIDC:
		mux.HandleFunc("GET /.well-known/openid-configuration", meta)
	}
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		down, hold, raw, cc := is.down, is.hold, is.raw, is.cc
		set := is.jwksLocked()
		is.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if raw != "" {
			w.Write([]byte(raw))
			return
		}
		json.NewEncoder(w).Encode(set)
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	return is
}

func (is *testIssuer) jwksLocked() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.jwkAlg, Use: k.use})
	}
	return set
}

func (is *testIssuer) addKey(k testKey) {
	is.mu.Lock()
	is.keys = append(is.keys, k)
	is.mu.Unlock()
}

func (is *testIssuer) setDown(down bool) {
	is.mu.Lock()
	is.down = down
	is.mu.Unlock()
}

func (is *testIssuer) setRaw(raw string) {
	is.mu.Lock()
	is.raw = raw
	is.mu.Unlock()
}

// clock is a settable clock, so tests move time instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: generatedAt} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mint signs claims with k, adding headers (typ defaults to at+jwt; a "typ" of "" omits it).
func mint(t testing.TB, k testKey, claims map[string]any, headers map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	typ := any("at+jwt")
	if v, ok := headers["typ"]; ok {
		typ = v
	}
	if typ != "" {
		opts.WithHeader(jose.HeaderType, typ)
	}
	for h, v := range headers {
		if h != "typ" {
			opts.WithHeader(jose.HeaderKey(h), v)
		}
	}
	var raw any = k.priv
	if k.hmac != nil {
		raw = k.hmac
	}
	sk := raw
	if k.kid != "" {
		sk = jose.JSONWebKey{Key: raw, KeyID: k.kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: sk}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor returns a good RFC 9068 claim set for the issuer at the clock's time.
func claimsFor(iss string, now time.Time) map[string]any {
	return map[string]any{
		"iss":       iss,
		"sub":       "user-1",
		"aud":       "https://mcp.example.com/mcp",
		"client_id": "client-1",
		"iat":       now.Unix(),
		"exp":       now.Add(5 * time.Minute).Unix(),
		"jti":       "jti-1",
		"scope":     "mcp:read mcp:write",
	}
}
