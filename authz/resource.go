package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Resource is one protected resource: an RFC 8707 resource identifier, the requests that reach
// it, whose tokens it trusts and what they must carry. Validation of user input happens in the
// config package; New still refuses a Resource it could not serve correctly.
type Resource struct {
	Name string
	// ID is the resource identifier (RFC 8707 §2, RFC 9728 §1.2): the URL clients call, used
	// as the PRM "resource" and as the default accepted audience.
	ID string
	// Hosts the resource answers on. A host without a port matches any port; "*" matches any
	// host. Default: the host of ID.
	Hosts []string
	// PathPrefix, segment-aware ("/mcp" matches "/mcp" and "/mcp/x", not "/mcpx").
	// Default: the path of ID.
	PathPrefix string

	AuthorizationServers []string // RFC 9728 authorization_servers (issuer identifiers)
	Issuers              []string // accepted token issuers; default AuthorizationServers
	Audiences            []string // accepted audiences; default [ID]

	RequiredScopes  []string // every request needs all of these
	ScopesSupported []string // PRM scopes_supported; default RequiredScopes
	PublicPaths     []string // path prefixes served without a token

	Headers              IdentityHeaders
	ForwardAuthorization bool // keep the caller's Authorization header upstream

	Realm                 string
	ResourceName          string
	ResourceDocumentation string
	ResourcePolicyURI     string
	ResourceTOSURI        string

	// AllowCORSPreflight lets a browser's CORS preflight (OPTIONS with Origin and
	// Access-Control-Request-Method, which never carries credentials) through to the upstream.
	AllowCORSPreflight bool
	// AllowAPIKeys accepts static API keys (a legacy path) on this resource.
	AllowAPIKeys bool
	// MCP maps JSON-RPC operations in the request body to further required scopes; nil: the
	// body is never read.
	MCP *MCPScopes
	// Rules narrow access further (rules.go); the route keeps its own copy.
	Rules []Rule

	// DPoP: whether DPoP-bound tokens (RFC 9449) are accepted, with their proofs, and whether
	// Bearer tokens still are. MTLSBound: the same for certificate-bound tokens (RFC 8705).
	// A bound token is refused wherever its binding is not checked, whatever these say.
	DPoP      BindingMode
	MTLSBound BindingMode
}

// BindingMode says whether a resource accepts sender-constrained tokens of one kind.
type BindingMode uint8

const (
	BindingOff      BindingMode = iota // not accepted (a token bound this way is refused)
	BindingAllowed                     // accepted beside unbound Bearer tokens
	BindingRequired                    // only tokens bound this way are accepted
)

// IdentityHeaders names the upstream headers an allowed request carries. Empty names are not
// set. Whatever the client sent under these names is removed or replaced, never passed on.
type IdentityHeaders struct {
	Subject  string
	ClientID string
	Scopes   string
	Issuer   string
	// Binding says how the token was bound: "dpop", "mtls", "dpop+mtls" or "bearer".
	Binding string
	Claims  map[string]string // claim name → header name
}

// route is a Resource made ready to serve: everything derivable is derived once.
type route struct {
	Resource
	hosts        []hostPattern
	prefix       string
	metadataURL  string
	metadataPath string // path (and query) of metadataURL, matched against requests
	audiences    []audience
	issuers      map[string]bool
	publicPaths  []string
	idHeaders    []string // every identity header name, lower-case
	removeAlways []string // removed on every allow (identity headers; authorization unless forwarded)

	prm            []byte  // RFC 9728 document
	challengeScope string  // scope= of 401/403 challenges for the resource as a whole
	denials        denials // precomputed on first use (ready), shared
	metaAnswers    metaSet // precomputed metadata answers, on first use (ready)
	claimHeaders   []claimHeader
	corsAnyOrigin  bool // challenges carry Access-Control-Allow-Origin: *
	rules          compiledRules

	// origin is scheme://host[:port] of ID: a DPoP proof's htu must name it (never the
	// request's Host, which the client chose).
	origin    string
	dpopAlgs  string  // algs= of DPoP challenges
	dpDenials denials // denials for credentials in the DPoP scheme

	// answered: denials, dpDenials and metaAnswers are built on the route's first match, not
	// by New. With one resource per tenant host, building them all was about two thirds of
	// start-up and reload with 10,000 resources, and ~70 MB of live heap that most tenants
	// never use, which every collection marks and the heap has to grow past after start-up.
	// Routes come from configuration, so what is built is bounded by it, never by traffic.
	answered sync.Once
	// shared: the Decision.Shared numbers reserved by numberShared for the answers built
	// later, so that they are the numbers an eager build in configuration order gave.
	shared [numSharedBearer + numSharedDPoP]uint32
}

