package authz

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// The mapping from a denial's Reason to its status, WWW-Authenticate challenge and body lives
// here, and testdata/*.golden pins every byte of it.
//
// Challenges are constant per resource and reason: no request ids, nonces or token details.
// MCP clients compare a repeated challenge with the first to decide whether to stop retrying
// (the TypeScript SDK re-authorizes once on a 403 and loops if the challenge keeps changing).
//
// Parameter order follows the MCP TypeScript SDK's own server (realm, error,
// error_description, scope, resource_metadata), and the Bearer challenge is the only one, so it
// is always first: that SDK ignores the header unless its first token is "Bearer".

// Public descriptions: generic on purpose. The private reason goes to logs.
const (
	descMissing      = "An access token is required."
	descMultiple     = "The request carries more than one access token."
	descQuery        = "Access tokens are not accepted in the query string."
	descInvalid      = "The access token is invalid, expired, or not meant for this resource."
	descUnavailable  = "The access token could not be verified right now."
	descInsufficient = "The access token lacks a scope this request needs."
	descNoRoute      = "No protected resource matches this request."
	descInternal     = "The authorization service failed; try again."
	descBadPath      = "The request path is ambiguous."
	descOperation    = "The request's MCP operation could not be read unambiguously."
	descMismatch     = "The Mcp-Method or Mcp-Name header does not match the request body."
	descPolicy       = "The caller is not allowed to make this request."
	descProof        = "The DPoP proof is invalid."
	descNonce        = "The DPoP proof must carry the nonce in the DPoP-Nonce header."
	descDPoPOnly     = "This resource accepts only DPoP-bound access tokens."
)

// denials are a route's precomputed denial decisions for credentials in one scheme.
type denials struct {
	sc                                             scheme
	unavail                                        Unavailable // see withUnavailable
	missing, multiple, query, invalid, unavailable *Decision
	// DPoP scheme only: an invalid proof; a proof without a current nonce (its DPoP-Nonce
	// header is added per request); a Bearer token where only DPoP is accepted.
	proof, nonce, dpopOnly *Decision
	both                   *Decision // Bearer and DPoP credentials at once: 400 in both challenges
	// operation: per-operation rules apply and the MCP operation cannot be read unambiguously
	// (400 invalid_request); mismatch: SEP-2243 headers disagree with the body (400 with the
	// JSON-RPC error -32020 HeaderMismatch that MCP servers answer it with).
	operation, mismatch *Decision
	insufficient        *Decision // for the resource's own required scopes

	mu        *sync.Mutex
	stepUp    map[string]*Decision // insufficient_scope for other scope sets (per-operation scopes)
	stepUpLen int
	// nextShared numbers the step-up challenges memoized later (Decision.Shared).
	nextShared func() uint32
}

// Unavailable says how to answer when no verifier could decide. RFC 6750 has no code for it:
// the default, 401 invalid_token, makes a client fetch a new token, which is harmless; 503 with
// Retry-After is for deployments whose clients handle it.
type Unavailable struct {
	Status     int // http.StatusUnauthorized or http.StatusServiceUnavailable
	RetryAfter int // seconds, with 503
}

func challenge(realm, errCode, desc, scope, metadataURL string) string {
	return schemeChallenge("Bearer", realm, errCode, desc, scope, metadataURL, "")
}

// schemeChallenge is one challenge; algs is DPoP's (RFC 9449 §7.1), "" for Bearer.
func schemeChallenge(name, realm, errCode, desc, scope, metadataURL, algs string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(' ')
	first := true
	param := func(name, value string) {
		if value == "" {
			return
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quoteSafe(value))
		b.WriteByte('"')
	}
	param("realm", realm)
	param("error", errCode)
	param("error_description", desc)
	param("scope", scope)
	param("resource_metadata", metadataURL)
	param("algs", algs)
	return b.String()
}

