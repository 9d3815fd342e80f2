// Package demoas is a small OAuth 2.0 authorization server for the `mcp-authz demo` command and
// for tests that need a real HTTP issuer. It is a demo: it issues tokens to any client that
// knows a published secret, keeps everything in memory, and nothing in `serve` enables it.
//
// It implements just enough of RFC 8414 (metadata, also served as OIDC discovery), RFC 7517
// (JWKS), RFC 6749 §4.4 (client_credentials), RFC 8707 (resource indicators), RFC 9068 (JWT
// access tokens), RFC 7662 (introspection of its opaque tokens), and sender-constrained tokens:
// RFC 9449 DPoP proofs at the token endpoint and RFC 8705 certificate-bound tokens (dpop.go).
package demoas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Client is a registered client.
type Client struct {
	ID, Secret string
	Scopes     []string // scopes this client may be granted
	Opaque     bool     // tokens are opaque strings validated through introspection
	// Claims are added to the client's JWTs (groups, say), never replacing a registered one.
	Claims map[string]any
	// TokenExchange lets the client use the RFC 8693 token-exchange grant (exchange.go).
	TokenExchange bool
	DPoP          bool // token requests must carry a DPoP proof (any client's proof binds its token)
	MTLS          bool // tokens are bound to the TLS client certificate presented at the token endpoint
}

// Config configures a Server.
type Config struct {
	Issuer               string // exactly what goes in iss and the metadata's issuer
	Clients              []Client
	Resources            []string // resource indicators tokens may be issued for
	DefaultResource      string   // used when a token request names none
	TokenTTL             time.Duration
	IntrospectionClients map[string]string // client id → secret allowed to call /introspect
	Now                  func() time.Time
	DPoPWindow           time.Duration // ± around now for a token request proof's iat; default 5m
	DPoPNonce            bool          // proofs must carry a nonce from this server (RFC 9449 §8)
}

// MintOptions shape a token minted directly by a test.
type MintOptions struct {
	Key          string // "rsa" (default), "ec" or "ed"
	Typ          string // default "at+jwt"; "-" omits it
	KID          string // override; "-" omits it
	ExtraHeaders map[string]any
	Bind         Binding // adds cnf (RFC 9449 jkt, RFC 8705 x5t#S256); the claims must have none
}

// Counts are per-endpoint request counters.
type Counts struct{ Metadata, JWKS, Token, Introspect int64 }

type opaqueToken struct {
	sub, clientID, resource string
	scopes                  []string
	iat, exp                time.Time
	bind                    Binding
}

type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

// Server is the demo authorization server.
type Server struct {
	cfg       Config
	path      string // issuer path, "" for an origin-only issuer
	now       func() time.Time
	down      atomic.Bool
	count     struct{ metadata, jwks, token, introspect atomic.Int64 }
	exchanges atomic.Int64

	mu      sync.Mutex
	keys    map[string]signingKey // by kid; all published
	current string                // kid of the RSA key that signs issued tokens
	nextRSA int
	opaque  map[string]opaqueToken
	dpop    dpopState // DPoP proofs seen at the token endpoint, nonce key
}

// New generates keys (RSA "rsa-1", EC P-256 "ec-1", Ed25519 "ed-1") and returns the server.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("demoas: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	s := &Server{cfg: cfg, path: strings.TrimSuffix(u.Path, "/"), now: cfg.Now, keys: map[string]signingKey{}, opaque: map[string]opaqueToken{}}
	if s.now == nil {
		s.now = time.Now
	}
	if _, err := s.RotateKey(); err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s.keys["ec-1"] = signingKey{"ec-1", jose.ES256, ec}
	s.keys["ed-1"] = signingKey{"ed-1", jose.EdDSA, ed}
	return s, nil
}

// RotateKey makes a new RSA key current; earlier keys stay published.
func (s *Server) RotateKey() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextRSA++
	kid := fmt.Sprintf("rsa-%d", s.nextRSA)
	s.keys[kid] = signingKey{kid, jose.RS256, k}
	s.current = kid
	return kid, nil
}

