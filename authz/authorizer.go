package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Verifier turns a token into an Identity, or fails with an error wrapping
// identity.ErrInvalid or identity.ErrUnavailable.
type Verifier interface {
	Verify(ctx context.Context, token string) (identity.Identity, error)
}

// TokenVerifier answers for a token on behalf of Check: the verifier chain (Chain), usually
// behind a cache (cache.Verifier), which owns every caching decision.
type TokenVerifier interface {
	// Key is the token's lookup key, a keyed hash (never the token); ok is false when
	// nothing is cached. Check hands it to the upstream credentials (CallerToken).
	Key(token string) (key [32]byte, ok bool)
	// Verify answers for token, whose Key is key; tier says where the answer came from
	// (TierL1, TierRedis, TierIdP, TierStale).
	Verify(ctx context.Context, token string, key [32]byte) (id identity.Identity, tier string, err error)
}

// Verifiers is the verifier chain of DESIGN.md step 4.
type Verifiers struct {
	// JWT verifiers by issuer: a JWT whose (unverified) iss names one of them goes to it. The
	// issuer is chosen before any key lookup.
	JWT map[string]Verifier
	// Opaque verifies every other token (RFC 7662 introspection, API keys). Nil: such tokens
	// are invalid.
	Opaque Verifier
	// Fallback holds, by issuer, the verifier a JWT of that issuer goes to when its JWT
	// verifier is unavailable (its JWKS cannot be fetched): that issuer's own introspection,
	// never another issuer's, which would see a token not meant for it and call it invalid.
	Fallback map[string]Verifier
	// APIKeys verifies static API keys (legacy clients). With APIKeyScheme "Bearer" (or "")
	// they arrive as Bearer tokens and are tried before the other verifiers; with another
	// scheme (e.g. "Token") only credentials in that scheme reach it.
	APIKeys      Verifier
	APIKeyScheme string
}

// Options configure an Authorizer.
type Options struct {
	Resources []Resource
	Verifiers Verifiers
	// Cache puts a cache in front of the verifier chain built from Verifiers (e.g. with
	// cache.Tiered.Verifier); nil: every token is verified every time. API keys never reach
	// it: they are checked against the live configuration on every Check.
	Cache func(chain *Chain) (TokenVerifier, error)

	ClockSkew   time.Duration // leeway re-applied to exp/nbf on cached results
	Unavailable Unavailable
	// ScopeImplies maps a broad scope to the narrower scopes it grants (MCP 2026-07-28:
	// resource servers must account for scope hierarchies). Applied transitively.
	ScopeImplies map[string][]string

	// CORSAllowedOrigins: the browser origins whose requests get Access-Control-Allow-Origin
	// on denials (401/403/400), so a browser MCP client can read the challenge. Empty or "*":
	// every origin ("*"). The metadata document is always readable from any origin.
	CORSAllowedOrigins []string

	// Upstream: by resource name, what mints the credential an allowed request carries to
	// that resource's upstream (upstream.go). A resource without one gets none.
	Upstream map[string]UpstreamCredentials
	// DPoP checks proofs (RFC 9449) for resources that accept DPoP; required when one does.
	DPoP *dpop.Checker

	Now    func() time.Time
	Logger *slog.Logger
}

// Authorizer decides. It is safe for concurrent use and immutable after New: a configuration
// reload builds a new one.
type Authorizer struct {
	routes  []*route
	index   routeIndex // routes by host and path prefix
	v       Verifiers
	tokens  TokenVerifier // the chain, behind the cache when there is one
	skew    time.Duration
	implies map[string][]string
	// keyScheme is the API-key scheme when it is not Bearer, lower-case; "" otherwise.
	keyScheme string
	// corsOrigins: the allow-list of origins for denials; nil: any origin ("*", precomputed).
	corsOrigins map[string]bool
	dpop        *dpop.Checker
	shared      atomic.Uint32 // the last Decision.Shared number given
	now         func() time.Time
	log         *slog.Logger
	upstream    map[string]*upstreamRoute // by resource name; nil: none configured
}

