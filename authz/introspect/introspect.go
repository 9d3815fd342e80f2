// Package introspect verifies opaque access tokens through OAuth 2.0 Token Introspection.
//
// It implements the protected-resource side of:
//   - RFC 7662 §2.1: the token is POSTed as an application/x-www-form-urlencoded form with
//     token_type_hint=access_token, and the call is authenticated as a client;
//   - RFC 6749 §2.3.1: client_secret_basic (client id and secret form-urlencoded before the
//     Basic encoding, so ':' or '%' in either survive) or client_secret_post;
//   - RFC 7662 §2.2: "active" is required and must be a boolean; an active answer is re-checked
//     here (iss identical to the configured issuer, exp, nbf, token_type) and reduced to an
//     Identity; aud and scope are checked per resource by the decision core, as for JWTs;
//   - RFC 9449 §7.2: a DPoP-bound token (token_type DPoP) presented as a Bearer token is refused;
//   - only access tokens pass: an answer whose token_use, token_type, typ or token_type_hint
//     names a refresh or ID token (Hydra, Keycloak, RFC 8693 names) is invalid (notAccess);
//   - the answer is read strictly (package strictjson): duplicate or case-variant member
//     names and invalid UTF-8 make it invalid, never a choice between two readings;
//   - RFC 7662 §4: the caller caches an answer no longer than its exp. When the answer has no
//     exp, Identity.Expiry stays zero and the caller's own maximum TTL is the only bound;
//   - RFC 8414 §3: without a configured endpoint, introspection_endpoint is discovered from the
//     issuer's metadata (package asmeta), lazily, with backoff after failures.
//
// An answer without "aud" yields an Identity with no audience, which no resource accepts: MCP
// requires tokens bound to the resource (RFC 8707), so the authorization server must return
// aud in its introspection answers.
//
// An endpoint that cannot answer (down, slow, redirecting, 5xx, our credentials refused,
// oversized or not a JSON object, no boolean active) leaves the token's validity unknown: that
// is identity.ErrUnavailable, never ErrInvalid, so it is never cached as invalid. Only
// active:false, or an active token that fails a local check, is invalid.
package introspect

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz/asmeta"
	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
	"github.com/mcp-authz/mcp-authz/authz/internal/tokencheck"
)

// Config configures the Verifier of one authorization server.
type Config struct {
	// Issuer is the authorization server: the iss an answer must carry when it has one, the
	// Issuer of every Identity, and where the endpoint is discovered.
	Issuer string
	// Endpoint is the introspection endpoint. Empty: introspection_endpoint from the issuer's
	// RFC 8414 (or OIDC) metadata, fetched on first use.
	Endpoint     string
	ClientID     string
	ClientSecret string // never logged or put in errors
	// AuthMethod is "client_secret_basic", "client_secret_post", or "none" for an endpoint
	// protected by network placement (Ory Hydra's admin API); none takes no ClientID or
	// ClientSecret.
	//
	// What the configuration sets (package config's defaults: client_secret_basic, 2 s, 64,
	// 5 failures for 5 s) is required here, so each default has one home; the rest are this
	// package's own.
	AuthMethod string
	// Timeout bounds one introspection call (and a caller's wait for discovery).
	Timeout time.Duration
	// MaxResponse caps an answer's size in bytes; default 64 KiB.
	MaxResponse int64
	// MaxConcurrent bounds the calls in flight to this authorization server. A call beyond
	// it waits up to QueueWait (default 100 ms) for a slot, then is unavailable.
	MaxConcurrent int
	QueueWait     time.Duration
	// Shape: tokens that do not fit are invalid without a call (admission.go). Calls share
	// the MaxConcurrent slots fairly between token classes, so a flood of one kind of token
	// cannot take them all.
	Shape Shape
	// Breaker: after consecutive failures, calls are skipped for a while (breaker.go).
	Breaker Breaker
	// ClockSkew is the leeway for exp and nbf; zero means none.
	ClockSkew time.Duration
	// Claims names extra members kept, as JSON text, in Identity.Claims ("username", say).
	Claims []string
	// HTTPClient makes the calls; default one with its own connection pool sized for
	// MaxConcurrent. Redirects are never followed on introspection calls, whatever the client.
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
}

