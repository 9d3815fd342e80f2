// Package upstream mints the credentials mcp-authz hands an upstream MCP server in place of the
// caller's token, which MCP forbids passing through:
//
//   - Exchange: RFC 8693 token exchange of the caller's token at its issuer's token endpoint,
//     for a token scoped to a downstream API, cached in process and (encrypted) in Redis;
//   - ClientCredentials: one RFC 6749 §4.4 service token per resource, refreshed before expiry;
//   - Static: a configured secret in a configured header.
//
// The client authenticates to the token endpoint with client_secret_basic, client_secret_post
// or private_key_jwt (RFC 7523 §2.2). No token or secret ever appears in an error, a log line
// or a span: errors name the endpoint's answer (status, OAuth error code) only.
package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz/asmeta"
	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
)

// ErrRefused marks a token request the authorization server answered with an OAuth error
// (RFC 6749 §5.2): asking again will not help. Other failures wrap identity.ErrUnavailable.
var ErrRefused = errors.New("token request refused")

// Auth methods of the client at the token endpoint.
const (
	AuthBasic         = "client_secret_basic"
	AuthPost          = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
)

// ClientConfig is how mcp-authz authenticates to a token endpoint.
type ClientConfig struct {
	ClientID string
	// Secret for client_secret_basic / client_secret_post.
	Secret     string
	AuthMethod string // default client_secret_basic
	// PrivateKeyPEM for private_key_jwt: a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) key; RS256 or
	// ES256 by key type. KeyID is its kid, if the AS needs one.
	PrivateKeyPEM []byte
	KeyID         string
	// TokenEndpoint overrides the token_endpoint of the issuer's metadata.
	TokenEndpoint string
	HTTPClient    *http.Client // default: 10 s timeout
	// HTTPClientFor, when set, gives the client for calls to one issuer (metrics and spans
	// by issuer); HTTPClient otherwise.
	HTTPClientFor func(issuer string) *http.Client
	Timeout       time.Duration
	Now           func() time.Time
}

// Client calls token endpoints.
type Client struct {
	cfg    ClientConfig
	signer jose.Signer
	now    func() time.Time

	mu        sync.Mutex
	endpoints map[string]string // by issuer; only configured issuers reach here
	discover  singleflight.Group
}

// NewClient checks the configuration and parses the private key.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("client_id is required")
	}
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = AuthBasic
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	c := &Client{cfg: cfg, now: cfg.Now, endpoints: map[string]string{}}
	if c.now == nil {
		c.now = time.Now
	}
	switch cfg.AuthMethod {
	case AuthBasic, AuthPost:
		if cfg.Secret == "" {
			return nil, errors.New("client_secret is required with " + cfg.AuthMethod)
		}
	case AuthPrivateKeyJWT:
		key, alg, err := parseKey(cfg.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("private_key: %w", err)
		}
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if cfg.KeyID != "" {
			opts = opts.WithHeader(jose.HeaderKey("kid"), cfg.KeyID)
		}
		if c.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts); err != nil {
			return nil, fmt.Errorf("private_key: %w", err)
		}
	default:
		return nil, fmt.Errorf("auth_method %q: use client_secret_basic, client_secret_post or private_key_jwt", cfg.AuthMethod)
	}
	return c, nil
}

func parseKey(b []byte) (crypto.Signer, jose.SignatureAlgorithm, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", errors.New("not a PEM key")
	}
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, "", errors.New("the PEM block is not a private key it can read") // never echo key bytes
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, jose.RS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve.Params().BitSize != 256 {
			return nil, "", errors.New("EC keys must be P-256 (ES256)")
		}
		return k, jose.ES256, nil
	}
	return nil, "", errors.New("only RSA and EC P-256 keys are supported")
}

func (c *Client) httpClient(issuer string) *http.Client {
	if c.cfg.HTTPClientFor != nil {
		if hc := c.cfg.HTTPClientFor(issuer); hc != nil {
			return hc
		}
	}
	return c.cfg.HTTPClient
}