// New checks the options and precomputes every route's metadata and challenges.
func New(o Options) (*Authorizer, error) {
	a := &Authorizer{
		v: o.Verifiers, skew: o.ClockSkew, implies: o.ScopeImplies, now: o.Now, log: o.Logger,
		dpop: o.DPoP,
	}
	var dpopAlgs []string
	if o.DPoP != nil {
		dpopAlgs = o.DPoP.AlgList()
	}
	if sc := strings.ToLower(o.Verifiers.APIKeyScheme); sc != "" && sc != "bearer" {
		if o.Verifiers.APIKeys == nil {
			return nil, errors.New("an API-key scheme without API keys")
		}
		a.keyScheme = sc
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	chain := &Chain{v: o.Verifiers, log: a.log}
	a.tokens = uncached{chain}
	if o.Cache != nil {
		tv, err := o.Cache(chain)
		if err != nil {
			return nil, err
		}
		a.tokens = tv
	}
	if s := o.Unavailable.Status; s != http.StatusUnauthorized && s != http.StatusServiceUnavailable {
		// No default here: the configuration's (unavailable.status: 401) is the only one.
		return nil, fmt.Errorf("unavailable status %d: must be 401 or 503", s)
	}
	a.shared.Store(firstShared - 1)
	for _, origin := range o.CORSAllowedOrigins {
		if origin == "*" {
			a.corsOrigins = nil
			break
		}
		if a.corsOrigins == nil {
			a.corsOrigins = map[string]bool{}
		}
		a.corsOrigins[origin] = true
	}
	var errs []error
	for i, r := range o.Resources {
		rt, err := newRoute(r, a.corsOrigins == nil, dpopAlgs)
		if err != nil {
			errs = append(errs, fmt.Errorf("resources[%d]: %w", i, err))
			continue
		}
		rt.denials.withUnavailable(rt, o.Unavailable)
		if r.DPoP != BindingOff {
			rt.dpDenials.withUnavailable(rt, o.Unavailable)
		}
		rt.numberShared(a.nextShared)
		if err := a.withUpstream(rt, o.Upstream[rt.Name]); err != nil {
			errs = append(errs, fmt.Errorf("resources[%d]: %w", i, err))
			continue
		}
		a.routes = append(a.routes, rt)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a.index = newRouteIndex(a.routes)
	return a, nil
}

// nextShared gives the next Decision.Shared number.
func (a *Authorizer) nextShared() uint32 { return a.shared.Add(1) }

// Check decides one request. It never returns nil.
func (a *Authorizer) Check(ctx context.Context, req *Request) *Decision {
	d := a.check(ctx, req)
	if a.corsOrigins != nil && !d.Allow && d.Reason != ReasonMetadata {
		return a.withOrigin(req, d)
	}
	return d
}

// withOrigin adds the request's Origin to a denial when the allow-list has it.
func (a *Authorizer) withOrigin(req *Request, d *Decision) *Decision {
	origin, ok := req.Headers["origin"]
	if !ok || !a.corsOrigins[origin] || !headerValueOK(origin) {
		return d
	}
	c := *d
	c.Headers = append(append(make([]Header, 0, len(d.Headers)+2), d.Headers...),
		Header{"access-control-allow-origin", origin}, Header{"vary", "Origin"})
	c.Shared = 0 // no longer the shared answer
	return &c
}

func (a *Authorizer) check(ctx context.Context, req *Request) *Decision {
	rawPath, query := splitPath(req.Path)
	path, err := cleanPath(rawPath)
	if err != nil {
		// Before any routing: a public path or the metadata path is no exception.
		return withErr(badPathDecision, err)
	}
	host, port := splitHostPort(req.Host)

	// The metadata path is answered before anything else: it is never challenged (RFC 9728
	// §3; a 401 there would leave a client no way to discover the authorization server).
	pathAndQuery := path
	if query != "" {
		pathAndQuery += "?" + query
	}
	if rt := a.metadataRoute(host, port, pathAndQuery); rt != nil {
		return rt.metaAnswers.answer(req.Method)
	}
	rt := a.match(host, port, path)
	if rt == nil {
		return noRouteDecision
	}
	if rt.public(path) {
		return &Decision{Allow: true, Reason: ReasonPublic, Remove: rt.removeAlways, Resource: rt.Name}
	}
	if rt.publicByRule(req.Method, path) {
		return &Decision{Allow: true, Reason: ReasonPublic, Remove: rt.removeAlways, Resource: rt.Name}
	}
	if rt.AllowCORSPreflight && req.Method == http.MethodOptions && isPreflight(req) {
		return &Decision{Allow: true, Reason: ReasonPreflight, Remove: rt.removeAlways, Resource: rt.Name}
	}

	authzHeader, present := req.header("authorization")
	if a.keyScheme != "" && present {
		if key, ok := schemeCredential(authzHeader, a.keyScheme); ok {
			return a.checkAPIKey(ctx, rt, req, path, key)
		}
	}
	token, cred, sc := extractCredential(authzHeader, present, query, rt.DPoP != BindingOff)
	ds := &rt.denials
	if sc == schemeDPoP {
		ds = &rt.dpDenials
	}
	switch cred {
	case credNone:
		return ds.missing
	case credMultiple:
		if sc == schemeBoth {
			return rt.dpDenials.both
		}
		return ds.multiple
	case credInQuery:
		return ds.query
	case credMalformed:
		return withErr(ds.invalid, errMalformed)
	}
	if sc == schemeBearer && rt.DPoP == BindingRequired {
		return withErr(rt.dpDenials.dpopOnly, errDPoPOnly)
	}
	var proof dpop.Proof
	if sc == schemeDPoP {
		var d *Decision
		if proof, d = a.checkProof(ctx, rt, req, rawPath, token); d != nil {
			return d
		}
	}

	caller := CallerToken{Token: token}
	caller.Key, caller.Keyed = a.tokens.Key(token)
	id, tier, err := a.verify(ctx, caller)
	var d *Decision
	switch {
	case err == nil:
		if err := a.binding(rt, req, sc, &proof, &id); err != nil {
			d = withErr(ds.invalid, err)
		} else {
			d = a.authorize(rt, ds, req, path, &id)
			if d.Allow {
				a.allowBound(rt, d, sc, &proof, &id)
			}
		}
	case errors.Is(err, identity.ErrUnavailable):
		d = withErr(ds.unavailable, err)
	default:
		d = withErr(ds.invalid, err)
	}
	d.Tier = tier // d is this request's own: authorize and withErr never return a shared one
	if a.upstream != nil {
		d = a.upstreamCredential(ctx, rt, ds, caller, d)
	}
	return d
}

// authorize applies the resource's own checks to a verified identity, then what the request's
// operations need: scopes first (the resource's, the operation's, the matching rules'), so a
// client that can step up is told every scope at once, then the rules' conditions.
func (a *Authorizer) authorize(rt *route, ds *denials, req *Request, path string, id *identity.Identity) *Decision {
	if err := a.fitsResource(rt, id); err != nil {
		return withErr(ds.invalid, err)
	}
	if missing := a.missingScope(id, rt.RequiredScopes); missing != "" {
		return withErr(ds.insufficient, fmt.Errorf("missing scope %q", missing))
	}
	v := opView{method: req.Method, path: path}
	if rt.MCP != nil || rt.rules.readsOps {
		ops, hasOps, err := requestOperations(req, rt.rules.readsArgs)
		if err != nil {
			if errors.Is(err, errHeaderMismatch) {
				return withErr(ds.mismatch, err)
			}
			return withErr(ds.operation, err)
		}
		v.ops, v.hasOps = ops, hasOps
	}
	if len(rt.rules.list) > 0 {
		params, err := mcpParams(req)
		if err == nil {
			err = rt.rules.repeatedHeaderRead(req)
		}
		if err != nil {
			return withErr(ds.operation, err)
		}
		v.params = params
	}
	// A request without operations is evaluated once, with none; a batch once per operation.
	var extra []string
	desc := ""
	a.eachOp(&v, func(op *Operation) bool {
		extra = rt.MCP.opScopes(op, extra)
		var d string
		extra, d = rt.ruleScopes(&v, op, extra)
		if desc == "" {
			desc = d
		}
		return true
	})
	if len(extra) > 0 {
		if missing := a.missingScope(id, extra); missing != "" {
			// One challenge naming every scope the operation needs, not only the missing one.
			need := joinScopes(unionScopes(rt.RequiredScopes, extra))
			return withErr(ds.insufficientFor(rt, need, desc), fmt.Errorf("operation needs scope %q", missing))
		}
	}
	var denied *Decision
	var why error
	a.eachOp(&v, func(op *Operation) bool {
		denied, why = rt.ruleConditions(&v, op, req, id)
		return denied == nil
	})
	if denied != nil {
		d := withErr(denied, why)
		d.Identity = id // for the decision log: who was refused
		setOperation(d, &v)
		return d
	}
	d := a.allow(rt, id)
	setOperation(d, &v)
	return d
}

// eachOp calls f with each of the request's operations, or once with nil when it has none,
// until f returns false.
func (a *Authorizer) eachOp(v *opView, f func(*Operation) bool) {
	if len(v.ops) == 0 {
		f(nil)
		return
	}
	for i := range v.ops {
		if !f(&v.ops[i]) {
			return
		}
	}
}

func setOperation(d *Decision, v *opView) {
	if len(v.ops) == 0 {
		return
	}
	op := v.ops[0]
	op.Arguments = nil
	d.Operation = &op
	if len(v.ops) > 1 {
		d.Batch = len(v.ops)
	}
}

// checkAPIKey handles a credential in the API-key scheme. Keys are verified locally and
// cheaply, so they are not cached.
func (a *Authorizer) checkAPIKey(ctx context.Context, rt *route, req *Request, path, key string) *Decision {
	if key == "" || len(key) > maxTokenLen || !isB64Token(key) {
		return withErr(rt.denials.invalid, errMalformed)
	}
	id, err := a.v.APIKeys.Verify(ctx, key)
	if err != nil {
		return withErr(rt.denials.invalid, err)
	}
	d := a.authorize(rt, &rt.denials, req, path, &id)
	if a.upstream != nil {
		d = a.upstreamCredential(ctx, rt, &rt.denials, CallerToken{Token: key}, d)
	}
	return d
}

var (
	errMalformed       = &resourceError{identity.ClassMalformed, "malformed bearer credential"}
	errUntrustedIssuer = errors.New("issuer not trusted for this resource")
)

// withErr attaches private detail to a shared denial without mutating it.
func withErr(d *Decision, err error) *Decision {
	c := *d
	c.Err = err
	return &c
}

func isPreflight(req *Request) bool {
	_, origin := req.header("origin")
	_, method := req.header("access-control-request-method")
	return origin && method
}

func (a *Authorizer) metadataRoute(host, port, pathAndQuery string) *route {
	if !strings.HasPrefix(pathAndQuery, "/.well-known/oauth-protected-resource") {
		return nil
	}
	return a.index.metadataRoute(host, port, pathAndQuery)
}

// Route names the resource (its identifier) a request to host and path would be checked
// against, as Check routes it; ok is false when none matches (the no-route denial) or the
// path is one Check refuses before routing.
func (a *Authorizer) Route(host, path string) (resource string, ok bool) {
	rawPath, _ := splitPath(path)
	clean, err := cleanPath(rawPath)
	if err != nil {
		return "", false
	}
	h, port := splitHostPort(host)
	if rt := a.match(h, port, clean); rt != nil {
		return rt.ID, true
	}
	return "", false
}

// match picks the route with the longest path prefix among those serving the host (routing.go).
func (a *Authorizer) match(host, port, path string) *route {
	return a.index.match(host, port, path)
}

// verify answers for a bearer token: API keys against the live configuration, everything
// else through the verifier chain and its cache.
func (a *Authorizer) verify(ctx context.Context, caller CallerToken) (identity.Identity, string, error) {
	// API keys are checked against the live configuration on every Check and never cached:
	// a key removed by a reload must be refused at once, on every replica.
	if id, ok := a.bearerAPIKey(ctx, caller.Token); ok {
		return id, TierIdP, nil
	}
	return a.tokens.Verify(ctx, caller.Token, caller.Key)
}

// bearerAPIKey verifies token as an API key sent in the Bearer scheme, when API keys use it.
func (a *Authorizer) bearerAPIKey(ctx context.Context, token string) (identity.Identity, bool) {
	if a.v.APIKeys == nil || a.keyScheme != "" {
		return identity.Identity{}, false
	}
	id, err := a.v.APIKeys.Verify(ctx, token)
	return id, err == nil
}

// fitsResource applies the per-resource checks to an identity that may have come from a cache
// filled for another resource: issuer, audience, and time (a cached entry may outlive exp by
// less than a cache tick, so it is checked again).
func (a *Authorizer) fitsResource(rt *route, id *identity.Identity) error {
	if id.Source == identity.SourceAPIKey && !rt.AllowAPIKeys {
		return errors.New("API keys are not accepted for this resource")
	}
	if id.Source != identity.SourceAPIKey && !rt.issuers[id.Issuer] {
		return &issuerError{issuer: id.Issuer, err: errUntrustedIssuer, cls: identity.ClassIssuer,
			fix: "this issuer is not in the resource's issuers: add it to resources[].issuers"}
	}
	if id.Source != identity.SourceAPIKey && !rt.audienceOK(id.Audience) {
		return audienceError(rt, id)
	}
	now := a.now()
	if !id.Expiry.IsZero() && !now.Before(id.Expiry.Add(a.skew)) {
		return errors.New("expired")
	}
	if !id.NotBefore.IsZero() && now.Add(a.skew).Before(id.NotBefore) {
		return errors.New("not yet valid")
	}
	return nil
}

// missingScope returns the first required scope the identity lacks, "" when it has them all.
func (a *Authorizer) missingScope(id *identity.Identity, required []string) string {
	for _, s := range required {
		if !a.granted(id, s) {
			return s
		}
	}
	return ""
}

func (a *Authorizer) granted(id *identity.Identity, want string) bool {
	if id.HasScope(want) {
		return true
	}
	if len(a.implies) == 0 {
		return false
	}
	// Breadth-first over the implication graph from each granted scope; scope sets are
	// small and cycles are cut by the visited set.
	seen := map[string]bool{}
	queue := append([]string(nil), id.Scopes...)
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if seen[s] {
			continue
		}
		seen[s] = true
		for _, n := range a.implies[s] {
			if n == want {
				return true
			}
			queue = append(queue, n)
		}
	}
	return false
}

func (a *Authorizer) allow(rt *route, id *identity.Identity) *Decision {
	d := &Decision{Allow: true, Reason: ReasonAllow, Resource: rt.Name, Identity: id}
	h := &rt.Headers
	d.Headers = make([]Header, 0, 4+len(rt.claimHeaders))
	add := func(name, value string) {
		if name != "" && value != "" && headerValueOK(value) {
			d.Headers = append(d.Headers, Header{strings.ToLower(name), value})
		}
	}
	add(h.Subject, id.Subject)
	add(h.ClientID, id.ClientID)
	if h.Scopes != "" && len(id.Scopes) > 0 {
		add(h.Scopes, strings.Join(id.Scopes, " "))
	}
	add(h.Issuer, id.Issuer)
	// How the token was bound says something only where a binding is accepted: elsewhere
	// every allowed token is a bearer token (bound ones are refused).
	if rt.DPoP != BindingOff || rt.MTLSBound != BindingOff {
		d.Binding = bindingName(id)
		add(h.Binding, d.Binding)
	}
	for _, c := range rt.claimHeaders {
		if raw, ok := id.Claims[c.claim]; ok {
			if v, ok := identity.ClaimText(raw); ok {
				add(c.header, v)
			}
		}
	}
	// Headers we set replace the client's copies (the adapter overwrites); names we could
	// not set are removed, so a forged copy never reaches upstream.
	d.Remove = rt.removeAlways
	if len(d.Headers) > 0 {
		d.Remove = make([]string, 0, len(rt.removeAlways))
		for _, n := range rt.removeAlways {
			if !setIn(d.Headers, n) {
				d.Remove = append(d.Remove, n)
			}
		}
	}
	return d
}

// headerValueOK refuses values that would break or smuggle header syntax.
func headerValueOK(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// setIn says whether hs sets the header name.
func setIn(hs []Header, name string) bool {
	return slices.ContainsFunc(hs, func(h Header) bool { return h.Name == name })
}