type claimHeader struct{ claim, header string }

type hostPattern struct {
	host string // lower-case, without port
	port string // "" = any
	any  bool
}

func (h hostPattern) match(host, port string) bool {
	if h.any {
		return true
	}
	if !strings.EqualFold(h.host, host) {
		return false
	}
	return h.port == "" || h.port == port || port == "" && (h.port == "80" || h.port == "443")
}

func splitHostPort(hp string) (host, port string) {
	if strings.HasPrefix(hp, "[") { // IPv6 literal
		if i := strings.LastIndex(hp, "]"); i > 0 {
			host = hp[:i+1]
			if i+1 < len(hp) && hp[i+1] == ':' {
				port = hp[i+2:]
			}
			return host, port
		}
		return hp, ""
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i], hp[i+1:]
	}
	return hp, ""
}

// metadataLocation builds the RFC 9728 §3.1 well-known URL for a resource identifier: the
// well-known suffix is inserted between the host and the path (and query), after dropping a
// terminating "/" of an empty path.
func metadataLocation(id string) (fullURL, pathAndQuery string, err error) {
	u, err := url.Parse(id)
	if err != nil {
		return "", "", err
	}
	return metadataLocationOf(id, u)
}

// metadataLocationOf is metadataLocation for id already parsed as u.
func metadataLocationOf(id string, u *url.URL) (fullURL, pathAndQuery string, err error) {
	if u.Scheme == "" || u.Host == "" {
		return "", "", errors.New("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(id, "#") {
		return "", "", errors.New("has a fragment")
	}
	p := u.EscapedPath()
	if p == "/" {
		p = ""
	}
	pq := "/.well-known/oauth-protected-resource" + p
	if u.RawQuery != "" {
		pq += "?" + u.RawQuery
	}
	return u.Scheme + "://" + u.Host + pq, pq, nil
}

// audience is an accepted audience prepared for comparison: scheme and host are compared
// case-insensitively (RFC 3986 §6.2.2.1), the rest exactly.
type audience struct {
	raw    string
	origin string // "scheme://host[:port]" for URLs, "" otherwise
	rest   string
}

func newAudience(a string) audience {
	o, r, ok := splitOrigin(a)
	if !ok {
		return audience{raw: a}
	}
	return audience{raw: a, origin: o, rest: r}
}

// splitOrigin splits "scheme://authority/rest" without allocating.
func splitOrigin(s string) (origin, rest string, ok bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", false
	}
	j := i + 3
	for j < len(s) && s[j] != '/' && s[j] != '?' && s[j] != '#' {
		j++
	}
	return s[:j], s[j:], true
}

func (a *audience) match(v string) bool {
	if v == a.raw {
		return true
	}
	if a.origin == "" || len(v) != len(a.raw) {
		return false
	}
	o, r, ok := splitOrigin(v)
	return ok && r == a.rest && strings.EqualFold(o, a.origin)
}

func (rt *route) audienceOK(aud []string) bool {
	for _, v := range aud {
		for i := range rt.audiences {
			if rt.audiences[i].match(v) {
				return true
			}
		}
	}
	return false
}

// pathUnder reports whether p is prefix or below it, segment-aware.
func pathUnder(p, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/' || strings.HasSuffix(prefix, "/")
}

