package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// UpstreamCredentials mints the credential an allowed request carries to its upstream in place
// of the caller's token (MCP forbids passing that one through): an RFC 8693 exchange of the
// caller's token, a client-credentials token of the service, or a static secret. The
// implementation (package authz/upstream) owns the HTTP clients and caches; the core only
// calls it after an allow.
//
// An error wrapping identity.ErrUnavailable means the credential could not be had right now
// (the authorization server is unreachable): the request gets the configured unavailable
// answer. Any other error means it was refused: a 403. Either way the request is denied.
type UpstreamCredentials interface {
	Credential(ctx context.Context, caller CallerToken, id *identity.Identity) (UpstreamCredential, error)
}

// CallerToken is the caller's access token and, when the core has a cache, the cache's key for
// it (Cache.Key), which the core computed once already: an implementation that keys its own
// state on it need not hash the token again.
type CallerToken struct {
	Token string
	Key   [32]byte
	Keyed bool // Key is set
}

// UpstreamCredential is what Credential mints: headers set on the upstream request, replacing
// any copy the client sent. The implementation vouches that names are lower-case and values
// are header-safe (it checks what a token endpoint returns once, not on every Check); the
// slice may be shared between Checks and is never modified.
type UpstreamCredential struct {
	Headers []Header
	Tier    string // where it came from (TierL1, TierRedis, TierIdP, "" for a static one), for logs
}

// UpstreamHeaders names the headers a resource's UpstreamCredentials may set, so that a
// client-sent copy of one is removed on every allow, public paths included.
type UpstreamHeaders interface {
	HeaderNames() []string
}

const descUpstream = "The credential for the upstream service could not be obtained for this request."

// upstreamRoute is a route's upstream credential source and its denial.
type upstreamRoute struct {
	creds   UpstreamCredentials
	refused *Decision
}

// withUpstream builds a resource's upstream credential state: its denial, and the removal of
// client-sent copies of the credential headers on every allow.
func (a *Authorizer) withUpstream(rt *route, u UpstreamCredentials) error {
	if u == nil {
		return nil
	}
	if rt.ForwardAuthorization {
		return errors.New("forward_authorization with upstream credentials: the caller's token would reach the upstream")
	}
	if hn, ok := u.(UpstreamHeaders); ok {
		for _, n := range hn.HeaderNames() {
			n = strings.ToLower(n)
			if !setIn(nameHeaders(rt.removeAlways), n) {
				rt.removeAlways = append(rt.removeAlways, n)
			}
		}
	}
	if a.upstream == nil {
		a.upstream = map[string]*upstreamRoute{}
	}
	a.upstream[rt.Name] = &upstreamRoute{creds: u, refused: &Decision{
		Status: http.StatusForbidden, Reason: ReasonUpstream, Resource: rt.Name,
		Headers: rt.policyHeaders(), Body: errorBody("access_denied", descUpstream),
	}}
	return nil
}

func nameHeaders(names []string) []Header {
	hs := make([]Header, len(names))
	for i, n := range names {
		hs[i].Name = n
	}
	return hs
}

// upstreamCredential adds the resource's upstream credential to an allow, or turns it into a
// denial: an allow never goes out without the credential its resource is configured with.
func (a *Authorizer) upstreamCredential(ctx context.Context, rt *route, ds *denials, caller CallerToken, d *Decision) *Decision {
	if !d.Allow || d.Reason != ReasonAllow {
		return d
	}
	u := a.upstream[rt.Name]
	if u == nil {
		return d
	}
	c, err := u.creds.Credential(ctx, caller, d.Identity)
	if err != nil {
		var den *Decision
		if errors.Is(err, identity.ErrUnavailable) {
			den = withErr(ds.unavailable, fmt.Errorf("upstream credential: %w", err))
		} else {
			den = withErr(u.refused, fmt.Errorf("upstream credential: %w", err))
		}
		den.Identity, den.Operation, den.Batch, den.Tier = d.Identity, d.Operation, d.Batch, d.Tier
		return den
	}
	if len(c.Headers) == 0 {
		return withErr(u.refused, errors.New("upstream credential: none minted"))
	}
	hs := make([]Header, 0, len(d.Headers)+len(c.Headers))
	for _, h := range d.Headers {
		if !setIn(c.Headers, h.Name) {
			hs = append(hs, h)
		}
	}
	d.Headers = append(hs, c.Headers...)
	// Removing a header the allow also sets would race the set in the proxy: what is set
	// replaces the client's copy instead. (d.Remove may be the route's shared list.)
	for i, n := range d.Remove {
		if setIn(c.Headers, n) {
			rm := append(make([]string, 0, len(d.Remove)), d.Remove[:i]...)
			for _, n := range d.Remove[i+1:] {
				if !setIn(c.Headers, n) {
					rm = append(rm, n)
				}
			}
			d.Remove = rm
			break
		}
	}
	return d
}