// Verifier introspects tokens at one authorization server. It is safe for concurrent use.
type Verifier struct {
	issuer    string
	cred      *credentials // a pointer, so that printing a Verifier shows no secret
	timeout   time.Duration
	maxResp   int64
	queueWait time.Duration
	skew      time.Duration
	claims    []string
	client    *http.Client // introspection calls: never follows redirects
	discovery *http.Client // metadata; nil is asmeta's default
	now       func() time.Time
	log       *slog.Logger
	adm       *admission
	shape     shape
	br        *breaker
	logs      logLimit

	endpoint atomic.Pointer[string] // configured, or once discovered
	sf       singleflight.Group
	mu       sync.Mutex
	retryAt  time.Time // no discovery attempt before this
	backoff  time.Duration
	lastErr  error
}

// credentials are what authenticates us at the authorization server, in their wire forms.
type credentials struct {
	authorization []string // client_secret_basic: the Authorization header value
	formSuffix    string   // client_secret_post: "&client_id=…&client_secret=…"
}

const (
	defaultMaxResponse = 64 << 10
	defaultQueueWait   = 100 * time.Millisecond
	// logEvery: at most one line per interval for each reason a call fails, whatever the
	// request rate; the line says how many it stands for.
	logEvery         = 10 * time.Second
	discoveryTimeout = 10 * time.Second
	minBackoff       = time.Second
	maxBackoff       = 30 * time.Second
	// maxTokenLen: real access tokens are 1–4 KiB; a longer one is not sent anywhere.
	maxTokenLen = tokencheck.MaxTokenLen
)