// public: path is cleanPath's result, so dot-segments and encoded separators are gone.
func (rt *route) public(path string) bool {
	for _, pp := range rt.publicPaths {
		if pathUnder(path, pp) {
			return true
		}
	}
	return false
}

func newRoute(r Resource, corsAnyOrigin bool, dpopAlgs []string) (*route, error) {
	if r.ID == "" {
		return nil, errors.New("resource identifier is empty")
	}
	u, err := url.Parse(r.ID)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %v", r.ID, err)
	}
	full, pq, err := metadataLocationOf(r.ID, u)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %v", r.ID, err)
	}
	// Requests are matched after cleanPath decoded them once; configured paths are decoded
	// the same way, so "/caf%C3%A9" in a resource identifier matches the request "/café".
	mp, mq := splitPath(pq)
	if mp, err = configPath(mp); err != nil {
		return nil, fmt.Errorf("resource %q: %v", r.ID, err)
	}
	if mq != "" {
		mp += "?" + mq
	}
	rt := &route{Resource: r, metadataURL: full, metadataPath: mp, corsAnyOrigin: corsAnyOrigin}
	rt.origin = u.Scheme + "://" + u.Host
	if r.DPoP != BindingOff {
		if len(dpopAlgs) == 0 {
			return nil, fmt.Errorf("resource %q: DPoP is on but no proof checker is configured", r.ID)
		}
		rt.dpopAlgs = strings.Join(dpopAlgs, " ")
	}
	// The caller's slices stay theirs: compileRules normalises paths in place.
	rt.Rules = make([]Rule, len(r.Rules))
	for i, rule := range r.Rules {
		rule.Paths = append([]string(nil), rule.Paths...)
		rt.Rules[i] = rule
	}
	if err := rt.compileRules(); err != nil {
		return nil, fmt.Errorf("resource %q: %v", r.ID, err)
	}
	if len(r.AuthorizationServers) == 0 {
		return nil, fmt.Errorf("resource %q: no authorization server", r.ID)
	}
	hosts := r.Hosts
	if len(hosts) == 0 {
		hosts = []string{u.Host}
	}
	for _, h := range hosts {
		if h == "*" {
			rt.hosts = append(rt.hosts, hostPattern{any: true})
			continue
		}
		host, port := splitHostPort(h)
		rt.hosts = append(rt.hosts, hostPattern{host: strings.ToLower(host), port: port})
	}
	rt.prefix = r.PathPrefix
	if rt.prefix == "" {
		rt.prefix = u.EscapedPath()
	}
	if rt.prefix == "" {
		rt.prefix = "/"
	}
	if rt.prefix, err = configPath(rt.prefix); err != nil {
		return nil, fmt.Errorf("resource %q: path prefix: %v", r.ID, err)
	}
	issuers := r.Issuers
	if len(issuers) == 0 {
		issuers = r.AuthorizationServers
	}
	rt.issuers = make(map[string]bool, len(issuers))
	for _, is := range issuers {
		rt.issuers[is] = true
	}
	auds := r.Audiences
	if len(auds) == 0 {
		auds = []string{r.ID}
	}
	for _, a := range auds {
		rt.audiences = append(rt.audiences, newAudience(a))
	}
	for _, pp := range r.PublicPaths {
		c, err := configPath(pp)
		if err != nil {
			return nil, fmt.Errorf("resource %q: public path %q: %v", r.ID, pp, err)
		}
		rt.publicPaths = append(rt.publicPaths, c)
	}
	if len(r.ScopesSupported) == 0 {
		rt.ScopesSupported = r.RequiredScopes
	}
	rt.challengeScope = joinScopes(r.RequiredScopes)

	h := r.Headers
	for _, n := range []string{h.Subject, h.ClientID, h.Scopes, h.Issuer, h.Binding} {
		if n != "" {
			rt.idHeaders = append(rt.idHeaders, strings.ToLower(n))
		}
	}
	for claim, name := range h.Claims {
		rt.claimHeaders = append(rt.claimHeaders, claimHeader{claim: claim, header: strings.ToLower(name)})
	}
	// Map order is random; decisions (and their golden files) must not be.
	slices.SortFunc(rt.claimHeaders, func(a, b claimHeader) int { return strings.Compare(a.header, b.header) })
	for _, c := range rt.claimHeaders {
		rt.idHeaders = append(rt.idHeaders, c.header)
	}
	rt.removeAlways = append([]string(nil), rt.idHeaders...)
	if !r.ForwardAuthorization {
		// The DPoP proof goes with the token: useless upstream, and no business of it.
		rt.removeAlways = append(rt.removeAlways, "authorization", "dpop")
	}
	if rt.prm, err = buildPRM(&rt.Resource, dpopAlgs); err != nil {
		return nil, err
	}
	rt.denials.sc, rt.dpDenials.sc = schemeBearer, schemeDPoP
	return rt, nil
}

