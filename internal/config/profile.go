package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Profile is what one authorization server product is known to do differently from RFC 9068
// and RFC 7662, so that an operator names the product instead of rediscovering each quirk from
// denials. A profile only fills in keys the operator left unset; what it set is listed by
// Issuer.ProfileSet and printed by check-config.
type Profile struct {
	Name string
	// The shapes below are the vendor's documented ones (see Docs); check-config prints them.
	AccessTokenTyp string // the JWS typ header of its JWT access tokens
	ScopeClaim     string // where the granted scopes are
	Audience       string // what aud holds, and how a client gets the resource into it
	Introspection  string // where RFC 7662 introspection is, if anywhere
	IssuerForm     string // the exact iss, which must match issuers[].issuer to the byte
	Docs           string
	apply          func(is *Issuer) []string
}

// Profiles are the known products. generic is RFC 9068 / RFC 7662 as written.
var Profiles = map[string]Profile{
	"generic": {
		Name:           "generic",
		AccessTokenTyp: "at+jwt (RFC 9068 §2.1)",
		ScopeClaim:     "scope, a space-separated string (RFC 9068 §2.2.3); scp is read too",
		Audience:       "the resource, from the client's RFC 8707 resource parameter",
		Introspection:  "introspection_endpoint in the AS metadata (RFC 8414), client authentication required",
		IssuerForm:     "as in the AS metadata's issuer",
		apply:          func(*Issuer) []string { return nil },
	},
	"hydra": {
		Name:           "hydra",
		AccessTokenTyp: "JWT (strategies.access_token: jwt, or a client's access_token_strategy: jwt); opaque otherwise",
		ScopeClaim:     "scp, an array of strings (JWT); scope, a string (introspection)",
		Audience:       "only what the client asks for with audience= (Hydra ignores RFC 8707 resource=), from the client's allowed audience list; empty otherwise",
		Introspection:  "not in discovery: the admin port's /admin/oauth2/introspect, which takes no client authentication (protect the admin port by network)",
		IssuerForm:     "urls.self.issuer exactly as configured, with or without a trailing slash (v2.3.0 keeps it as given)",
		Docs:           "https://www.ory.sh/docs/hydra/guides/jwt, https://www.ory.sh/docs/reference/api#tag/oAuth2/operation/introspectOAuth2Token",
		apply: func(is *Issuer) []string {
			set := typJWT(is)
			if in := is.Introspection; in != nil && in.AuthMethod == "" && in.ClientID == "" && !in.ClientSecret.set() {
				in.AuthMethod = "none"
				set = append(set, "introspection.auth_method: none (the admin API takes no client authentication)")
			}
			return set
		},
	},
	"keycloak": {
		Name:           "keycloak",
		AccessTokenTyp: "JWT in the header; the payload's typ claim says Bearer (access), ID, Refresh or Logout",
		ScopeClaim:     "scope, a space-separated string",
		Audience:       "account by default; add an Audience protocol mapper that names the resource",
		Introspection:  "{issuer}/protocol/openid-connect/token/introspect, in discovery; client authentication required",
		IssuerForm:     "https://HOST/realms/REALM (before Keycloak 17: https://HOST/auth/realms/REALM)",
		Docs:           "https://www.keycloak.org/docs/latest/server_admin/#_audience",
		apply:          typJWT,
	},
	"entra": {
		Name:           "entra",
		AccessTokenTyp: "JWT",
		ScopeClaim:     "scp, a space-separated string (delegated); app-only tokens carry roles instead",
		Audience:       "the API's application ID URI or client id (v2 tokens: the client id GUID); request scope=RESOURCE/.default",
		Introspection:  "none: Entra ID has no RFC 7662 endpoint; its access tokens are always JWTs",
		IssuerForm:     "https://login.microsoftonline.com/TENANT_ID/v2.0 for v2 tokens, https://sts.windows.net/TENANT_ID/ for v1 (accessTokenAcceptedVersion)",
		Docs:           "https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference",
		apply: func(is *Issuer) []string {
			set := typJWT(is)
			if is.RolesAsScopes == nil {
				t := true
				is.RolesAsScopes = &t
				set = append(set, "roles_as_scopes: true (app-only tokens carry roles, not scp)")
			}
			return set
		},
	},
	"auth0": {
		Name:           "auth0",
		AccessTokenTyp: "JWT with the Auth0 token profile (default); at+jwt with the RFC 9068 profile",
		ScopeClaim:     "scope, a space-separated string; permissions, an array, with RBAC",
		Audience:       "the API identifier, requested with audience=; plus https://TENANT/userinfo when openid is asked",
		Introspection:  "none: Auth0 issues JWT access tokens for APIs; opaque ones are for /userinfo only",
		IssuerForm:     "https://TENANT.auth0.com/ with a trailing slash (or the custom domain)",
		Docs:           "https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles",
		apply:          typJWT,
	},
	"okta": {
		Name:           "okta",
		AccessTokenTyp: "none: the header has only kid and alg",
		ScopeClaim:     "scp, an array of strings",
		Audience:       "the custom authorization server's audience (default api://default), not the resource",
		Introspection:  "{issuer}/v1/introspect, in discovery; client authentication required",
		IssuerForm:     "https://ORG.okta.com/oauth2/AUTH_SERVER_ID (no trailing slash)",
		Docs:           "https://developer.okta.com/docs/reference/api/oidc/#access-token",
		apply:          noTyp,
	},
	"cognito": {
		Name:           "cognito",
		AccessTokenTyp: "none: the header has only kid and alg; the payload's token_use says access or id",
		ScopeClaim:     "scope, a space-separated string",
		Audience:       "none: access tokens carry client_id, not aud, so no resource can be checked; add aud with a pre token generation trigger (event version 2) or use another AS",
		Introspection:  "none: Cognito has no RFC 7662 endpoint",
		IssuerForm:     "https://cognito-idp.REGION.amazonaws.com/USER_POOL_ID",
		Docs:           "https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html",
		apply:          noTyp,
	},
}