// New checks cfg and returns a Verifier. It performs no network I/O: a missing endpoint is
// discovered on the first Verify.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	if err := checkURL(cfg.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("introspect: issuer %q: %v", cfg.Issuer, err))
	}
	if cfg.Endpoint != "" {
		// Not echoed: an endpoint may carry userinfo.
		if err := checkURL(cfg.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("introspect: endpoint: %v", err))
		}
	}
	post, none := false, cfg.AuthMethod == "none"
	switch {
	case none:
		// RFC 7662 §2.1 still holds: the endpoint is protected, by network placement (Ory
		// Hydra's admin port), so credentials would be ignored there.
		if cfg.ClientID != "" || cfg.ClientSecret != "" {
			errs = append(errs, errors.New("introspect: auth method none takes no client_id or client_secret"))
		}
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		errs = append(errs, errors.New("introspect: client_id and client_secret are required (RFC 7662 §2.1)"))
	}
	switch cfg.AuthMethod {
	case "client_secret_basic", "none":
	case "client_secret_post":
		post = true
	default:
		errs = append(errs, fmt.Errorf("introspect: auth method %q: use client_secret_basic, client_secret_post or none", cfg.AuthMethod))
	}
	for _, d := range []struct {
		name  string
		unset bool
	}{{"timeout", cfg.Timeout == 0}, {"max concurrent", cfg.MaxConcurrent == 0},
		{"breaker failures", cfg.Breaker.Failures == 0}, {"breaker open_for", cfg.Breaker.OpenFor == 0}} {
		if d.unset {
			errs = append(errs, fmt.Errorf("introspect: %s is not set", d.name))
		}
	}
	for _, d := range []struct {
		name string
		neg  bool
	}{{"timeout", cfg.Timeout < 0}, {"max response", cfg.MaxResponse < 0},
		{"max concurrent", cfg.MaxConcurrent < 0}, {"queue wait", cfg.QueueWait < 0}, {"clock skew", cfg.ClockSkew < 0},
		{"breaker failures", cfg.Breaker.Failures < 0}, {"breaker open_for", cfg.Breaker.OpenFor < 0}} {
		if d.neg {
			errs = append(errs, fmt.Errorf("introspect: %s is negative", d.name))
		}
	}
	sh, err := newShape(cfg.Shape)
	if err != nil {
		errs = append(errs, fmt.Errorf("introspect: %v", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	v := &Verifier{
		shape:     sh,
		issuer:    cfg.Issuer,
		cred:      &credentials{},
		timeout:   cfg.Timeout,
		maxResp:   cmp.Or(cfg.MaxResponse, defaultMaxResponse),
		queueWait: cmp.Or(cfg.QueueWait, defaultQueueWait),
		skew:      cfg.ClockSkew,
		discovery: cfg.HTTPClient,
		now:       cfg.Now,
		log:       cfg.Logger,
	}
	v.adm = newAdmission(cfg.MaxConcurrent)
	switch {
	case none: // neither header nor form fields
	case post:
		v.cred.formSuffix = "&client_id=" + url.QueryEscape(cfg.ClientID) + "&client_secret=" + url.QueryEscape(cfg.ClientSecret)
	default:
		// RFC 6749 §2.3.1: each part is form-urlencoded first, then "id:secret" is Base64'd.
		pair := url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret)
		v.cred.authorization = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(pair))}
	}
	for _, c := range cfg.Claims {
		if c != "" {
			v.claims = append(v.claims, c)
		}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.br = &breaker{cfg: cfg.Breaker, now: v.now, log: v.log, issuer: v.issuer}
	v.logs = logLimit{every: logEvery, now: v.now}
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	} else if t, ok := http.DefaultTransport.(*http.Transport); ok {
		// The default transport keeps 2 idle connections per host: with many calls in
		// flight that means a new TCP (and TLS) connection for most of them.
		t = t.Clone()
		t.MaxIdleConnsPerHost = cfg.MaxConcurrent
		c.Transport = t
	}
	// A redirect would resend the form, token and all, to wherever it points (307/308).
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	v.client = &c
	if cfg.Endpoint != "" {
		ep := cfg.Endpoint
		v.endpoint.Store(&ep)
	}
	return v, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

// Issuer is the authorization server this Verifier asks.
func (v *Verifier) Issuer() string { return v.issuer }

// BreakerState says whether calls to the authorization server are being skipped.
func (v *Verifier) BreakerState() BreakerState { return v.br.snapshot() }

// Verify introspects token. Errors wrap identity.ErrInvalid (the authorization server says
// the token is not active, or it fails a local check) or identity.ErrUnavailable (no usable
// answer), with a short reason that never holds the token or the client secret.
func (v *Verifier) Verify(ctx context.Context, token string) (identity.Identity, error) {
	return v.verifyToken(ctx, token, true)
}

// ForJWTs is the Verifier for this issuer's JWTs, sent here when their keys cannot be fetched
// (fallback_to_introspection): the opaque-token shape rules do not apply to them.
func (v *Verifier) ForJWTs() JWTFallback { return JWTFallback{v} }

// JWTFallback is a Verifier that skips the shape rules (see ForJWTs).
type JWTFallback struct{ v *Verifier }

func (f JWTFallback) Verify(ctx context.Context, token string) (identity.Identity, error) {
	return f.v.verifyToken(ctx, token, false)
}

func (v *Verifier) verifyToken(ctx context.Context, token string, shaped bool) (identity.Identity, error) {
	if token == "" {
		return identity.Identity{}, errEmpty
	}
	if len(token) > maxTokenLen {
		return identity.Identity{}, errTooLong
	}
	if shaped && !v.shape.fits(token) {
		return identity.Identity{}, errShape
	}
	id, err := v.verify(ctx, token)
	if err != nil && errors.Is(err, identity.ErrUnavailable) && !errors.Is(err, errLogged) {
		if ctx.Err() != nil { // our caller gave up: not the authorization server's doing
			v.log.Debug("introspect: cancelled", "issuer", v.issuer, "error", err)
		} else {
			v.warn(err)
		}
	}
	return id, err
}

