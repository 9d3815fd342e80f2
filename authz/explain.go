package authz

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Explanation is what an operator needs to act on a denial, for logs and metrics only: the
// client gets the generic challenge. Issuer is a configured issuer or "" (never text from an
// unverified token), so that it and Class can label a metric.
type Explanation struct {
	Issuer string
	Class  identity.Class
	Fix    string // what to change, where known; "" otherwise
}

// Explain classifies a denial's private error (Decision.Err).
func Explain(err error) Explanation {
	var e Explanation
	var ie *issuerError
	if errors.As(err, &ie) {
		e.Issuer = ie.issuer
		if ie.cls != "" {
			e.Class, e.Fix = ie.cls, ie.fix
			return e
		}
	}
	var c identity.Classed
	switch {
	case errors.As(err, &c) && c.DenialClass() != "":
		e.Class = c.DenialClass()
	case errors.Is(err, identity.ErrUnavailable):
		e.Class = identity.ClassUnavailable
	default:
		e.Class = identity.ClassOther
	}
	e.Fix = fixFor(e.Class, e.Issuer, err)
	return e
}

func fixFor(c identity.Class, issuer string, err error) string {
	switch c {
	case identity.ClassTyp:
		typ := "this"
		if strings.Contains(err.Error(), "typ is JWT") {
			typ = "JWT"
		}
		return fmt.Sprintf("typ %s refused for issuer %s: set issuers[].profile (hydra, keycloak, entra and auth0 send typ JWT; okta and cognito none) or allow_typ", typ, issuer)
	case identity.ClassNotAccess:
		return "the client sent a refresh or ID token: it must send its access token"
	case identity.ClassIssuer:
		return fmt.Sprintf("the token's iss is not exactly %s: copy the issuer from the AS metadata byte for byte (mcp-authz doctor compares them)", issuer)
	case identity.ClassCredentials:
		return fmt.Sprintf("the introspection endpoint of %s refused our client credentials: check issuers[].introspection.client_id and client_secret (or auth_method)", issuer)
	case identity.ClassInactive:
		return "the AS says the token is not active (revoked, expired, or not its token)"
	case identity.ClassKeyNotYetSeen:
		return fmt.Sprintf("the token's kid is not among the keys of %s fetched within jwks_refresh_interval: a key just rotated in is picked up at the next allowed refetch (a fresh Ory Hydra may do this once); a made-up kid never is", issuer)
	case identity.ClassUnavailable:
		return "the AS could not be reached or answered badly: see the preceding warnings and /readyz"
	case identity.ClassBinding:
		return "a sender-constrained token without its proof of possession (a DPoP-bound token as Bearer, another key's proof, a certificate-bound token without that certificate), or a resource whose dpop/mtls_bound setting refuses it: see README \"Sender-constrained tokens\""
	case identity.ClassDPoPProof:
		return "the DPoP proof failed a check of RFC 9449 §4.3 (the debug log names which); a client whose clock is off fails the iat window (dpop.iat_window)"
	}
	return ""
}

// issuerError ties a verification failure to the configured issuer it concerns, and may
// override its class with one only the decision core can see (a near-miss iss).
type issuerError struct {
	issuer string
	cls    identity.Class
	fix    string
	err    error
}

func (e *issuerError) Error() string { return e.err.Error() }
func (e *issuerError) Unwrap() error { return e.err }

// resourceError is a failure of the per-resource checks, with its class and fix.
type resourceError struct {
	cls identity.Class
	msg string
}

func (e *resourceError) Error() string               { return e.msg }
func (e *resourceError) DenialClass() identity.Class { return e.cls }

// audienceError says what the token's audience was and what to do, because an empty or wrong
// aud is the commonest interop failure (Hydra ignores RFC 8707 resource=).
func audienceError(rt *route, id *identity.Identity) error {
	const maxShown = 4
	aud := id.Audience
	if len(aud) > maxShown {
		aud = aud[:maxShown]
	}
	got := "no aud"
	if len(aud) > 0 {
		got = fmt.Sprintf("aud %q", aud)
	}
	return &issuerError{issuer: id.Issuer, cls: identity.ClassAudience, err: &resourceError{identity.ClassAudience, "audience does not name this resource"},
		fix: fmt.Sprintf("the token has %s, not %s: the client must request it (resource=, or audience= for Hydra and Auth0, which ignore resource=) and the AS must grant it; or list the AS's audience in resources[].audiences", got, rt.ID)}
}