// ProfileNames lists the profiles, sorted, for error messages.
func ProfileNames() string {
	return strings.Join(slices.Sorted(maps.Keys(Profiles)), ", ")
}

// typJWT accepts typ JWT beside at+jwt, unless the operator already decided about typ: ID
// tokens of the same issuer are still refused by their claims (jwt's notAccess).
func typJWT(is *Issuer) []string {
	if is.RequireTyp != nil || len(is.AllowTyp) > 0 {
		return nil
	}
	is.AllowTyp = []string{"JWT"}
	return []string{"allow_typ: [JWT]"}
}

// noTyp stops requiring typ for a product whose access tokens have none; its ID tokens are
// still refused by their claims (aud only the client, token_use id).
func noTyp(is *Issuer) []string {
	if is.RequireTyp != nil || len(is.AllowTyp) > 0 {
		return nil
	}
	f := false
	is.RequireTyp = &f
	return []string{"require_typ: false"}
}

// applyProfile fills in what is.Profile knows, recording it in is.profileSet. An unknown
// profile is left for Validate to report.
func (is *Issuer) applyProfile() {
	p, ok := Profiles[is.profileName()]
	if !ok {
		return
	}
	// Applied again (ApplyDefaults twice), it finds its keys set and sets nothing: the first
	// record stands.
	if set := p.apply(is); len(set) > 0 {
		is.profileSet = set
	}
}

func (is *Issuer) profileName() string {
	if is.Profile == "" {
		return "generic"
	}
	return is.Profile
}

// ProfileSet lists the keys the issuer's profile filled in, as key: value.
func (is *Issuer) ProfileSet() []string { return is.profileSet }

// validateProfile reports settings the profile's product cannot satisfy.
func (c *Config) validateProfile(bad func(string, string, ...any), key string, is *Issuer) {
	if _, ok := Profiles[is.profileName()]; !ok {
		bad(key+".profile", "%q is not a known profile: use one of %s", is.Profile, ProfileNames())
		return
	}
	switch is.Profile {
	case "hydra":
		if in := is.Introspection; in != nil && in.Endpoint == "" {
			bad(key+".introspection.endpoint", "required with profile: hydra: Hydra's discovery names no introspection endpoint; set the admin URL, e.g. http://hydra-admin:4445/admin/oauth2/introspect")
		}
	case "entra", "auth0", "cognito":
		if is.Introspection != nil {
			bad(key+".introspection", "profile %s: %s; remove introspection", is.Profile, Profiles[is.Profile].Introspection)
		}
	}
}

// ProfileReport is what check-config prints about an issuer's profile.
func (is *Issuer) ProfileReport(key string) string {
	p := Profiles[is.profileName()]
	var b strings.Builder
	fmt.Fprintf(&b, "%s: profile %s\n", key, p.Name)
	if len(is.profileSet) == 0 {
		b.WriteString("  set: nothing (no key left unset that it knows about)\n")
	} else {
		fmt.Fprintf(&b, "  set: %s\n", strings.Join(is.profileSet, "; "))
	}
	for _, l := range [][2]string{{"access token typ", p.AccessTokenTyp}, {"scopes", p.ScopeClaim},
		{"audience", p.Audience}, {"introspection", p.Introspection}, {"issuer form", p.IssuerForm}, {"docs", p.Docs}} {
		if l[1] != "" {
			fmt.Fprintf(&b, "  %s: %s\n", l[0], l[1])
		}
	}
	return b.String()
}