// warn logs a failed call, at most once per logEvery for each reason: an authorization
// server that is down fails every call, and one line says as much as thousands.
func (v *Verifier) warn(err error) {
	reason := "other"
	var ve *tokencheck.Error
	if errors.As(err, &ve) {
		reason = ve.Reason
	}
	if ok, suppressed := v.logs.allow(reason); ok {
		v.log.Warn("introspect: no usable answer", "issuer", v.issuer, "error", err, "suppressed_since_last", suppressed)
	}
}

func (v *Verifier) verify(ctx context.Context, token string) (identity.Identity, error) {
	ep, err := v.endpointURL(ctx)
	if err != nil {
		return identity.Identity{}, err
	}
	if !v.br.allow() {
		return identity.Identity{}, errBreakerOpen
	}
	// Bound the load on the authorization server: a slot now, or within QueueWait, or none.
	class := tokenClass(token)
	if err := v.adm.acquire(ctx, class, v.queueWait); err != nil {
		v.br.abandon()
		return identity.Identity{}, err
	}
	body, err := v.call(ctx, ep, token)
	v.adm.release(class)
	if err != nil {
		if ctx.Err() != nil {
			v.br.abandon()
		} else {
			v.br.failure()
		}
		return identity.Identity{}, err
	}
	id, err := v.identity(body)
	// An answer we cannot use is the server failing too; active:false is an answer.
	if err != nil && errors.Is(err, identity.ErrUnavailable) {
		v.br.failure()
	} else {
		v.br.success()
	}
	return id, err
}

// call POSTs token to ep and returns the body of a 200 answer.
func (v *Verifier) call(ctx context.Context, ep, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	form := "token=" + url.QueryEscape(token) + "&token_type_hint=access_token" + v.cred.formSuffix
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep, strings.NewReader(form))
	if err != nil {
		return nil, errBadEndpoint
	}
	// Shared, never-modified header values: the transport only reads them.
	req.Header["Content-Type"] = formContentType
	req.Header["Accept"] = acceptJSON
	if v.cred.authorization != nil {
		req.Header["Authorization"] = v.cred.authorization
	}
	resp, err := v.client.Do(req)
	if err != nil {
		// *url.Error adds method and URL to the cause (refused, timeout); the URL may carry
		// userinfo, the form never appears.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, unavailable("introspect: request failed", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused; the body is not logged.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return nil, classed(identity.ClassCredentials, unavailable("introspect: our client credentials were refused", statusError(resp.StatusCode)))
		}
		return nil, unavailable("introspect: unexpected answer", statusError(resp.StatusCode))
	}
	// RFC 7662 §2.2: the answer is application/json. Anything else is a proxy's error page,
	// a login form or a misrouted endpoint, whatever its bytes happen to say.
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil ||
		(mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, errNotJSONType
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.maxResp+1))
	if err != nil {
		return nil, unavailable("introspect: reading the answer", err)
	}
	if int64(len(body)) > v.maxResp {
		return nil, errTooLarge
	}
	return body, nil
}

var (
	formContentType = []string{"application/x-www-form-urlencoded"}
	acceptJSON      = []string{"application/json"}
)

type statusError int

func (s statusError) Error() string { return fmt.Sprintf("status %d", int(s)) }

