// Package introspect verifies opaque access tokens through OAuth 2.0 Token Introspection
// (RFC 7662): POST the token to the authorization server's introspection endpoint with client
// authentication (§2.1, RFC 6749 §2.3.1), and turn an active answer (§2.2) into an Identity.
// Even an active answer is re-checked locally: iss, exp, nbf and token_type here, aud and
// scope per resource by the decision core, as for JWTs.
//
// An endpoint that cannot answer (down, slow, 5xx, our credentials refused, garbage) makes the
// token's validity unknown: that is identity.ErrUnavailable, never ErrInvalid, so it is never
// cached as invalid. Only active:false, or an active token that fails a local check, is invalid.
package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz/asmeta"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Config configures a Verifier.
type Config struct {
	Issuer        string // the AS: expected iss, and where the endpoint is discovered
	Endpoint      string // default: introspection_endpoint from the AS metadata, fetched lazily
	ClientID      string
	ClientSecret  string // never logged or put in errors
	AuthMethod    string // "client_secret_basic" (default) or "client_secret_post"
	Timeout       time.Duration
	MaxResponse   int64
	MaxConcurrent int           // calls in flight per issuer; default 64
	QueueWait     time.Duration // how long an excess call waits for a slot; default 100ms
	Claims        []string      // extra claims copied into Identity.Claims
	HTTPClient    *http.Client
	Now           func() time.Time
	Logger        *slog.Logger
}

// Verifier introspects tokens at one authorization server.
type Verifier struct {
	cfg   Config
	slots chan struct{}
	log   *slog.Logger

	discover   singleflight.Group
	mu         sync.Mutex
	endpoint   string
	nextTry    time.Time
	backoff    time.Duration
	lastErrMsg string
}

// New checks the configuration; it performs no network I/O.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	if u, err := url.Parse(cfg.Issuer); err != nil || !u.IsAbs() {
		errs = append(errs, errors.New("introspect: issuer: absolute URL required"))
	}
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err != nil || !u.IsAbs() {
			errs = append(errs, errors.New("introspect: endpoint: absolute URL required"))
		}
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		errs = append(errs, errors.New("introspect: client credentials required (RFC 7662 §2.1)"))
	}
	switch cfg.AuthMethod {
	case "":
		cfg.AuthMethod = "client_secret_basic"
	case "client_secret_basic", "client_secret_post":
	default:
		errs = append(errs, fmt.Errorf("introspect: auth method %q: use client_secret_basic or client_secret_post", cfg.AuthMethod))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = 64 << 10
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 64
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = 100 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent), log: cfg.Logger, endpoint: cfg.Endpoint}, nil
}

// Issuer is the authorization server this verifier asks.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: introspect: "+format, append([]any{identity.ErrUnavailable}, args...)...)
}

func invalid(reason string) error {
	return fmt.Errorf("%w: introspect: %s", identity.ErrInvalid, reason)
}

// endpointURL discovers the endpoint once, backing off from 1 s to 30 s between failures.
func (v *Verifier) endpointURL(ctx context.Context) (string, error) {
	v.mu.Lock()
	ep, wait, last := v.endpoint, v.nextTry, v.lastErrMsg
	v.mu.Unlock()
	if ep != "" {
		return ep, nil
	}
	if v.cfg.Now().Before(wait) {
		return "", unavailable("endpoint not discovered yet (%s)", last)
	}
	r, err, _ := v.discover.Do("", func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		m, err := asmeta.Discover(dctx, v.cfg.HTTPClient, v.cfg.Issuer)
		if err == nil && m.IntrospectionEndpoint == "" {
			err = errors.New("the metadata has no introspection_endpoint")
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if err != nil {
			v.backoff = min(max(2*v.backoff, time.Second), 30*time.Second)
			v.nextTry = v.cfg.Now().Add(v.backoff)
			v.lastErrMsg = err.Error()
			return "", unavailable("discovery: %v", err)
		}
		v.endpoint = m.IntrospectionEndpoint
		return v.endpoint, nil
	})
	if err != nil {
		return "", err
	}
	return r.(string), nil
}

