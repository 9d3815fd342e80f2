package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Verifier turns a token into an Identity, or fails with an error wrapping
// identity.ErrInvalid or identity.ErrUnavailable.
type Verifier interface {
	Verify(ctx context.Context, token string) (identity.Identity, error)
}

// Cache holds verified results keyed by a keyed hash of the token, never the token.
// Implementations never return an entry past the TTL it was stored with.
type Cache interface {
	Key(token string) [32]byte
	Get(ctx context.Context, key [32]byte) (id identity.Identity, negative bool, ok bool)
	Set(ctx context.Context, key [32]byte, id identity.Identity, ttl time.Duration)
	SetNegative(ctx context.Context, key [32]byte, ttl time.Duration)
}

// tieredCache is a Cache that also says which tier answered (TierL1, TierRedis).
type tieredCache interface {
	GetTier(ctx context.Context, key [32]byte) (id identity.Identity, negative bool, tier string, ok bool)
}

// staleCache is a Cache that can also return entries it no longer vouches for (see
// cache.Tiered.Stale), used only when verification is unavailable.
type staleCache interface {
	Stale(key [32]byte) (identity.Identity, bool)
}

// revocationAwareCache is a Cache that knows about revocations made while a verification ran
// (see cache.Tiered.SetSince), so that a result from before one is not stored after it.
type revocationAwareCache interface {
	Mark() int64
	SetSince(ctx context.Context, key [32]byte, id identity.Identity, ttl time.Duration, mark int64)
}

// claimCache is a Cache shared by replicas that can let one of them verify a new token for
// all (see cache.Tiered.Claim).
type claimCache interface {
	Claim(ctx context.Context, key [32]byte, ttl time.Duration) bool
	Unclaim(ctx context.Context, key [32]byte)
	Await(ctx context.Context, key [32]byte, maxWait time.Duration) (id identity.Identity, negative bool, ok bool)
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
	Cache     Cache // nil: every token is verified every time

	CacheMaxTTL time.Duration // upper bound of a positive cache entry; default 5m
	NegativeTTL time.Duration // how long an invalid token is remembered; default 10s
	ClockSkew   time.Duration // leeway re-applied to exp/nbf on cached results
	Unavailable Unavailable
	// ScopeImplies maps a broad scope to the narrower scopes it grants (MCP 2026-07-28:
	// resource servers must account for scope hierarchies). Applied transitively.
	ScopeImplies map[string][]string
	// StaleWait: when a token this replica verified before is due for re-verification (see
	// cache.Tiered.Stale), the Check is answered from the earlier verification while the IdP
	// is asked again in the background, whose answer then replaces it (a definite "invalid"
	// denies the next Check). 0: at once; positive: after waiting that long for the IdP;
	// negative: never (the earlier verification is used only when the IdP is unavailable).
	StaleWait time.Duration
	// RevalidateAfter, by issuer: an introspected token's cache entry lasts at most this long,
	// so that once it is due the stale-while-revalidate path above answers from it while the
	// token is introspected again; a revocation at the issuer then reaches this replica within
	// about this long rather than CacheMaxTTL. JWTs verified locally are not affected: nothing
	// would be learnt by verifying their signature again.
	RevalidateAfter map[string]time.Duration
	// ClaimWait: with a cache that coordinates replicas (cache.Tiered.Claim), a token headed
	// for introspection is verified by one replica while the others wait up to this long for
	// its result; it should exceed the slowest introspection. 0: no coordination.
	ClaimWait time.Duration

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
	cache   Cache
	maxTTL  time.Duration
	negTTL  time.Duration
	skew    time.Duration
	implies map[string][]string
	claim   time.Duration
	// revalidate: see Options.RevalidateAfter.
	revalidate map[string]time.Duration
	// staleWait: see Options.StaleWait.
	staleWait time.Duration
	// keyScheme is the API-key scheme when it is not Bearer, lower-case; "" otherwise.
	keyScheme string
	// corsOrigins: the allow-list of origins for denials; nil: any origin ("*", precomputed).
	corsOrigins map[string]bool
	dpop        *dpop.Checker
	shared      atomic.Uint32 // the last Decision.Shared number given
	now         func() time.Time
	log         *slog.Logger
	inflight    singleflight.Group
	upstream    map[string]*upstreamRoute // by resource name; nil: none configured
}