// endpointURL returns the configured or discovered endpoint, discovering it when needed: one
// attempt at a time for all callers, none during the backoff after a failure (1 s doubling to
// 30 s). A caller waits for discovery no longer than its context or the call timeout allow;
// the attempt itself goes on, for the callers after it.
func (v *Verifier) endpointURL(ctx context.Context) (string, error) {
	if ep := v.endpoint.Load(); ep != nil {
		return *ep, nil
	}
	v.mu.Lock()
	if v.now().Before(v.retryAt) {
		err := v.lastErr
		v.mu.Unlock()
		return "", &tokencheck.Error{Reason: "introspect: endpoint unknown, backing off after", Kind: identity.ErrUnavailable, Cause: err, Also: errLogged}
	}
	ch := v.sf.DoChan("", func() (any, error) { return nil, v.discover(context.WithoutCancel(ctx)) })
	v.mu.Unlock()
	t := time.NewTimer(v.timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", &tokencheck.Error{Reason: "introspect: discovery failed", Kind: identity.ErrUnavailable, Cause: r.Err, Also: errLogged}
		}
		return *v.endpoint.Load(), nil
	case <-ctx.Done():
		return "", unavailable("introspect: cancelled waiting for discovery", ctx.Err())
	case <-t.C:
		return "", unavailable("introspect: discovery still running", context.DeadlineExceeded)
	}
}

func (v *Verifier) discover(ctx context.Context) error {
	if v.endpoint.Load() != nil { // a flight that ended just before this one started
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	md, err := asmeta.Discover(ctx, v.discovery, v.issuer)
	if err == nil {
		err = checkDiscovered(v.issuer, md.IntrospectionEndpoint)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.backoff = min(max(2*v.backoff, minBackoff), maxBackoff)
		v.retryAt = v.now().Add(v.backoff)
		v.lastErr = err
		v.log.Warn("introspect: discovering the endpoint failed", "issuer", v.issuer, "error", err, "retry_in", v.backoff)
		return err
	}
	ep := md.IntrospectionEndpoint
	v.endpoint.Store(&ep)
	v.backoff, v.retryAt, v.lastErr = 0, time.Time{}, nil
	v.log.Info("introspect: endpoint discovered", "issuer", v.issuer, "endpoint", ep)
	return nil
}

// checkDiscovered refuses an endpoint we would not send a token and secret to: none, not a
// URL, or plain http under an https issuer (a metadata document must not downgrade us).
func checkDiscovered(issuer, ep string) error {
	if ep == "" {
		return errors.New("the metadata has no introspection_endpoint")
	}
	if checkURL(ep) != nil {
		return errors.New("the metadata's introspection_endpoint is not an absolute http(s) URL")
	}
	if strings.HasPrefix(issuer, "https:") && !strings.HasPrefix(ep, "https:") {
		return errors.New("the metadata's introspection_endpoint is not https")
	}
	return nil
}

// answer holds the RFC 7662 §2.2 members we use. Active, Iss, Exp and Nbf are pointers
// because absent differs from zero; a member of the wrong JSON type makes the answer broken.
// Names match exactly (JSON v2): "Active" is not "active".
type answer struct {
	Active    *bool               `json:"active"`
	Iss       *string             `json:"iss"`
	Sub       string              `json:"sub"`
	ClientID  string              `json:"client_id"`
	TokenType string              `json:"token_type"`
	Aud       tokencheck.Audience `json:"aud"`
	Scope     tokencheck.Scope    `json:"scope"`
	Exp       *float64            `json:"exp"`
	Nbf       *float64            `json:"nbf"`
	// Cnf: RFC 7800 confirmation, as for a JWT (RFC 9449 §6.2, RFC 8705 §3.2).
	Cnf jsontext.Value `json:"cnf"`

	// What kind of token the server says it is (see notAccess); read whatever their JSON
	// type, so that an unexpected type cannot hide them.
	TokenUse      jsontext.Value `json:"token_use"`       // Ory Hydra: access_token or refresh_token
	Typ           jsontext.Value `json:"typ"`             // Keycloak: Bearer, Refresh, Offline, ID
	TokenTypeHint jsontext.Value `json:"token_type_hint"` // echoed by some servers
}

// identity checks an answer and reduces it to an Identity.
func (v *Verifier) identity(body []byte) (identity.Identity, error) {
	var a answer
	// One JSON object, nothing else: "null" or an array would decode as an empty answer.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return identity.Identity{}, errNotJSON
	}
	// {"active":false,"Active":true} or "active" twice: encoding/json would take the last
	// (true), others the first. An answer two readers could read differently says nothing
	// for the token, and the server did answer: invalid, never allowed, never "try again".
	if err := strictjson.Check(body); err != nil {
		if jsontext.Value(body).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
			return identity.Identity{}, errAmbiguous
		}
		return identity.Identity{}, errNotJSON
	}
	if err := json.Unmarshal(body, &a); err != nil {
		var se *json.SemanticError
		if errors.As(err, &se) && se.JSONPointer == "/active" {
			return identity.Identity{}, errNoActive
		}
		return identity.Identity{}, errMemberType
	}
	if a.Active == nil {
		return identity.Identity{}, errNoActive
	}
	if !*a.Active {
		return identity.Identity{}, errInactive
	}
	if a.Iss != nil && *a.Iss != v.issuer {
		return identity.Identity{}, errIssuer
	}
	if err := a.notAccess(); err != nil {
		return identity.Identity{}, err
	}
	// RFC 9449 §6.2: a DPoP-bound token is token_type DPoP with cnf.jkt; whether it came with
	// its proof is the decision core's check (it refuses a bound token sent as Bearer).
	cnf, err := identity.ParseConfirmation(a.Cnf)
	if err != nil {
		return identity.Identity{}, errCnf
	}
	switch {
	case a.TokenType == "" || strings.EqualFold(a.TokenType, "Bearer"):
	case strings.EqualFold(a.TokenType, "DPoP"):
		if cnf.JKT == "" {
			return identity.Identity{}, errCnf
		}
	default:
		return identity.Identity{}, errTokenType
	}
	now := v.now()
	id := identity.Identity{
		Issuer:       v.issuer,
		Subject:      a.Sub,
		ClientID:     a.ClientID,
		Source:       identity.SourceIntrospection,
		Confirmation: cnf,
	}
	// Empty stays nil, which no resource accepts (see the package doc).
	if len(a.Aud) > 0 {
		id.Audience = a.Aud
	}
	if len(a.Scope) > 0 {
		id.Scopes = a.Scope
	}
	exp, nbf, err := tokencheck.Times{Exp: a.Exp, Nbf: a.Nbf}.Check(now, v.skew,
		tokencheck.TimeErrors{Malformed: errBadTime, Expired: errExpired, NotYet: errNotYet})
	if err != nil {
		return identity.Identity{}, err
	}
	id.Expiry, id.NotBefore = exp, nbf
	if len(v.claims) > 0 {
		id.Claims = v.extraClaims(body)
	}
	return id, nil
}