// ready returns the route with its precomputed answers built. Every route a Check uses comes
// from the route index, which calls it; after the first call it costs an atomic load.
func (rt *route) ready() *route {
	rt.answered.Do(rt.buildAnswers)
	return rt
}

func (rt *route) buildAnswers() {
	ds := &rt.denials
	ds.build(rt)
	if rt.DPoP != BindingOff {
		dp := &rt.dpDenials
		dp.build(rt)
		dp.missing = ds.missing
		dp.both = deny(rt, schemeBoth, http.StatusBadRequest, ReasonInvalidRequest, "invalid_request", descMultiple, "")
	}
	rt.metaAnswers = buildMetaAnswers(rt.prm)

	// In the order numberShared reserved the numbers.
	n := rt.shared[:]
	for _, d := range [numSharedBearer]*Decision{ds.missing, ds.multiple, ds.query, ds.invalid, ds.unavailable,
		ds.insufficient, ds.operation, ds.mismatch,
		rt.metaAnswers.get, rt.metaAnswers.head, rt.metaAnswers.options, rt.metaAnswers.notAllowed} {
		d.Shared, n = n[0], n[1:]
	}
	if rt.DPoP != BindingOff {
		dp := &rt.dpDenials
		for _, d := range [numSharedDPoP]*Decision{dp.multiple, dp.both, dp.query, dp.invalid, dp.unavailable, dp.insufficient,
			dp.operation, dp.mismatch, dp.proof, dp.dpopOnly, ds.proof, ds.dpopOnly} {
			d.Shared, n = n[0], n[1:]
		}
	}
}

// joinScopes joins scopes for a challenge, leaving out offline_access: MCP 2026-07-28 says a
// resource server should not ask for it, and clients add it themselves when the AS offers it.
func joinScopes(s []string) string {
	var b strings.Builder
	for _, sc := range s {
		if sc == "" || sc == "offline_access" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sc)
	}
	return b.String()
}

// configPath prepares a configured path for comparison with cleanPath's result. A configured
// path that cleanPath would refuse could never match, so it is a configuration error.
func configPath(p string) (string, error) {
	c, err := cleanPath(p)
	if err != nil {
		return "", errors.New("not a plain absolute path (no dot-segments, encoded separators or control characters)")
	}
	return c, nil
}

// How many Decision.Shared numbers a route reserves for the answers buildAnswers makes: the
// denials and metadata answers of every route, and the DPoP ones of a route that accepts DPoP.
const (
	numSharedBearer = 12
	numSharedDPoP   = 12
)

// numberShared gives the route's precomputed answers their Decision.Shared numbers: the rules'
// denials now, the others (built on first use) reserved now, in the same order as before.
func (rt *route) numberShared(next func() uint32) {
	for i := range numSharedBearer {
		rt.shared[i] = next()
	}
	for _, d := range rt.rules.denied {
		d.Shared = next()
	}
	rt.denials.nextShared = next
	if rt.DPoP != BindingOff {
		for i := range numSharedDPoP {
			rt.shared[numSharedBearer+i] = next()
		}
		rt.dpDenials.nextShared = next
	}
}
