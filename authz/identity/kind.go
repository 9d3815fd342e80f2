package identity

import "strings"

// TokenKind is what kind of token a name says it is, as found in a JWT's typ header or claim,
// or an introspection answer's token_use, token_type or token_type_hint.
type TokenKind string

// Token kinds. Only KindAccess may authorize a request; KindUnknown ("JWT", or no name) decides
// nothing either way.
const (
	KindUnknown TokenKind = ""
	KindAccess  TokenKind = "an access token"
	KindRefresh TokenKind = "a refresh token"
	KindID      TokenKind = "an ID token"
	KindOther   TokenKind = "another kind of token"
)

// KindOf sorts a token kind's name: RFC 8693 §3 token type URIs, RFC 7009 §2.1
// token_type_hint values, media types of explicitly typed JWTs (RFC 8725 §3.11) and the names
// particular servers use (Ory Hydra token_use "refresh_token"; Keycloak typ "Refresh",
// "Offline", "ID"; Cognito token_use "access", "id"). Both verifiers use it, so a token kind
// means the same whether it came in a JWT or from introspection.
func KindOf(s string) TokenKind {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "urn:ietf:params:oauth:token-type:")
	s = strings.TrimPrefix(s, "application/")
	s = strings.TrimSuffix(s, "+jwt")
	switch s {
	case "at", "access_token", "access", "bearer":
		return KindAccess
	case "refresh_token", "refresh", "offline", "offline_token":
		return KindRefresh
	case "id_token", "id", "idtoken", "serialized-id":
		return KindID
	case "logout", "logout_token", "secevent", "dpop", "token-introspection", "oauth-authz-req":
		// OIDC Back-Channel Logout §2.4, RFC 8417 §2.3, RFC 9449 §4.2, RFC 9701 §5,
		// RFC 9101 §10.8: JWTs that are not credentials at all.
		return KindOther
	}
	return KindUnknown
}

// Class is why a token was refused, for operators only (logs, the denials metric): a small
// fixed set, so it can label a metric, never shown to clients, who get the generic challenge.
type Class string

// Denial classes. A verifier's error says its class through DenialClass; an error without one
// is ClassUnavailable when it wraps ErrUnavailable, else ClassOther.
const (
	ClassTyp           Class = "typ"              // JWT typ not accepted for the issuer
	ClassNotAccess     Class = "not_access_token" // a refresh, ID or other token, not an access token
	ClassIssuer        Class = "issuer"           // iss differs from the configured issuer
	ClassUnknownIssuer Class = "unknown_issuer"   // iss names no configured issuer
	ClassAudience      Class = "audience"         // aud does not name the resource
	ClassExpired       Class = "expired"
	ClassNotYetValid   Class = "not_yet_valid"
	ClassSignature     Class = "signature"   // bad signature, alg not allowed, a key the JWKS does not have
	ClassKeyNotYetSeen Class = "unknown_key" // a kid not in keys fetched within jwks_refresh_interval
	ClassMalformed     Class = "malformed"
	ClassInactive      Class = "inactive"    // introspection said active: false (revoked, expired, unknown)
	ClassScope         Class = "scope"       // valid, but lacks a scope the operation needs
	ClassCredentials   Class = "credentials" // the introspection endpoint refused our credentials
	ClassCached        Class = "cached"      // refused earlier; the class was logged then
	ClassBinding       Class = "binding"     // a sender-constrained token without its proof, or with another key's or certificate's
	ClassDPoPProof     Class = "dpop_proof"  // the DPoP proof is invalid (RFC 9449 §4.3)
	ClassUnavailable   Class = "unavailable"
	ClassOther         Class = "other"
)

// Classed is an error that knows its Class.
type Classed interface{ DenialClass() Class }