// notAccess refuses an active answer about a token that is not an access token. RFC 7662
// §2.1 lets a server introspect refresh tokens too, and some answer for them with
// active:true: Ory Hydra v2 with token_use "refresh_token" (and token_type "Bearer", even
// when asked with token_type_hint=access_token); Keycloak with typ and token_type "Refresh"
// or "Offline" (and "ID" for ID tokens); node-oidc-provider before v7 with token_type
// "refresh_token". A refresh token is a credential for the token endpoint only (RFC 6749
// §1.5); an ID token is for the client (OIDC Core §2). token_use, when present, must name an
// access token; typ, token_type and token_type_hint must not name another kind.
// (node-oidc-provider v7 and later send no token_type and no aud for a refresh token: its
// empty audience is refused by every resource.)
func (a *answer) notAccess() error {
	if a.TokenUse != nil {
		if use, _ := strictjson.String(a.TokenUse); identity.KindOf(use) != identity.KindAccess {
			return errNotAccess
		}
	}
	for _, m := range []jsontext.Value{a.Typ, a.TokenTypeHint} {
		if s, ok := strictjson.String(m); ok && identity.KindOf(s) != identity.KindUnknown && identity.KindOf(s) != identity.KindAccess {
			return errNotAccess
		}
	}
	// token_type DPoP is an access token type (RFC 9449 §6.2), though KindOf calls "dpop"
	// (a proof's JWT typ) another kind.
	if k := identity.KindOf(a.TokenType); k != identity.KindUnknown && k != identity.KindAccess && !strings.EqualFold(a.TokenType, "DPoP") {
		return errNotAccess
	}
	return nil
}