// wwwAuthenticate is a denial's WWW-Authenticate value for a request whose credential came in
// sc. On a resource that accepts DPoP it holds every scheme the resource accepts, in one field
// value, Bearer first (the MCP TypeScript SDK reads the header only when its first token is
// "Bearer") and always with a parameter (RFC 9449 §7.2's example, "Bearer, DPoP …", makes that
// SDK's first token "Bearer,"). The error goes in the challenge of the scheme the client used
// (both for a request with both, RFC 9449 §7.2), and so does the scope: that SDK takes the
// first scope= it finds, which must be the one that goes with the error.
func (rt *route) wwwAuthenticate(sc scheme, errCode, desc, scope string) string {
	if rt.DPoP == BindingOff {
		return challenge(rt.Realm, errCode, desc, scope, rt.metadataURL)
	}
	dp := func(errCode, desc, scope string) string {
		return schemeChallenge("DPoP", rt.Realm, errCode, desc, scope, rt.metadataURL, rt.dpopAlgs)
	}
	if rt.DPoP == BindingRequired {
		return dp(errCode, desc, scope)
	}
	switch sc {
	case schemeDPoP:
		return challenge(rt.Realm, "", "", "", rt.metadataURL) + ", " + dp(errCode, desc, scope)
	case schemeBoth:
		return challenge(rt.Realm, errCode, desc, scope, rt.metadataURL) + ", " + dp(errCode, desc, scope)
	}
	return challenge(rt.Realm, errCode, desc, scope, rt.metadataURL) + ", " + dp("", "", "")
}

// quoteSafe keeps a quoted-string within RFC 6750 §3's allowed characters
// (%x20-21 / %x23-5B / %x5D-7E): configuration is validated, so this is a last line of defence.
func quoteSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
					return ' '
				}
				return r
			}, s)
		}
	}
	return s
}

func errorBody(code, desc string) []byte {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
	return b
}

// sharedBodies are the bodies of the denials every route has: one copy for all routes instead
// of one per route (Decisions are read-only). Only constants: nothing is added later.
var sharedBodies = func() map[[2]string][]byte {
	m := map[[2]string][]byte{}
	for _, p := range [][2]string{
		{"unauthorized", descMissing}, {"unauthorized", ""},
		{"invalid_request", descMultiple}, {"invalid_request", descQuery}, {"invalid_request", descOperation},
		{"invalid_token", descInvalid}, {"invalid_token", descUnavailable}, {"invalid_token", descDPoPOnly},
		{"insufficient_scope", descInsufficient}, {"invalid_dpop_proof", descProof}, {"use_dpop_nonce", descNonce},
		{"temporarily_unavailable", descUnavailable},
	} {
		m[p] = errorBody(p[0], p[1])
	}
	return m
}()

// denialBody is errorBody, shared when it is one of sharedBodies.
func denialBody(code, desc string) []byte {
	if b, ok := sharedBodies[[2]string{code, desc}]; ok {
		return b
	}
	return errorBody(code, desc)
}

var (
	hdrJSON        = Header{"content-type", "application/json"}
	hdrNoStore     = Header{"cache-control", "no-store"}
	hdrExposeAuthn = Header{"access-control-expose-headers", "WWW-Authenticate"}
	hdrExposeDPoP  = Header{"access-control-expose-headers", "WWW-Authenticate, DPoP-Nonce"}
)

func deny(rt *route, sc scheme, status int, reason Reason, errCode, desc, scope string) *Decision {
	d := &Decision{Status: status, Reason: reason, Resource: rt.Name}
	expose := hdrExposeAuthn
	if rt.DPoP != BindingOff {
		expose = hdrExposeDPoP
	}
	d.Headers = append(make([]Header, 0, 5),
		Header{"www-authenticate", rt.wwwAuthenticate(sc, errCode, desc, scope)},
		hdrJSON, hdrNoStore, expose)
	// A browser MCP client reads the challenge only if the response names its origin; with
	// an allow-list the origin is added per request (Authorizer.withOrigin).
	if rt.corsAnyOrigin {
		d.Headers = append(d.Headers, hdrCORSOrigin)
	}
	bodyCode := errCode
	if bodyCode == "" {
		bodyCode = "unauthorized"
	}
	d.Body = denialBody(bodyCode, desc)
	return d
}

