package config

import (
	"fmt"
	"net/url"
	"strings"
)

// UpstreamCredentials is what a resource's upstream receives in place of the caller's token
// (MCP forbids passing that one through): exactly one of TokenExchange, ClientCredentials,
// Static.
type UpstreamCredentials struct {
	TokenExchange     *TokenExchange     `yaml:"token_exchange,omitempty"`
	ClientCredentials *ClientCredentials `yaml:"client_credentials,omitempty"`
	Static            *StaticCredential  `yaml:"static,omitempty"`
	// Header the credential is set in (replacing any client copy); default authorization.
	Header string `yaml:"header,omitempty"`
	// Prefix goes before the credential; default "Bearer " in authorization, "" otherwise.
	Prefix *string `yaml:"prefix,omitempty"`
}

// TokenExchange: RFC 8693 exchange of the caller's token at its issuer's token endpoint.
type TokenExchange struct {
	Audience []string `yaml:"audience,omitempty"` // the downstream API (RFC 8693 audience)
	Resource []string `yaml:"resource,omitempty"` // its RFC 8707 resource indicator(s)
	// Scopes asked for; only those the caller holds are (never broader than the caller's).
	Scopes             []string `yaml:"scopes,omitempty"`
	RequestedTokenType string   `yaml:"requested_token_type,omitempty"` // default ...:access_token
	ActorToken         Secret   `yaml:"actor_token,omitempty"`
	ActorTokenType     string   `yaml:"actor_token_type,omitempty"`
	// ActHeader receives the new token's act claim as compact JSON; empty: not set.
	ActHeader string      `yaml:"act_header,omitempty"`
	Client    TokenClient `yaml:"client"`
}

// ClientCredentials: one service token per resource (RFC 6749 §4.4), refreshed before expiry.
type ClientCredentials struct {
	Issuer   string      `yaml:"issuer,omitempty"` // whose metadata names the token endpoint
	Scopes   []string    `yaml:"scopes,omitempty"`
	Audience []string    `yaml:"audience,omitempty"`
	Resource []string    `yaml:"resource,omitempty"`
	Client   TokenClient `yaml:"client"`
}

// StaticCredential: a fixed secret (an API token the upstream API issued).
type StaticCredential struct {
	Value Secret `yaml:"value"`
}

// TokenClient is how mcp-authz authenticates at a token endpoint.
type TokenClient struct {
	ClientID string `yaml:"client_id"`
	// AuthMethod: client_secret_basic (default), client_secret_post or private_key_jwt.
	AuthMethod   string `yaml:"auth_method,omitempty"`
	ClientSecret Secret `yaml:"client_secret,omitempty"`
	// PrivateKey for private_key_jwt (RFC 7523): a PEM RSA or EC P-256 key.
	PrivateKey    Secret   `yaml:"private_key,omitempty"`
	KeyID         string   `yaml:"key_id,omitempty"`
	TokenEndpoint string   `yaml:"token_endpoint,omitempty"` // default: from the AS metadata
	Timeout       Duration `yaml:"timeout,omitempty"`        // default 2s
}

// Token types a token exchange may ask for: the upstream receives them as bearer tokens.
var requestableTokenTypes = map[string]bool{
	"urn:ietf:params:oauth:token-type:access_token": true,
	"urn:ietf:params:oauth:token-type:jwt":          true,
}