// New checks the options and precomputes every route's metadata and challenges.
func New(o Options) (*Authorizer, error) {
	a := &Authorizer{
		v: o.Verifiers, cache: o.Cache, maxTTL: o.CacheMaxTTL, negTTL: o.NegativeTTL,
		skew: o.ClockSkew, implies: o.ScopeImplies, claim: o.ClaimWait, now: o.Now, log: o.Logger,
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
	if a.maxTTL <= 0 {
		a.maxTTL = 5 * time.Minute
	}
	if a.negTTL <= 0 {
		a.negTTL = 10 * time.Second
	}
	a.staleWait = o.StaleWait
	a.revalidate = o.RevalidateAfter
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if o.Unavailable.Status == 0 {
		o.Unavailable.Status = http.StatusUnauthorized
	}
	if s := o.Unavailable.Status; s != http.StatusUnauthorized && s != http.StatusServiceUnavailable {
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
	if a.cache != nil {
		caller.Key, caller.Keyed = a.cache.Key(token), true
	}
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

// verify answers from the cache, or runs the verifier chain once for all concurrent callers
// presenting the same token.
func (a *Authorizer) verify(ctx context.Context, caller CallerToken) (identity.Identity, string, error) {
	token := caller.Token
	// API keys are checked against the live configuration on every Check and never cached:
	// a key removed by a reload must be refused at once, on every replica.
	if id, ok := a.bearerAPIKey(ctx, token); ok {
		return id, TierIdP, nil
	}
	if a.cache == nil {
		id, err := a.chain(ctx, token)
		return id, TierIdP, err
	}
	key := caller.Key
	var (
		id       identity.Identity
		neg, hit bool
		tier     = TierL1
	)
	if tc, ok := a.cache.(tieredCache); ok {
		id, neg, tier, hit = tc.GetTier(ctx, key)
	} else {
		id, neg, hit = a.cache.Get(ctx, key)
	}
	// An API-key identity in the cache (stored by an older version) is not trusted: whether
	// the key is still configured is known only to the API-key verifier above.
	if hit && !(id.Source == identity.SourceAPIKey && !neg) {
		if neg {
			return identity.Identity{}, tier, errCachedInvalid
		}
		return id, tier, nil
	}
	stale, awaited := false, false
	// Stale-while-revalidate (below): with an earlier verification to answer from at once,
	// the flight is a background re-verification.
	sc, canStale := a.cache.(staleCache)
	var sid identity.Identity
	hasStale := false
	if canStale && a.staleWait == 0 {
		sid, hasStale = sc.Stale(key)
	}
	flight := a.inflight.DoChan(string(key[:]), func() (_ any, err error) {
		// DoChan runs this in a goroutine of its own, where a panic would end the process:
		// it is handed to the caller, whose own recovery (the adapter's) then sees it.
		defer func() {
			if p := recover(); p != nil {
				err = flightPanic{p}
			}
		}()
		// (A token's flight is shared: the stale fallback below is decided once for all.)
		// The caller's cancellation must not fail everyone waiting on this flight.
		vctx := context.WithoutCancel(ctx)
		// Introspection is the IdP call worth sharing between replicas; local JWT and API-key
		// checks cost less than the coordination would.
		// A background re-verification is not worth the round trips: while the IdP fails,
		// every Check of the token starts one.
		if cc, ok := a.cache.(claimCache); ok && a.claim > 0 && !hasStale && a.introspects(token) {
			if !cc.Claim(vctx, key, a.claim) {
				if id, neg, ok := cc.Await(vctx, key, a.claim); ok {
					awaited = true
					if neg {
						return identity.Identity{}, errCachedInvalid
					}
					return id, nil
				}
			} else {
				// Deferred, so it runs after the result below is stored.
				defer cc.Unclaim(vctx, key)
			}
		}
		rc, revAware := a.cache.(revocationAwareCache)
		var mark int64
		if revAware {
			mark = rc.Mark()
		}
		id, err := a.chain(vctx, token)
		switch {
		case err == nil:
			if ttl := a.ttl(&id); ttl > 0 {
				if revAware {
					rc.SetSince(vctx, key, id, ttl, mark)
				} else {
					a.cache.Set(vctx, key, id, ttl)
				}
			}
		case errors.Is(err, identity.ErrInvalid):
			a.cache.SetNegative(vctx, key, a.negTTL)
		case errors.Is(err, identity.ErrUnavailable):
			// Verified earlier by this replica, held back only because a revocation might
			// have been missed: better than refusing a token nobody can check now.
			if sc, ok := a.cache.(staleCache); ok {
				if sid, ok := sc.Stale(key); ok {
					stale = true
					a.log.Debug("verifier unavailable; using this replica's earlier verification", "issuer", sid.Issuer, "error", err)
					return sid, nil
				}
			}
		}
		return id, err
	})
	// Stale-while-revalidate: a token this replica verified before, whose entry is no longer
	// a hit (cache.Tiered.Stale), is answered from that entry at once, or when the IdP has not
	// answered within staleWait. The flight goes on and stores its result, so a definite
	// "invalid" denies the next Check; a failing IdP costs such a Check nothing (or staleWait
	// at most).
	if hasStale {
		return sid, TierStale, nil
	}
	var staleAfter <-chan time.Time
	if canStale && a.staleWait > 0 {
		t := time.NewTimer(a.staleWait)
		defer t.Stop()
		staleAfter = t.C
	}
	var res singleflight.Result
wait:
	for {
		select {
		case res = <-flight:
			break wait
		case <-staleAfter:
			staleAfter = nil
			if sid, ok := sc.Stale(key); ok {
				return sid, TierStale, nil
			}
		case <-ctx.Done():
			if canStale {
				if sid, ok := sc.Stale(key); ok {
					return sid, TierStale, nil
				}
			}
			// The caller's budget (check_timeout, the proxy's deadline) is spent: it gets the
			// unavailable answer, with its challenge, while the proxy still waits for one. The
			// flight goes on and serves the callers after it.
			return identity.Identity{}, TierIdP, fmt.Errorf("%w: no answer within the Check's budget: %w", identity.ErrUnavailable, ctx.Err())
		}
	}
	if fp, ok := res.Err.(flightPanic); ok {
		panic(fp.p)
	}
	v, err := res.Val, res.Err
	tier = TierIdP
	switch {
	case stale:
		tier = TierStale
	case awaited:
		tier = TierRedis
	}
	if err != nil {
		return identity.Identity{}, tier, err
	}
	return v.(identity.Identity), tier, nil
}

// flightPanic carries a panic out of a verification flight to the caller waiting for it.
type flightPanic struct{ p any }

func (f flightPanic) Error() string { return fmt.Sprint("panic in verification: ", f.p) }

// introspects says whether chain would send token to introspection.
func (a *Authorizer) introspects(token string) bool {
	if a.v.Opaque == nil {
		return false
	}
	_, _, isJWT := a.jwtVerifier(token)
	return !isJWT
}

// bearerAPIKey verifies token as an API key sent in the Bearer scheme, when API keys use it.
func (a *Authorizer) bearerAPIKey(ctx context.Context, token string) (identity.Identity, bool) {
	if a.v.APIKeys == nil || a.keyScheme != "" {
		return identity.Identity{}, false
	}
	id, err := a.v.APIKeys.Verify(ctx, token)
	return id, err == nil
}

// jwtVerifier is the verifier of the configured issuer a JWT's (unverified) iss names.
func (a *Authorizer) jwtVerifier(token string) (string, Verifier, bool) {
	iss, ok := peekIssuer(token)
	if !ok {
		return "", nil, false
	}
	v, ok := a.v.JWT[iss]
	return iss, v, ok
}

// ttl: never past the token's own expiry (RFC 7662 §4), never longer than configured.
func (a *Authorizer) ttl(id *identity.Identity) time.Duration {
	ttl := a.maxTTL
	if r, ok := a.revalidate[id.Issuer]; ok && id.Source == identity.SourceIntrospection && r < ttl {
		ttl = r
	}
	if !id.Expiry.IsZero() {
		if left := id.Expiry.Sub(a.now()); left < ttl {
			ttl = left
		}
	}
	return ttl
}

// chain runs the verifiers for a token that is not a Bearer-scheme API key (verify checked).
func (a *Authorizer) chain(ctx context.Context, token string) (identity.Identity, error) {
	iss, v, ok := a.jwtVerifier(token)
	if ok {
		id, err := v.Verify(ctx, token)
		fb := a.v.Fallback[iss]
		if err == nil || !errors.Is(err, identity.ErrUnavailable) || errors.Is(err, identity.ErrKeyNotYetKnown) || fb == nil {
			return id, withIssuer(iss, err)
		}
		a.log.Debug("jwt verifier unavailable; trying the issuer's introspection", "issuer", iss, "error", err)
		id, err = fb.Verify(ctx, token)
		return id, withIssuer(iss, err)
	}
	if iss != "" {
		// A JWT naming no configured issuer: a near miss is worth saying so (only the denial's
		// log line pays for this comparison, and only when the token goes no further).
		if conf, how := a.nearIssuer(iss); conf != "" && a.v.Opaque == nil {
			return identity.Identity{}, &issuerError{issuer: conf, cls: identity.ClassIssuer, err: errNoVerifier,
				fix: "the token's iss differs from issuers[].issuer " + conf + " " + how + ": copy the issuer from the AS metadata byte for byte"}
		}
	}
	if a.v.Opaque == nil {
		if iss != "" {
			return identity.Identity{}, errUnknownIssuer
		}
		return identity.Identity{}, errNoVerifier
	}
	id, err := a.v.Opaque.Verify(ctx, token)
	if err != nil {
		if o, ok := a.v.Opaque.(interface{ Issuer() string }); ok {
			return id, withIssuer(o.Issuer(), err)
		}
	}
	return id, err
}

var (
	errNoVerifier    = fmt.Errorf("%w: no verifier accepts this token", identity.ErrInvalid)
	errUnknownIssuer = &issuerError{cls: identity.ClassUnknownIssuer, err: errNoVerifier,
		fix: "a JWT whose iss is no configured issuer: add the issuer under issuers (mcp-authz doctor --token shows its iss)"}
)

// withIssuer ties a verifier's error to its issuer for Explain. Only the failure path pays.
func withIssuer(iss string, err error) error {
	if err == nil {
		return nil
	}
	return &issuerError{issuer: iss, err: err}
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

func setIn(hs []Header, name string) bool {
	for _, h := range hs {
		if h.Name == name {
			return true
		}
	}
	return false
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
