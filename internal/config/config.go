// Package config is mcp-authz's configuration file: its YAML schema, defaults and validation.
// Validation reports every problem at once, each naming the key at fault and how to fix it,
// and never echoes a secret.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole file.
type Config struct {
	Listen       Listen              `yaml:"listen"`
	Log          Log                 `yaml:"log"`
	Dev          Dev                 `yaml:"dev"`
	ClockSkew    Duration            `yaml:"clock_skew"`
	Unavailable  Unavailable         `yaml:"unavailable"`
	CheckTimeout Duration            `yaml:"check_timeout"` // see DefaultCheckTimeout
	Shutdown     Shutdown            `yaml:"shutdown"`
	Cache        Cache               `yaml:"cache"`
	ScopeImplies map[string][]string `yaml:"scope_implies"`
	Issuers      []Issuer            `yaml:"issuers"`
	Resources    []Resource          `yaml:"resources"`
	APIKeys      APIKeys             `yaml:"api_keys"`
	Tracing      Tracing             `yaml:"tracing"`
	Admin        Admin               `yaml:"admin"`
	CORS         CORS                `yaml:"cors"`
	DPoP         DPoP                `yaml:"dpop"`
	ForwardAuth  ForwardAuth         `yaml:"forward_auth"`
}

// ForwardAuth configures the HTTP forward-auth endpoint (nginx auth_request, Envoy HTTP ext_authz).
type ForwardAuth struct {
	// ClientCertificateHeader: the header in which the TLS-terminating proxy passes the client
	// certificate, for certificate-bound tokens (RFC 8705): x-forwarded-client-cert (Envoy's
	// XFCC) or a header holding URL-encoded PEM (nginx $ssl_client_escaped_cert). "" disables.
	ClientCertificateHeader string `yaml:"client_certificate_header"`
	// TrustedProxies: the CIDRs whose ClientCertificateHeader is believed; default loopback.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// CORS: which browser origins may read denials (the challenge). The metadata document is
// readable from any origin.
type CORS struct {
	// AllowedOrigins: exact origins ("https://app.example.com") whose denials carry
	// Access-Control-Allow-Origin with that origin; empty or ["*"]: every origin ("*").
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Secret names where a secret lives: an environment variable or a file, never the value.
type Secret struct {
	Env  string `yaml:"env,omitempty"`
	File string `yaml:"file,omitempty"`
}

func (s Secret) set() bool { return s.Env != "" || s.File != "" }

// Redis is the shared L2 cache. Mode says what addrs are: single (one node), sentinel (the
// sentinels, with master_name) or cluster (seed nodes of a Redis Cluster).
type Redis struct {
	// Mode is single, sentinel or cluster. Default: sentinel with master_name, cluster with
	// cluster: true (the older spelling), else single.
	Mode       string   `yaml:"mode"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Cluster    bool     `yaml:"cluster"`
	Username   string   `yaml:"username"`
	Password   Secret   `yaml:"password"`
	DB         int      `yaml:"db"`
	TLS        bool     `yaml:"tls"`
	Timeout    Duration `yaml:"timeout"` // per call; default 50ms
	// SentinelUsername and SentinelPassword authenticate to the sentinels themselves (their
	// requirepass / ACL), which may differ from the data nodes' username and password.
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword Secret `yaml:"sentinel_password"`
}

// Introspection is an issuer's RFC 7662 endpoint, for opaque tokens.
type Introspection struct {
	Endpoint     string `yaml:"endpoint"` // default: introspection_endpoint from the AS metadata
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// AuthMethod: client_secret_basic (default), client_secret_post, or none for an endpoint
	// protected by network placement instead (Ory Hydra's admin port).
	AuthMethod    string   `yaml:"auth_method"`
	Timeout       Duration `yaml:"timeout"` // default 2s
	MaxConcurrent int      `yaml:"max_concurrent"`
	// The shape of this issuer's opaque tokens: a token that does not fit is refused without
	// an introspection call. Unset: any token may be sent.
	OpaqueTokenPattern   string `yaml:"opaque_token_pattern"` // a regexp the whole token must match
	OpaqueTokenPrefix    string `yaml:"opaque_token_prefix"`
	OpaqueTokenMinLength int    `yaml:"opaque_token_min_length"`
	OpaqueTokenMaxLength int    `yaml:"opaque_token_max_length"`
	// CircuitBreaker: after this many consecutive failures or timeouts, the endpoint is not
	// called for open_for; then one probe is. Defaults 5 and 5s.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker"`
}

// CircuitBreaker stops calling an endpoint that keeps failing, for a while.
type CircuitBreaker struct {
	Failures int      `yaml:"failures"`
	OpenFor  Duration `yaml:"open_for"`
}

// APIKeys are static keys, by SHA-256 digest: a legacy path for clients without OAuth.
type APIKeys struct {
	Scheme string   `yaml:"scheme"` // Bearer (default) or another scheme name such as Token
	Keys   []APIKey `yaml:"keys"`
}

type APIKey struct {
	SHA256   string   `yaml:"sha256"` // hex digest of the key; never the key itself
	Subject  string   `yaml:"subject"`
	ClientID string   `yaml:"client_id"`
	Scopes   []string `yaml:"scopes"`
}

// Tracing exports one span per Check over OTLP. Off when exporter is empty.
type Tracing struct {
	Exporter    string  `yaml:"exporter"` // otlp-grpc or otlp-http
	Endpoint    string  `yaml:"endpoint"` // host:port; default from OTEL_EXPORTER_OTLP_ENDPOINT
	Insecure    bool    `yaml:"insecure"`
	SampleRatio float64 `yaml:"sample_ratio"` // default 1 once an exporter is set
	ServiceName string  `yaml:"service_name"`
	// IncludeSubject adds the caller's subject (enduser.id) to Check spans; off by default,
	// as the subject is personal data in many deployments.
	IncludeSubject bool `yaml:"include_subject"`
}

// Admin protects the admin endpoints (token revocation) on the HTTP listener.
type Admin struct {
	Token Secret `yaml:"token"` // bearer token the admin endpoints require; unset disables them
}

// Shutdown: on SIGTERM mcp-authz first drains (health NOT_SERVING, /readyz 503, Checks still
// answered) so proxies and Kubernetes stop sending to it, then stops gracefully.
type Shutdown struct {
	// Drain is how long it keeps answering while advertising NOT_SERVING; default 5s, 0s for
	// none. Longer than the proxy's health-check detection time (interval × unhealthy
	// threshold) and the orchestrator's endpoint propagation.
	Drain *Duration `yaml:"drain"`
	// Timeout is how long in-flight Checks then get to finish; default 10s.
	Timeout Duration `yaml:"timeout"`
}

type Listen struct {
	GRPC           string `yaml:"grpc"`            // ext_authz gRPC listener
	HTTP           string `yaml:"http"`            // metadata, health; "" disables
	GRPCReflection bool   `yaml:"grpc_reflection"` // off by default: it tells anyone the API
	// TLS on the gRPC listener; with ClientCAFile, mTLS: only proxies with a certificate from
	// that CA may ask. Files are re-read when they change (certificate rotation).
	TLS TLS `yaml:"tls"`
}

type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json, text
	// Decisions is the level of the one-line-per-decision log: debug (default), info, or off.
	Decisions string `yaml:"decisions"`
}

// Dev relaxes rules that only local development may relax.
type Dev struct {
	// AllowHTTP accepts http:// resource identifiers and issuers. MCP requires HTTPS
	// (RFC 9728 §1.2, OAuth 2.1 §1.5); this exists for loopback demos.
	AllowHTTP bool `yaml:"allow_http"`
}

type Unavailable struct {
	Status     int      `yaml:"status"`      // 401 (default) or 503
	RetryAfter Duration `yaml:"retry_after"` // with 503
}

type Cache struct {
	MaxTTL      Duration `yaml:"max_ttl"`      // default 5m
	NegativeTTL Duration `yaml:"negative_ttl"` // default 10s
	L1Size      int      `yaml:"l1_size"`      // entries; default 100000; -1 disables
	// RevocationLimit bounds how many revoked tokens each replica remembers (for max_ttl plus
	// slack, so that a revoked token's value written back into Redis is refused); about 120
	// bytes each. Past it the oldest is forgotten and Redis values that could predate it are
	// misses for a while: the IdP is asked more, a revoked token is never served. Default 10000.
	RevocationLimit int `yaml:"revocation_limit"`
	// StaleGrace: how long past max_ttl a token this replica verified before may still be
	// allowed on that verification while its re-verification cannot get an answer (the IdP is
	// down or black-holed), never past the token's exp; the entry is kept that long in L1.
	// Default 5m; 0s disables.
	StaleGrace *Duration `yaml:"stale_grace"`
	// Secret keys the cache: entries are stored under HMAC-SHA256(secret, token) and
	// authenticated with it. Required with Redis (every replica needs the same one); without
	// Redis a random per-process secret is used when unset.
	Secret Secret `yaml:"secret"`
	Redis  *Redis `yaml:"redis"`
}

// Issuer is an authorization server whose JWT access tokens are verified locally.
type Issuer struct {
	Issuer string `yaml:"issuer"`
	// Profile names the product (hydra, keycloak, entra, auth0, okta, cognito, generic), whose
	// known quirks then fill in the keys left unset (see Profiles); default generic.
	Profile    string   `yaml:"profile,omitempty"`
	JWKSURI    string   `yaml:"jwks_uri"`    // default: from RFC 8414 or OIDC discovery
	Algorithms []string `yaml:"algorithms"`  // default RS256, ES256, PS256, EdDSA
	RequireTyp *bool    `yaml:"require_typ"` // RFC 9068 typ at+jwt; default true
	// AllowTyp: further typ values accepted beside at+jwt, for issuers that send "JWT".
	AllowTyp []string `yaml:"allow_typ"`
	// RolesAsScopes also reads a JWT's roles claim as granted scopes (Entra ID's app-only
	// tokens carry their permissions there). Default false; profile entra sets it.
	RolesAsScopes   *bool    `yaml:"roles_as_scopes,omitempty"`
	RefreshInterval Duration `yaml:"jwks_refresh_interval"`
	// JWKSMaxStale: how long keys past their Cache-Control lifetime keep verifying while the
	// issuer is unreachable; default 24h.
	JWKSMaxStale Duration `yaml:"jwks_max_stale"`
	// VerifyJWT: verify this issuer's JWTs locally (default true). False for an issuer of
	// opaque tokens only, so no JWKS is ever fetched.
	VerifyJWT     *bool          `yaml:"verify_jwt"`
	Introspection *Introspection `yaml:"introspection"`
	// FallbackToIntrospection: when this issuer's keys cannot be fetched, verify its JWTs
	// through this issuer's own introspection endpoint instead of failing. Never another
	// issuer's: per issuer, not global.
	FallbackToIntrospection bool `yaml:"fallback_to_introspection"`
	// RevalidateAfter: an introspected token's cache entry is re-introspected in the
	// background once it is this old, the cached answer serving meanwhile, so a revocation at
	// the AS reaches the edge within about this long instead of cache.max_ttl. 0: max_ttl.
	// (With cache.stale_grace: 0s there is no cached answer to serve meanwhile, and that
	// Check waits for the re-introspection.)
	RevalidateAfter Duration `yaml:"revalidate_after,omitempty"`

	profileSet []string // what Profile filled in (ProfileSet)
}

// Resource is one protected resource.
type Resource struct {
	Name                 string          `yaml:"name"`
	Resource             string          `yaml:"resource"`
	Hosts                []string        `yaml:"hosts"`
	PathPrefix           string          `yaml:"path_prefix"`
	AuthorizationServers []string        `yaml:"authorization_servers"`
	Issuers              []string        `yaml:"issuers"`
	Audiences            []string        `yaml:"audiences"`
	Scopes               Scopes          `yaml:"scopes"`
	PublicPaths          []string        `yaml:"public_paths"`
	IdentityHeaders      IdentityHeaders `yaml:"identity_headers"`
	ForwardAuthorization bool            `yaml:"forward_authorization"`
	CORSPreflight        *bool           `yaml:"cors_preflight"` // default true
	AllowAPIKeys         bool            `yaml:"allow_api_keys"`
	MCP                  *MCP            `yaml:"mcp"`
	Rules                []Rule          `yaml:"rules"`
	Realm                string          `yaml:"realm"`
	ResourceName         string          `yaml:"resource_name"`
	Documentation        string          `yaml:"resource_documentation"`
	PolicyURI            string          `yaml:"resource_policy_uri"`
	TOSURI               string          `yaml:"resource_tos_uri"`
	// UpstreamCredentials: what the upstream receives in place of the caller's token (upstream.go).
	UpstreamCredentials *UpstreamCredentials `yaml:"upstream_credentials,omitempty"`
	// DPoP and MTLSBound: off (default), allowed or required; see the README, "Sender-constrained tokens".
	DPoP      string `yaml:"dpop"`
	MTLSBound string `yaml:"mtls_bound"`
}

// MCP maps MCP JSON-RPC operations in the request body (Envoy with_request_body) to the
// scopes they need beyond scopes.required.
type MCP struct {
	Tools   map[string][]string `yaml:"tools"`   // tools/call by tool name; "*" for any other tool
	Methods map[string][]string `yaml:"methods"` // any JSON-RPC method, e.g. resources/read
}

type Scopes struct {
	Required  []string `yaml:"required"`
	Supported []string `yaml:"supported"`
}

// IdentityHeaders: "-" disables a header; an empty value takes the default.
type IdentityHeaders struct {
	Subject  string            `yaml:"subject"`
	ClientID string            `yaml:"client_id"`
	Scopes   string            `yaml:"scopes"`
	Issuer   string            `yaml:"issuer"`
	Binding  string            `yaml:"binding"` // dpop, mtls, dpop+mtls or bearer; default x-auth-token-binding
	Claims   map[string]string `yaml:"claims"`  // claim → header
}

// Duration reads "30s", "5m".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder go on, so the rest of the file is still checked.
	var s string
	if err := n.Decode(&s); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as 30s or 5m", n.Line)}}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 30s or 5m", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Grace is StaleGrace, or its default when unset (a Config not made by Parse).
func (c *Cache) Grace() time.Duration {
	if c.StaleGrace == nil {
		return DefaultStaleGrace
	}
	return c.StaleGrace.D()
}

// Load reads, defaults and validates a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse decodes strictly (an unknown or misspelled key is an error), applies defaults and
// validates.
//
// Every problem is reported in one pass: unknown keys and values of the wrong type (yaml.v3
// decodes the rest of the file past them) together with what validation finds in the rest.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var root yaml.Node
	var errs []error
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty: it needs at least issuers and resources")
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) || yaml.Unmarshal(b, &root) != nil {
			return nil, nameKeys(b, nil, err) // a syntax error: nothing was decoded
		}
		errs = describeTypeErrors(&root, te)
	} else if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, nameKeys(b, nil, err)
	}
	if !hasKey(&root, "listen", "http") {
		c.Listen.HTTP = DefaultHTTPListen
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// Marshal renders the resolved configuration (for check-config). It holds no secrets: secrets
// are only ever referenced by file or environment variable name.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