// validateUpstream checks resources[i].upstream_credentials.
func (c *Config) validateUpstream(bad func(string, string, ...any), key string, r *Resource) {
	u := r.UpstreamCredentials
	if u == nil {
		return
	}
	key += ".upstream_credentials"
	n := 0
	for _, set := range []bool{u.TokenExchange != nil, u.ClientCredentials != nil, u.Static != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad(key, "set exactly one of token_exchange, client_credentials or static (found %d)", n)
	}
	if r.ForwardAuthorization {
		bad(key, "forward_authorization: true would pass the caller's token to the upstream beside its own credential: remove forward_authorization")
	}
	if u.Header != "" && u.Header != "authorization" {
		checkHeaderName(bad, key+".header", u.Header)
	}
	if u.Header != "" && strings.ToLower(u.Header) != u.Header {
		bad(key+".header", "%q: write header names in lower case", u.Header)
	}
	if u.Prefix != nil && !printableASCII(*u.Prefix) {
		bad(key+".prefix", "must be printable ASCII (e.g. \"Bearer \")")
	}
	h := r.IdentityHeaders
	for _, idh := range []string{h.Subject, h.ClientID, h.Scopes, h.Issuer} {
		if hn := cmpOr(u.Header, "authorization"); idh != "" && idh == hn {
			bad(key+".header", "%q is also an identity header: pick another name", hn)
		}
	}
	if x := u.TokenExchange; x != nil {
		k := key + ".token_exchange"
		if len(x.Audience) == 0 && len(x.Resource) == 0 {
			bad(k, "name the downstream API the new token is for: audience (e.g. [https://api.example.com]) or resource")
		}
		for j, a := range x.Audience {
			if a == "" || !printableASCII(a) || strings.Contains(a, " ") {
				bad(fmt.Sprintf("%s.audience[%d]", k, j), "%q: an audience is a non-empty string without spaces", a)
			}
		}
		for j, res := range x.Resource {
			if pu, err := url.Parse(res); err != nil || !pu.IsAbs() || pu.Host == "" || pu.Fragment != "" || strings.Contains(res, "#") {
				bad(fmt.Sprintf("%s.resource[%d]", k, j), "%q: an absolute URL without fragment (RFC 8707 §2)", res)
			}
		}
		for j, s := range x.Scopes {
			if !scopeTokenOK(s) {
				bad(fmt.Sprintf("%s.scopes[%d]", k, j), "%q is not a valid scope (RFC 6749 §3.3)", s)
			}
		}
		if x.RequestedTokenType != "" && !requestableTokenTypes[x.RequestedTokenType] {
			bad(k+".requested_token_type", "%q: use urn:ietf:params:oauth:token-type:access_token (default) or urn:ietf:params:oauth:token-type:jwt", x.RequestedTokenType)
		}
		checkSecretRef(bad, k+".actor_token", x.ActorToken)
		if x.ActorTokenType != "" && !x.ActorToken.set() {
			bad(k+".actor_token_type", "without actor_token it is not sent: add actor_token {env: NAME} or remove it")
		}
		if x.ActHeader != "" {
			checkHeaderName(bad, k+".act_header", x.ActHeader)
			if x.ActHeader == cmpOr(u.Header, "authorization") {
				bad(k+".act_header", "%q is the credential's own header: pick another name such as x-mcp-act", x.ActHeader)
			}
		}
		c.validateTokenClient(bad, k+".client", &x.Client)
	}
	if cc := u.ClientCredentials; cc != nil {
		k := key + ".client_credentials"
		if cc.Issuer == "" && cc.Client.TokenEndpoint == "" {
			bad(k+".issuer", "required (whose metadata names the token endpoint), unless client.token_endpoint is set")
		} else if cc.Issuer != "" {
			if err := c.checkURL(cc.Issuer, false); err != nil {
				bad(k+".issuer", "%q %v", cc.Issuer, err)
			}
		}
		for j, s := range cc.Scopes {
			if !scopeTokenOK(s) {
				bad(fmt.Sprintf("%s.scopes[%d]", k, j), "%q is not a valid scope (RFC 6749 §3.3)", s)
			}
		}
		for j, res := range cc.Resource {
			if pu, err := url.Parse(res); err != nil || !pu.IsAbs() || pu.Host == "" || pu.Fragment != "" {
				bad(fmt.Sprintf("%s.resource[%d]", k, j), "%q: an absolute URL without fragment (RFC 8707 §2)", res)
			}
		}
		c.validateTokenClient(bad, k+".client", &cc.Client)
	}
	if st := u.Static; st != nil {
		if !st.Value.set() {
			bad(key+".static.value", "required: {env: NAME} or {file: PATH}, never the secret itself")
		}
		checkSecretRef(bad, key+".static.value", st.Value)
	}
}

func (c *Config) validateTokenClient(bad func(string, string, ...any), k string, tc *TokenClient) {
	if tc.ClientID == "" {
		bad(k+".client_id", "required: the client mcp-authz is registered as at the authorization server")
	}
	switch tc.AuthMethod {
	case "", "client_secret_basic", "client_secret_post":
		if !tc.ClientSecret.set() {
			bad(k+".client_secret", "required with auth_method %s: {env: NAME} or {file: PATH}", cmpOr(tc.AuthMethod, "client_secret_basic"))
		}
		if tc.PrivateKey.set() {
			bad(k+".private_key", "only for auth_method: private_key_jwt: set that, or remove private_key")
		}
	case "private_key_jwt":
		if !tc.PrivateKey.set() {
			bad(k+".private_key", "required with auth_method private_key_jwt: {file: PATH} of a PEM RSA or EC P-256 key")
		}
		if tc.ClientSecret.set() {
			bad(k+".client_secret", "not used with private_key_jwt: remove it")
		}
	default:
		bad(k+".auth_method", "%q: use client_secret_basic, client_secret_post or private_key_jwt", tc.AuthMethod)
	}
	checkSecretRef(bad, k+".client_secret", tc.ClientSecret)
	checkSecretRef(bad, k+".private_key", tc.PrivateKey)
	if tc.TokenEndpoint != "" {
		if err := c.checkURL(tc.TokenEndpoint, true); err != nil {
			bad(k+".token_endpoint", "%q %v", tc.TokenEndpoint, err)
		}
	}
	if tc.Timeout.D() != 0 && c.CheckTimeout != 0 && tc.Timeout >= c.CheckTimeout {
		bad(k+".timeout", "%s is not below check_timeout %s: every slow token request would end as unavailable before its answer; lower it", tc.Timeout.D(), c.CheckTimeout.D())
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