// Answer-reading reasons (the rest are with the other errors below).
var (
	errAmbiguous = classed(identity.ClassMalformed, invalid("introspect: ambiguous answer (a duplicate or case-variant member name, or not UTF-8)"))
	errNotAccess = classed(identity.ClassNotAccess, invalid("introspect: the token is not an access token (a refresh or ID token)"))
)

// extraClaims keeps the configured members as their JSON text (identity.Identity.Claims), each
// at most identity.MaxClaimLen bytes.
func (v *Verifier) extraClaims(body []byte) map[string]string {
	var all map[string]jsontext.Value
	if json.Unmarshal(body, &all) != nil { // cannot fail: body decoded above
		return nil
	}
	var out map[string]string
	for _, name := range v.claims {
		raw, ok := all[name]
		if !ok || len(raw) == 0 || len(raw) > identity.MaxClaimLen {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(v.claims))
		}
		out[name] = string(raw)
	}
	return out
}

// Verification errors are tokencheck.Error, shared with the JWT verifier.
func invalid(reason string) *tokencheck.Error { return tokencheck.Invalid("", reason) }

func unavailable(reason string, cause error) *tokencheck.Error {
	return tokencheck.Unavailable(reason, cause)
}

func classed(cls identity.Class, err *tokencheck.Error) error { return err.WithClass(cls) }

// errLogged marks discovery errors, which are logged once per attempt rather than once per
// caller.
var errLogged = errors.New("already logged")

// Fixed reasons allocate once: the deny path is as hot as the allow path under attack.
var (
	errEmpty       = classed(identity.ClassMalformed, invalid("introspect: empty token"))
	errTooLong     = classed(identity.ClassMalformed, invalid("introspect: token too long"))
	errInactive    = classed(identity.ClassInactive, invalid("introspect: not active"))
	errIssuer      = classed(identity.ClassIssuer, invalid("introspect: iss is another issuer"))
	errTokenType   = classed(identity.ClassNotAccess, invalid("introspect: token_type is neither Bearer nor DPoP"))
	errCnf         = classed(identity.ClassBinding, invalid("introspect: cnf is malformed, binds the token to a method not checked here, or token_type DPoP has no cnf.jkt"))
	errExpired     = classed(identity.ClassExpired, invalid("introspect: expired"))
	errNotYet      = classed(identity.ClassNotYetValid, invalid("introspect: not yet valid (nbf)"))
	errBusy        = unavailable("introspect: too many calls in flight", nil)
	errBreakerOpen = unavailable("introspect: breaker open after repeated failures; not called", nil)
	errShape       = classed(identity.ClassMalformed, invalid("introspect: not shaped like this server's tokens; not called"))
	errBadEndpoint = unavailable("introspect: cannot build a request for the endpoint", nil)
	errTooLarge    = unavailable("introspect: answer too large", nil)
	errNotJSONType = unavailable("introspect: answer is not application/json", nil)
	errNotJSON     = unavailable("introspect: answer is not a JSON object", nil)
	errMemberType  = unavailable("introspect: answer has a member of the wrong JSON type", nil)
	errNoActive    = unavailable("introspect: answer has no boolean active (RFC 7662 §2.2)", nil)
	errBadTime     = unavailable("introspect: answer has a malformed exp or nbf", nil)
)