// build makes the denials for credentials in ds.sc, keeping what New set (the unavailable
// setting and nextShared).
func (ds *denials) build(rt *route) {
	sc := ds.sc
	ds.mu = new(sync.Mutex)
	// RFC 6750 §3.1: no error code when the request carried no credentials. The scope tells an
	// MCP client what to ask for (MCP 2025-11-25 "Scope Selection Strategy").
	ds.missing = deny(rt, schemeNone, http.StatusUnauthorized, ReasonMissingToken, "", "", rt.challengeScope)
	ds.missing.Body = denialBody("unauthorized", descMissing)
	ds.multiple = deny(rt, sc, http.StatusBadRequest, ReasonInvalidRequest, "invalid_request", descMultiple, "")
	ds.query = deny(rt, sc, http.StatusBadRequest, ReasonInvalidRequest, "invalid_request", descQuery, "")
	ds.invalid = deny(rt, sc, http.StatusUnauthorized, ReasonInvalidToken, "invalid_token", descInvalid, rt.challengeScope)
	ds.operation = deny(rt, sc, http.StatusBadRequest, ReasonInvalidRequest, "invalid_request", descOperation, "")
	ds.mismatch = &Decision{Status: http.StatusBadRequest, Reason: ReasonInvalidRequest, Resource: rt.Name,
		Headers: []Header{hdrJSON, hdrNoStore},
		Body:    []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32020,"message":"` + descMismatch + `"}}`)}
	ds.insufficient = deny(rt, sc, http.StatusForbidden, ReasonInsufficientScope, "insufficient_scope", descInsufficient, rt.challengeScope)
	if rt.DPoP != BindingOff {
		// RFC 9449 §7.1: invalid_dpop_proof, and use_dpop_nonce with the nonce (§9).
		ds.proof = deny(rt, schemeDPoP, http.StatusUnauthorized, ReasonInvalidToken, "invalid_dpop_proof", descProof, "")
		ds.nonce = deny(rt, schemeDPoP, http.StatusUnauthorized, ReasonInvalidToken, "use_dpop_nonce", descNonce, "")
		ds.dpopOnly = deny(rt, schemeDPoP, http.StatusUnauthorized, ReasonInvalidToken, "invalid_token", descDPoPOnly, rt.challengeScope)
	}
	ds.unavailable = rt.unavailableDenial(sc, ds.unavail)
}

// withUnavailable records how to answer when no verifier could decide, a service-wide setting;
// build makes the denial.
func (ds *denials) withUnavailable(_ *route, u Unavailable) {
	ds.unavail = u
}

func (rt *route) unavailableDenial(sc scheme, u Unavailable) *Decision {
	if u.Status == http.StatusServiceUnavailable {
		d := &Decision{Status: http.StatusServiceUnavailable, Reason: ReasonUnavailable, Resource: rt.Name}
		d.Headers = []Header{hdrJSON, hdrNoStore}
		if u.RetryAfter > 0 {
			d.Headers = append(d.Headers, Header{"retry-after", strconv.Itoa(u.RetryAfter)})
		}
		d.Body = denialBody("temporarily_unavailable", descUnavailable)
		return d
	}
	return deny(rt, sc, http.StatusUnauthorized, ReasonUnavailable, "invalid_token", descUnavailable, rt.challengeScope)
}

// maxStepUp bounds the per-route memo of step-up challenges; scope sets come from
// configuration, so in practice it holds a handful.
const maxStepUp = 256

// insufficientFor returns the 403 whose scope lists every scope the operation needs (MCP
// 2026-07-28: all of them in one challenge, not only the missing ones).
// desc is a rule's public description, "" for the generic one.
func (ds *denials) insufficientFor(rt *route, scope, desc string) *Decision {
	if scope == rt.challengeScope && desc == "" {
		return ds.insufficient
	}
	key := scope
	if desc != "" {
		key += "\x00" + desc
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if d, ok := ds.stepUp[key]; ok {
		return d
	}
	if desc == "" {
		desc = descInsufficient
	}
	d := deny(rt, ds.sc, http.StatusForbidden, ReasonInsufficientScope, "insufficient_scope", desc, scope)
	if ds.stepUp == nil {
		ds.stepUp = make(map[string]*Decision)
	}
	if ds.stepUpLen < maxStepUp {
		d.Shared = ds.nextShared()
		ds.stepUp[key] = d
		ds.stepUpLen++
	}
	return d
}

// Answers that do not depend on a route.
// Shared numbers of the answers that do not depend on a route; an Authorizer numbers its own
// from firstShared.
const (
	sharedNoRoute = iota + 1
	sharedBadPath
	sharedInternal
	firstShared
)

var (
	noRouteDecision = &Decision{
		Shared: sharedNoRoute,
		Status: http.StatusForbidden, Reason: ReasonNoRoute,
		Headers: []Header{hdrJSON, hdrNoStore},
		Body:    errorBody("access_denied", descNoRoute),
	}
	badPathDecision = &Decision{
		Shared: sharedBadPath,
		Status: http.StatusBadRequest, Reason: ReasonInvalidRequest,
		Headers: []Header{hdrJSON, hdrNoStore},
		Body:    errorBody("invalid_request", descBadPath),
	}
	internalDecision = &Decision{
		Shared: sharedInternal,
		Status: http.StatusServiceUnavailable, Reason: ReasonInternal,
		Headers: []Header{hdrJSON, hdrNoStore},
		Body:    errorBody("temporarily_unavailable", descInternal),
	}
)

// Internal is the answer to a recovered fault: a clean 503, never a crashed process.
func Internal() *Decision { return internalDecision }