// SetDown makes every endpoint answer 503 while down.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Counts returns the request counters.
func (s *Server) Counts() Counts {
	return Counts{s.count.metadata.Load(), s.count.jwks.Load(), s.count.token.Load(), s.count.introspect.Load()}
}

// Handler serves the endpoints under the issuer's path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		s.count.metadata.Add(1)
		writeJSON(w, http.StatusOK, s.metadata())
	}
	// RFC 8414 §3.1 inserts the well-known segment before the issuer's path; OIDC appends it.
	mux.HandleFunc("GET /.well-known/oauth-authorization-server"+s.path, meta)
	mux.HandleFunc("GET "+s.path+"/.well-known/openid-configuration", meta)
	mux.HandleFunc("GET "+s.path+"/jwks", s.jwks)
	mux.HandleFunc("POST "+s.path+"/token", s.token)
	mux.HandleFunc("POST "+s.path+"/introspect", s.introspect)
	mux.HandleFunc(s.path+"/authorize", func(w http.ResponseWriter, _ *http.Request) {
		oauthError(w, http.StatusBadRequest, "unsupported_response_type", "this demo authorization server supports client_credentials only")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the demo authorization server is down")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) metadata() map[string]any {
	iss := s.cfg.Issuer
	scopes := []string{}
	seen := map[string]bool{}
	for _, c := range s.cfg.Clients {
		for _, sc := range c.Scopes {
			if !seen[sc] && sc != "offline_access" {
				seen[sc] = true
				scopes = append(scopes, sc)
			}
		}
	}
	auth := []string{"client_secret_basic", "client_secret_post"}
	m := map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + "/authorize",
		"token_endpoint":                                iss + "/token",
		"jwks_uri":                                      iss + "/jwks",
		"introspection_endpoint":                        iss + "/introspect",
		"response_types_supported":                      []string{"code"},
		"grant_types_supported":                         []string{"client_credentials", grantTokenExchange},
		"code_challenge_methods_supported":              []string{"S256"},
		"token_endpoint_auth_methods_supported":         auth,
		"introspection_endpoint_auth_methods_supported": auth,
		"scopes_supported":                              scopes,
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{"RS256"},
	}
	s.bindingMetadata(m)
	return m
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	s.count.jwks.Add(1)
	s.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// clientAuth reads client_secret_basic (RFC 6749 §2.3.1: id and secret form-urlencoded before
// base64) or client_secret_post credentials.
func clientAuth(r *http.Request) (id, secret string, basic bool) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		return id, secret, true
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), false
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.count.token.Add(1)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the request body is not a form")
		return
	}
	id, secret, basic := clientAuth(r)
	var client *Client
	for i := range s.cfg.Clients {
		c := &s.cfg.Clients[i]
		if c.ID == id && subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) == 1 {
			client = c
		}
	}
	if client == nil {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="demoas"`)
		}
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if r.PostForm.Get("grant_type") == grantTokenExchange {
		s.exchange(w, r, client)
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, sc := range scopes {
		if !slices.Contains(client.Scopes, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q is not allowed for this client", sc))
			return
		}
	}
	resources := r.PostForm["resource"]
	resource := s.cfg.DefaultResource
	switch {
	case len(resources) > 1:
		oauthError(w, http.StatusBadRequest, "invalid_target", "one resource per request")
		return
	case len(resources) == 1:
		resource = resources[0]
		if !slices.Contains(s.cfg.Resources, resource) {
			oauthError(w, http.StatusBadRequest, "invalid_target", "unknown resource")
			return
		}
	}
	if resource == "" {
		oauthError(w, http.StatusBadRequest, "invalid_target", "a resource is required")
		return
	}
	// Last of the checks, so that a request refused for another reason spends no proof.
	bind, ok := s.tokenBinding(w, r, client)
	if !ok {
		return
	}
	now := s.now()
	var tok string
	if client.Opaque {
		tok = s.IssueOpaqueBound(client.ID, client.ID, scopes, resource, s.cfg.TokenTTL, bind)
	} else {
		claims := map[string]any{
			"iss": s.cfg.Issuer, "sub": client.ID, "aud": resource, "client_id": client.ID,
			"iat": now.Unix(), "exp": now.Add(s.cfg.TokenTTL).Unix(), "jti": randomString(16),
		}
		if len(scopes) > 0 {
			claims["scope"] = strings.Join(scopes, " ")
		}
		for k, v := range client.Claims {
			if _, set := claims[k]; !set {
				claims[k] = v
			}
		}
		var err error
		if tok, err = s.Mint(claims, MintOptions{Bind: bind}); err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error", "signing failed")
			return
		}
	}
	resp := map[string]any{"access_token": tok, "token_type": bind.tokenType(), "expires_in": int(s.cfg.TokenTTL.Seconds())}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// Mint signs arbitrary claims, for tests.
func (s *Server) Mint(claims map[string]any, opt MintOptions) (string, error) {
	s.mu.Lock()
	var k signingKey
	switch opt.Key {
	case "", "rsa":
		k = s.keys[s.current]
	case "ec":
		k = s.keys["ec-1"]
	case "ed":
		k = s.keys["ed-1"]
	default:
		s.mu.Unlock()
		return "", fmt.Errorf("demoas: unknown key %q", opt.Key)
	}
	s.mu.Unlock()
	so := (&jose.SignerOptions{}).WithType(jose.ContentType("at+jwt"))
	switch opt.Typ {
	case "":
	case "-":
		delete(so.ExtraHeaders, jose.HeaderType)
	default:
		so = so.WithType(jose.ContentType(opt.Typ))
	}
	for name, v := range opt.ExtraHeaders {
		so = so.WithHeader(jose.HeaderKey(name), v)
	}
	kid := k.kid
	switch opt.KID {
	case "":
	case "-":
		kid = ""
	default:
		kid = opt.KID
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: kid}}, so)
	if err != nil {
		return "", err
	}
	if claims, err = opt.Bind.withCnf(claims); err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// IssueOpaque registers an active opaque token, for tests and opaque clients.
func (s *Server) IssueOpaque(subject, clientID string, scopes []string, resource string, ttl time.Duration) string {
	tok := randomString(32)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.opaque { // prune, so memory stays bounded by live tokens
		if !now.Before(t.exp) {
			delete(s.opaque, k)
		}
	}
	s.opaque[tok] = opaqueToken{sub: subject, clientID: clientID, resource: resource, scopes: scopes, iat: now, exp: now.Add(ttl)}
	return tok
}

// Revoke makes an opaque token inactive.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	delete(s.opaque, token)
	s.mu.Unlock()
}

// introspect answers RFC 7662 §2.2 for its opaque tokens; the caller must authenticate
// (§2.1: "the endpoint MUST also require some form of authorization").
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	s.count.introspect.Add(1)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the request body is not a form")
		return
	}
	id, secret, _ := clientAuth(r)
	want, ok := s.cfg.IntrospectionClients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="demoas"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "introspection requires client authentication")
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	t, found := s.opaque[tok]
	s.mu.Unlock()
	if !found || !s.now().Before(t.exp) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	resp := map[string]any{
		"active": true, "client_id": t.clientID, "sub": t.sub, "aud": t.resource, "iss": s.cfg.Issuer,
		"exp": t.exp.Unix(), "iat": t.iat.Unix(), "token_type": t.bind.tokenType(),
	}
	if t.bind.bound() {
		resp["cnf"] = t.bind.cnf() // RFC 9449 §6.2, RFC 8705 §3.2
	}
	if len(t.scopes) > 0 {
		resp["scope"] = strings.Join(t.scopes, " ")
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("demoas: no randomness")) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
