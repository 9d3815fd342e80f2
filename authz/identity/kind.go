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