// endpoint is the issuer's token endpoint: configured, or from its metadata (RFC 8414), which
// is fetched once per issuer while it succeeds and again after a failure.
func (c *Client) endpoint(ctx context.Context, issuer string) (string, error) {
	if c.cfg.TokenEndpoint != "" {
		return c.cfg.TokenEndpoint, nil
	}
	c.mu.Lock()
	ep, ok := c.endpoints[issuer]
	c.mu.Unlock()
	if ok {
		return ep, nil
	}
	v, err, _ := c.discover.Do(issuer, func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		md, err := asmeta.Discover(dctx, c.httpClient(issuer), issuer)
		if err != nil {
			return "", err
		}
		if md.TokenEndpoint == "" {
			return "", fmt.Errorf("issuer %s publishes no token_endpoint: %w", issuer, identity.ErrUnavailable)
		}
		if u, err := url.Parse(md.TokenEndpoint); err != nil || !u.IsAbs() || u.Host == "" {
			return "", fmt.Errorf("issuer %s: token_endpoint is not an absolute URL: %w", issuer, identity.ErrUnavailable)
		}
		c.mu.Lock()
		c.endpoints[issuer] = md.TokenEndpoint
		c.mu.Unlock()
		return md.TokenEndpoint, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// Token is a token endpoint's successful answer.
type Token struct {
	AccessToken     string
	TokenType       string
	IssuedTokenType string
	Expiry          time.Time // zero when the AS said nothing (and the token is not a JWT)
	Scopes          []string  // as granted; nil when the AS did not say
	Act             string    // the token's act claim (RFC 8693 §4.1) as compact JSON; "" when none or opaque
}

type tokenResponse struct {
	AccessToken     string  `json:"access_token"`
	TokenType       string  `json:"token_type"`
	IssuedTokenType string  `json:"issued_token_type"`
	ExpiresIn       *int64  `json:"expires_in"`
	Scope           *string `json:"scope"`
}

type errorResponse struct {
	Error string `json:"error"`
}

// maxResponse caps a token endpoint's answer.
const maxResponse = 64 << 10

// Request posts form to the issuer's token endpoint with the client's authentication. Its
// errors carry no token and no secret.
func (c *Client) Request(ctx context.Context, issuer string, form url.Values) (Token, error) {
	ep, err := c.endpoint(ctx, issuer)
	if err != nil {
		return Token{}, err
	}
	switch c.cfg.AuthMethod {
	case AuthPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.Secret)
	case AuthPrivateKeyJWT:
		a, err := c.assertion(ep)
		if err != nil {
			return Token{}, fmt.Errorf("client assertion: %v: %w", err, identity.ErrUnavailable)
		}
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, ep, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, fmt.Errorf("token endpoint: bad request: %w", identity.ErrUnavailable)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.cfg.AuthMethod == AuthBasic {
		// RFC 6749 §2.3.1: both form-urlencoded before the base64.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.Secret))
	}
	resp, err := c.httpClient(issuer).Do(req)
	if err != nil {
		// *url.Error names the URL (ours, from config or metadata), never the body.
		return Token{}, fmt.Errorf("token endpoint: %v: %w", errors.Unwrap(err), identity.ErrUnavailable)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return Token{}, fmt.Errorf("token endpoint: reading the answer: %w", identity.ErrUnavailable)
	}
	if len(body) > maxResponse {
		return Token{}, fmt.Errorf("token endpoint: answer over %d bytes: %w", maxResponse, identity.ErrUnavailable)
	}
	jsonType := false
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		jsonType = true
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		var e errorResponse
		code := "unreadable error"
		if jsonType && strictjson.Unmarshal(body, &e) == nil && oauthCodeOK(e.Error) {
			code = e.Error
		}
		return Token{}, fmt.Errorf("%w: status %d, error %s", ErrRefused, resp.StatusCode, code)
	case resp.StatusCode != http.StatusOK:
		return Token{}, fmt.Errorf("token endpoint: status %d: %w", resp.StatusCode, identity.ErrUnavailable)
	case !jsonType:
		return Token{}, fmt.Errorf("token endpoint: answer is not application/json: %w", identity.ErrUnavailable)
	}
	var tr tokenResponse
	if err := strictjson.Unmarshal(body, &tr); err != nil {
		return Token{}, fmt.Errorf("token endpoint: answer is not one unambiguous JSON object: %w", identity.ErrUnavailable)
	}
	if tr.AccessToken == "" || !printable(tr.AccessToken) || len(tr.AccessToken) > 16<<10 {
		return Token{}, fmt.Errorf("token endpoint: answer has no usable access_token: %w", identity.ErrUnavailable)
	}
	// RFC 8693 §2.2.1: Bearer, or N_A for a token that is not an access token.
	if !strings.EqualFold(tr.TokenType, "bearer") && tr.TokenType != "N_A" {
		return Token{}, fmt.Errorf("%w: token_type %q is not Bearer", ErrRefused, safe(tr.TokenType))
	}
	t := Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, IssuedTokenType: tr.IssuedTokenType}
	now := c.now()
	if tr.ExpiresIn != nil {
		if *tr.ExpiresIn <= 0 {
			return Token{}, fmt.Errorf("token endpoint: expires_in %d: %w", *tr.ExpiresIn, identity.ErrUnavailable)
		}
		t.Expiry = now.Add(time.Duration(min(*tr.ExpiresIn, 366*86400)) * time.Second)
	}
	if tr.Scope != nil {
		t.Scopes = strings.Fields(*tr.Scope)
	}
	exp, act := jwtClaims(tr.AccessToken)
	if !exp.IsZero() && (t.Expiry.IsZero() || exp.Before(t.Expiry)) {
		t.Expiry = exp
	}
	t.Act = act
	return t, nil
}

// assertion is an RFC 7523 §2.2 client assertion for the token endpoint ep.
func (c *Client) assertion(ep string) (string, error) {
	now := c.now()
	var jti [16]byte
	rand.Read(jti[:])
	claims, _ := json.Marshal(map[string]any{
		"iss": c.cfg.ClientID, "sub": c.cfg.ClientID, "aud": ep,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	})
	jws, err := c.signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// jwtClaims reads exp and act from a JWT-shaped token without verifying it: it came straight
// from the token endpoint over the connection the client authenticated, and mcp-authz is not
// its audience. An opaque token gives nothing.
func jwtClaims(tok string) (exp time.Time, act string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return
	}
	var c struct {
		Exp *float64       `json:"exp"`
		Act jsontext.Value `json:"act"`
	}
	if strictjson.Unmarshal(payload, &c) != nil {
		return
	}
	if c.Exp != nil && *c.Exp > 0 {
		exp = time.Unix(int64(*c.Exp), 0)
	}
	if len(c.Act) > 0 && c.Act[0] == '{' {
		if err := c.Act.Compact(); err == nil && printable(string(c.Act)) {
			act = string(c.Act)
		}
	}
	return
}

// oauthCodeOK: RFC 6749 §5.2 error codes are %x20-21 / %x23-5B / %x5D-7E; anything else is not
// repeated into a log.
func oauthCodeOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func safe(s string) string {
	if oauthCodeOK(s) {
		return s
	}
	return "?"
}

// printable: visible ASCII and space, so the value can go in a header.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
