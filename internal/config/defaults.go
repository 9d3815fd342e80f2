package config

import (
	"net/url"
	"strings"
	"time"
)

// Default identity header names.
const (
	DefaultSubjectHeader  = "x-auth-subject"
	DefaultClientIDHeader = "x-auth-client-id"
	DefaultScopesHeader   = "x-auth-scopes"
)

// DefaultCheckTimeout bounds one Check. It is above the default introspection timeout (2s)
// plus a Redis round trip, so a slow IdP is answered by mcp-authz (unavailable.status with its
// challenge) before the proxy's ext_authz timeout (3s in envoy/) answers with a bare error.
// envoy.TestProxyTimeoutsExceedCheckTimeout holds the shipped proxy configs to it.
const DefaultCheckTimeout = 2500 * time.Millisecond

// DefaultDrain is how long a stopping replica keeps answering while its health says
// NOT_SERVING: longer than Envoy's health-check detection in envoy/ (2s interval × 2).
const DefaultDrain = 5 * time.Second

// DefaultStaleGrace is cache.stale_grace's default: as long again as the default max_ttl.
const DefaultStaleGrace = 5 * time.Minute

// DefaultAlgorithms are the asymmetric JWS algorithms accepted unless configured otherwise.
var DefaultAlgorithms = []string{"RS256", "ES256", "PS256", "EdDSA"}

// ApplyDefaults fills what the file left out. It is idempotent.
func (c *Config) ApplyDefaults() {
	c.DPoP.applyDefaults()
	c.ForwardAuth.applyDefaults()
	if c.Listen.GRPC == "" {
		c.Listen.GRPC = "127.0.0.1:9191"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Decisions == "" {
		c.Log.Decisions = "debug"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = Duration(30 * time.Second)
	}
	if c.Unavailable.Status == 0 {
		c.Unavailable.Status = 401
	}
	if c.Cache.MaxTTL == 0 {
		c.Cache.MaxTTL = Duration(5 * time.Minute)
	}
	if c.Cache.NegativeTTL == 0 {
		c.Cache.NegativeTTL = Duration(10 * time.Second)
	}
	if c.Cache.L1Size == 0 {
		c.Cache.L1Size = 100000
	}
	if c.Cache.RevocationLimit == 0 {
		c.Cache.RevocationLimit = 10_000 // cache.Config's default
	}
	if c.Cache.StaleGrace == nil {
		d := Duration(DefaultStaleGrace)
		c.Cache.StaleGrace = &d
	}
	if r := c.Cache.Redis; r != nil && r.Timeout == 0 {
		r.Timeout = Duration(50 * time.Millisecond)
	}
	if r := c.Cache.Redis; r != nil && r.Mode == "" {
		switch {
		case r.Cluster:
			r.Mode = "cluster"
		case r.MasterName != "":
			r.Mode = "sentinel"
		default:
			r.Mode = "single" // several addresses are refused in Validate, not guessed at
		}
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = Duration(DefaultCheckTimeout)
	}
	if c.Shutdown.Drain == nil {
		d := Duration(DefaultDrain)
		c.Shutdown.Drain = &d
	}
	if c.Shutdown.Timeout == 0 {
		c.Shutdown.Timeout = Duration(10 * time.Second)
	}
	if c.Tracing.Exporter != "" && c.Tracing.SampleRatio == 0 {
		c.Tracing.SampleRatio = 1
	}
	if c.APIKeys.Scheme == "" {
		c.APIKeys.Scheme = "Bearer"
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		is.applyProfile() // first: it fills in only what is unset
		if len(is.Algorithms) == 0 {
			is.Algorithms = append([]string(nil), DefaultAlgorithms...)
		}
		if is.RequireTyp == nil {
			t := true
			is.RequireTyp = &t
		}
		if is.VerifyJWT == nil {
			t := true
			is.VerifyJWT = &t
		}
		if in := is.Introspection; in != nil {
			if in.AuthMethod == "" {
				in.AuthMethod = "client_secret_basic"
			}
			if in.Timeout == 0 {
				in.Timeout = Duration(2 * time.Second)
			}
			if in.MaxConcurrent == 0 {
				in.MaxConcurrent = 64
			}
			if in.CircuitBreaker.Failures == 0 {
				in.CircuitBreaker.Failures = 5
			}
			if in.CircuitBreaker.OpenFor == 0 {
				in.CircuitBreaker.OpenFor = Duration(5 * time.Second)
			}
		}
		if is.RefreshInterval == 0 {
			is.RefreshInterval = Duration(30 * time.Second)
		}
		if is.JWKSMaxStale == 0 {
			is.JWKSMaxStale = Duration(24 * time.Hour)
		}
	}
	for i := range c.Resources {
		r := &c.Resources[i]
		u, err := url.Parse(r.Resource)
		if r.Name == "" {
			r.Name = r.Resource
		}
		if err == nil && u.Host != "" {
			if len(r.Hosts) == 0 {
				r.Hosts = []string{u.Host}
			}
			if r.PathPrefix == "" {
				r.PathPrefix = u.EscapedPath()
				if r.PathPrefix == "" {
					r.PathPrefix = "/"
				}
			}
		}
		if len(r.AuthorizationServers) == 0 && len(c.Issuers) == 1 {
			r.AuthorizationServers = []string{c.Issuers[0].Issuer}
		}
		if len(r.Issuers) == 0 {
			r.Issuers = append([]string(nil), r.AuthorizationServers...)
		}
		if len(r.Audiences) == 0 && r.Resource != "" {
			r.Audiences = []string{r.Resource}
		}
		if len(r.Scopes.Supported) == 0 {
			r.Scopes.Supported = append([]string(nil), r.Scopes.Required...)
		}
		h := &r.IdentityHeaders
		h.Subject = defaultHeader(h.Subject, DefaultSubjectHeader)
		h.ClientID = defaultHeader(h.ClientID, DefaultClientIDHeader)
		h.Scopes = defaultHeader(h.Scopes, DefaultScopesHeader)
		h.Issuer = strings.ToLower(h.Issuer)
		h.Binding = defaultHeader(h.Binding, DefaultBindingHeader)
		if r.DPoP == "" {
			r.DPoP = BindingOff
		}
		if r.MTLSBound == "" {
			r.MTLSBound = BindingOff
		}
		for claim, name := range h.Claims {
			h.Claims[claim] = strings.ToLower(name)
		}
		if r.CORSPreflight == nil {
			t := true
			r.CORSPreflight = &t
		}
	}
}

func defaultHeader(v, def string) string {
	if v == "" {
		return def
	}
	return strings.ToLower(v)
}