// response holds the RFC 7662 §2.2 members we use; Active is a pointer because its absence
// is a broken server, not an inactive token.
type response struct {
	Active    *bool           `json:"active"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	Username  string          `json:"username"`
	TokenType string          `json:"token_type"`
	Exp       *json.Number    `json:"exp"`
	Nbf       *json.Number    `json:"nbf"`
	Sub       string          `json:"sub"`
	Aud       json.RawMessage `json:"aud"`
	Iss       string          `json:"iss"`
}

// Verify introspects token.
func (v *Verifier) Verify(ctx context.Context, token string) (identity.Identity, error) {
	ep, err := v.endpointURL(ctx)
	if err != nil {
		return identity.Identity{}, err
	}
	// Bound the load on the IdP: a slot, or a short wait for one, or unavailable.
	select {
	case v.slots <- struct{}{}:
	default:
		t := time.NewTimer(v.cfg.QueueWait)
		select {
		case v.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return identity.Identity{}, unavailable("too many introspection calls in flight")
		case <-ctx.Done():
			t.Stop()
			return identity.Identity{}, unavailable("cancelled while waiting for a slot")
		}
	}
	defer func() { <-v.slots }()

	raw, err := v.call(ctx, ep, token)
	if err != nil {
		v.log.Warn("introspection failed", "issuer", v.cfg.Issuer, "error", err)
		return identity.Identity{}, err
	}
	return v.identity(raw)
}

func (v *Verifier) call(ctx context.Context, ep, token string) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if v.cfg.AuthMethod == "client_secret_post" {
		form.Set("client_id", v.cfg.ClientID)
		form.Set("client_secret", v.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, ep, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable("bad endpoint")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.cfg.AuthMethod == "client_secret_basic" {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(v.cfg.ClientID), url.QueryEscape(v.cfg.ClientSecret))
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		// url.Error carries the URL only; the form (token, secret) is never in it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, unavailable("request: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, unavailable("endpoint answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.cfg.MaxResponse+1))
	if err != nil {
		return nil, unavailable("reading the answer: %v", err)
	}
	if int64(len(body)) > v.cfg.MaxResponse {
		return nil, unavailable("answer larger than %d bytes", v.cfg.MaxResponse)
	}
	return body, nil
}

func (v *Verifier) identity(raw []byte) (identity.Identity, error) {
	var r response
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return identity.Identity{}, unavailable("answer is not a JSON object")
	}
	if r.Active == nil {
		return identity.Identity{}, unavailable("answer has no boolean active (RFC 7662 §2.2)")
	}
	if !*r.Active {
		return identity.Identity{}, invalid("inactive")
	}
	if r.Iss != "" && r.Iss != v.cfg.Issuer {
		return identity.Identity{}, invalid("iss is another issuer")
	}
	// RFC 9449 §7.2: a DPoP-bound token presented as a Bearer token is refused.
	if r.TokenType != "" && !strings.EqualFold(r.TokenType, "Bearer") {
		return identity.Identity{}, invalid("token_type is not Bearer")
	}
	now := v.cfg.Now()
	id := identity.Identity{
		Issuer: v.cfg.Issuer, Subject: r.Sub, ClientID: r.ClientID,
		Scopes: strings.Fields(r.Scope), Source: identity.SourceIntrospection,
	}
	if r.Exp != nil {
		exp, err := numericDate(*r.Exp)
		if err != nil {
			return identity.Identity{}, unavailable("exp is not a number")
		}
		if !now.Before(exp) {
			return identity.Identity{}, invalid("expired")
		}
		id.Expiry = exp
	}
	if r.Nbf != nil {
		nbf, err := numericDate(*r.Nbf)
		if err != nil {
			return identity.Identity{}, unavailable("nbf is not a number")
		}
		if now.Before(nbf) {
			return identity.Identity{}, invalid("not yet valid")
		}
		id.NotBefore = nbf
	}
	// No aud leaves Audience empty, which no resource accepts: MCP requires audience binding,
	// so an AS must say whom the token is for.
	switch a := strings.TrimSpace(string(r.Aud)); {
	case a == "" || a == "null":
	case strings.HasPrefix(a, "["):
		if err := json.Unmarshal(r.Aud, &id.Audience); err != nil {
			return identity.Identity{}, unavailable("aud is neither a string nor an array of strings")
		}
	default:
		var s string
		if err := json.Unmarshal(r.Aud, &s); err != nil {
			return identity.Identity{}, unavailable("aud is neither a string nor an array of strings")
		}
		id.Audience = []string{s}
	}
	if len(v.cfg.Claims) > 0 {
		var all map[string]any
		if json.Unmarshal(raw, &all) == nil {
			for _, c := range v.cfg.Claims {
				if s, ok := stringify(all[c]); ok {
					if id.Claims == nil {
						id.Claims = map[string]string{}
					}
					id.Claims[c] = s
				}
			}
		}
	}
	return id, nil
}

func numericDate(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(f), 0), nil
}

func stringify(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}
