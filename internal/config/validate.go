package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// badFunc records one problem under the key at fault.
type badFunc = func(key, format string, args ...any)

// Validate reports every problem, each prefixed with the key at fault, section by section.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}

	c.validateListen(bad)
	c.validateLogging(bad)
	c.validateGeneral(bad)
	c.validateCache(bad)
	c.validateScopeImplies(bad)
	c.validateAPIKeys(bad)
	issuers := c.validateIssuers(bad)
	c.validateResources(bad, issuers)
	c.validateDPoP(bad)
	return errors.Join(errs...)
}

// validateListen checks listen and cors.
func (c *Config) validateListen(bad badFunc) {
	if _, _, err := net.SplitHostPort(c.Listen.GRPC); err != nil {
		bad("listen.grpc", "%q is not host:port (e.g. 127.0.0.1:9191)", c.Listen.GRPC)
	}
	if c.Listen.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			bad("listen.http", "%q is not host:port (e.g. 127.0.0.1:9192); leave it empty to disable", c.Listen.HTTP)
		}
	}
	if t := c.Listen.TLS; (t.CertFile == "") != (t.KeyFile == "") {
		bad("listen.tls", "cert_file and key_file go together")
	} else if t.ClientCAFile != "" && t.CertFile == "" {
		bad("listen.tls.client_ca_file", "mTLS needs the server's own cert_file and key_file too")
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || strings.ToLower(o) != o {
			bad(fmt.Sprintf("cors.allowed_origins[%d]", i), "%q is not an origin: write scheme://host[:port] in lower case, no path (e.g. https://app.example.com), or \"*\"", o)
		}
	}
}

// validateLogging checks log and tracing.
func (c *Config) validateLogging(bad badFunc) {
	switch c.Tracing.Exporter {
	case "", "otlp-grpc", "otlp-http":
	default:
		bad("tracing.exporter", "%q: use otlp-grpc or otlp-http, or leave it empty for no tracing", c.Tracing.Exporter)
	}
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		bad("tracing.sample_ratio", "%v: a fraction between 0 and 1", r)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Decisions {
	case "debug", "info", "off":
	default:
		bad("log.decisions", "%q: use debug, info or off", c.Log.Decisions)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q: use json or text", c.Log.Format)
	}
}

// validateGeneral checks clock_skew, unavailable and check_timeout.
func (c *Config) validateGeneral(bad badFunc) {
	if c.ClockSkew.D() > 5*60e9 {
		bad("clock_skew", "%s is more than 5m; a few seconds to a minute is usual", c.ClockSkew.D())
	}
	if s := c.Unavailable.Status; s != 401 && s != 503 {
		bad("unavailable.status", "%d: use 401 (clients fetch a new token) or 503 (with retry_after)", s)
	}
	if d := c.CheckTimeout.D(); d > time.Minute {
		bad("check_timeout", "%s is over 1m: every Check of an unreachable IdP would wait that long; a few seconds, below the proxy's ext_authz timeout, is usual", d)
	}
}

// validateCache checks cache, its Redis and the secrets it reads.
func (c *Config) validateCache(bad badFunc) {
	if c.Cache.L1Size < -1 {
		bad("cache.l1_size", "%d: use a number of entries, or -1 to disable the in-process cache", c.Cache.L1Size)
	}
	// A bound this small would be passed by an ordinary burst of revocations, after which
	// Redis stops sharing entries for max_ttl: a typo, not a choice.
	if c.Cache.RevocationLimit < 100 {
		bad("cache.revocation_limit", "%d: must be at least 100 (default 10000; each remembered revocation costs about 120 bytes)", c.Cache.RevocationLimit)
	}
	if g := c.Cache.StaleGrace; g != nil && g.D() > 24*time.Hour {
		bad("cache.stale_grace", "%s is more than 24h: it is how long past max_ttl a token verified before is still allowed while its authorization server cannot answer; use minutes (default 5m), or 0s to disable", g.D())
	}
	if r := c.Cache.Redis; r != nil {
		if len(r.Addrs) == 0 {
			bad("cache.redis.addrs", "at least one host:port is required (sentinels when master_name is set)")
		}
		for j, a := range r.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad(fmt.Sprintf("cache.redis.addrs[%d]", j), "%q is not host:port", a)
			}
		}
		switch r.Mode {
		case "single":
			if len(r.Addrs) > 1 {
				bad("cache.redis.mode", "single takes one address, and addrs has %d: set mode: cluster for Redis Cluster seed nodes, or mode: sentinel with master_name for sentinels", len(r.Addrs))
			}
		case "sentinel":
			if r.MasterName == "" {
				bad("cache.redis.master_name", "required with mode: sentinel: the name the sentinels monitor (master_name: mymaster)")
			}
		case "cluster":
			if r.DB != 0 {
				bad("cache.redis.db", "Redis Cluster has only database 0: remove db")
			}
		default:
			bad("cache.redis.mode", "%q: use single, sentinel or cluster", r.Mode)
		}
		if r.MasterName != "" && r.Mode != "sentinel" {
			bad("cache.redis.master_name", "only for Sentinel: set mode: sentinel (addrs are then the sentinels), or remove master_name")
		}
		if r.Cluster && r.Mode != "cluster" {
			bad("cache.redis.cluster", "true contradicts mode: %s: remove cluster (mode says it)", r.Mode)
		}
		if r.Mode != "sentinel" {
			if r.SentinelUsername != "" {
				bad("cache.redis.sentinel_username", "only for Sentinel: set mode: sentinel, or remove it")
			}
			if r.SentinelPassword.set() {
				bad("cache.redis.sentinel_password", "only for Sentinel: set mode: sentinel, or remove it")
			}
		}
		if r.DB < 0 {
			bad("cache.redis.db", "%d: a database number is 0 or more", r.DB)
		}
		if !c.Cache.Secret.set() {
			bad("cache.secret", "required with cache.redis: every replica must key and authenticate entries with the same secret (secret: {env: NAME} or {file: PATH}, at least 32 bytes)")
		}
	}
	checkSecretRef(bad, "cache.secret", c.Cache.Secret)
	checkSecretRef(bad, "admin.token", c.Admin.Token)
	if c.Cache.Redis != nil {
		checkSecretRef(bad, "cache.redis.password", c.Cache.Redis.Password)
		checkSecretRef(bad, "cache.redis.sentinel_password", c.Cache.Redis.SentinelPassword)
	}
}

// validateScopeImplies checks scope_implies.
func (c *Config) validateScopeImplies(bad badFunc) {
	for s, implied := range c.ScopeImplies {
		if !scopeTokenOK(s) {
			bad("scope_implies", "%q is not a valid scope (RFC 6749 §3.3)", s)
		}
		for _, n := range implied {
			if !scopeTokenOK(n) {
				bad("scope_implies."+s, "%q is not a valid scope (RFC 6749 §3.3)", n)
			}
		}
	}

}

// validateAPIKeys checks api_keys.
func (c *Config) validateAPIKeys(bad badFunc) {
	seenDigest := map[string]bool{}
	for j, k := range c.APIKeys.Keys {
		key := fmt.Sprintf("api_keys.keys[%d]", j)
		if len(k.SHA256) != 64 || strings.Trim(strings.ToLower(k.SHA256), "0123456789abcdef") != "" {
			bad(key+".sha256", "want the 64-hex-digit SHA-256 of the key (e.g. printf %%s \"$KEY\" | sha256sum), never the key itself")
		} else if seenDigest[strings.ToLower(k.SHA256)] {
			bad(key+".sha256", "the same key is listed twice")
		}
		seenDigest[strings.ToLower(k.SHA256)] = true
		if k.Subject == "" {
			bad(key+".subject", "required: who this key identifies")
		}
		for s, sc := range k.Scopes {
			if !scopeTokenOK(sc) {
				bad(fmt.Sprintf("%s.scopes[%d]", key, s), "%q is not a valid scope", sc)
			}
		}
	}
	if sc := c.APIKeys.Scheme; sc == "" || strings.ContainsAny(sc, " \t,\"") {
		bad("api_keys.scheme", "%q: a single auth-scheme name such as Bearer or Token", sc)
	}

}

// validateIssuers checks issuers and returns the configured issuer identifiers.
func (c *Config) validateIssuers(bad badFunc) map[string]bool {
	issuers := map[string]bool{}
	for i, is := range c.Issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		if is.Issuer == "" {
			bad(key+".issuer", "required: the authorization server's issuer identifier, exactly as in its tokens' iss")
		} else if err := c.checkURL(is.Issuer, false); err != nil {
			bad(key+".issuer", "%q %v", is.Issuer, err)
		} else if issuers[is.Issuer] {
			bad(key+".issuer", "%q is listed twice", is.Issuer)
		}
		issuers[is.Issuer] = true
		if is.JWKSURI != "" {
			if err := c.checkURL(is.JWKSURI, true); err != nil {
				bad(key+".jwks_uri", "%q %v", is.JWKSURI, err)
			}
		}
		for j, alg := range is.Algorithms {
			if !asymmetricAlgs[alg] {
				bad(fmt.Sprintf("%s.algorithms[%d]", key, j),
					"%q is not allowed: use asymmetric algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA); none and HS* are refused (RFC 8725 §3.1)", alg)
			}
		}
		if in := is.Introspection; in != nil {
			if in.Endpoint != "" {
				if err := c.checkURL(in.Endpoint, true); err != nil {
					bad(key+".introspection.endpoint", "%q %v", in.Endpoint, err)
				}
			}
			if in.AuthMethod == "none" {
				// RFC 7662 §2.1 requires the endpoint to be protected; for Hydra's admin API
				// that is done by network placement, and credentials would only be ignored.
				if in.ClientID != "" || in.ClientSecret.set() {
					bad(key+".introspection.auth_method", "none sends no credentials: remove client_id and client_secret, or use client_secret_basic")
				}
			} else {
				if in.ClientID == "" {
					bad(key+".introspection.client_id", "required: RFC 7662 §2.1 makes the endpoint require client authentication (auth_method: none only for an endpoint protected by network placement, such as Hydra's admin port)")
				}
				if !in.ClientSecret.set() {
					bad(key+".introspection.client_secret", "required: {env: NAME} or {file: PATH}")
				}
			}
			checkSecretRef(bad, key+".introspection.client_secret", in.ClientSecret)
			if in.AuthMethod != "client_secret_basic" && in.AuthMethod != "client_secret_post" && in.AuthMethod != "none" {
				bad(key+".introspection.auth_method", "%q: use client_secret_basic, client_secret_post, or none (an endpoint protected by network placement)", in.AuthMethod)
			}
			if in.MaxConcurrent < 1 {
				bad(key+".introspection.max_concurrent", "must be at least 1")
			}
			validateOpaqueShape(bad, key+".introspection", in)
			if in.CircuitBreaker.Failures < 1 {
				bad(key+".introspection.circuit_breaker.failures", "%d: must be at least 1 (consecutive failures before the endpoint is skipped)", in.CircuitBreaker.Failures)
			}
			if c.CheckTimeout != 0 && in.Timeout >= c.CheckTimeout {
				bad(key+".introspection.timeout", "%s is not below check_timeout %s, so every slow introspection would end as unavailable before its answer: lower it, or raise check_timeout (and the proxy's ext_authz timeout above that)", in.Timeout.D(), c.CheckTimeout.D())
			}
		} else if is.FallbackToIntrospection {
			bad(key+".fallback_to_introspection", "needs an introspection endpoint: add issuers[%d].introspection", i)
		}
		if is.VerifyJWT != nil && !*is.VerifyJWT && is.Introspection == nil {
			bad(key+".verify_jwt", "false leaves this issuer no way to verify tokens: add introspection")
		}
		for j, typ := range is.AllowTyp {
			switch {
			case strings.TrimSpace(typ) == "":
				bad(fmt.Sprintf("%s.allow_typ[%d]", key, j), "is empty; to accept tokens without typ, set require_typ: false")
			case is.RequireTyp != nil && !*is.RequireTyp:
				bad(fmt.Sprintf("%s.allow_typ[%d]", key, j), "has no effect with require_typ: false; remove one of them")
			}
		}
		c.validateProfile(bad, key, &c.Issuers[i])
		if ra := is.RevalidateAfter.D(); ra != 0 {
			switch {
			case is.Introspection == nil:
				bad(key+".revalidate_after", "applies to introspected tokens and this issuer has no introspection: add introspection (with verify_jwt: false its JWTs are introspected too), or remove it")
			case ra < time.Second:
				bad(key+".revalidate_after", "%s is under 1s: every Check would re-introspect; use seconds to minutes", ra)
			case ra >= c.Cache.MaxTTL.D():
				bad(key+".revalidate_after", "%s is not below cache.max_ttl %s, so it changes nothing: lower it, or remove it", ra, c.Cache.MaxTTL.D())
			}
		}
		if is.JWKSMaxStale.D() < 0 {
			bad(key+".jwks_max_stale", "is negative; use a duration such as 24h")
		}
		if is.RefreshInterval.D() < 1e9 {
			bad(key+".jwks_refresh_interval", "%s is under 1s; an unknown kid must not be able to make us hammer the IdP", is.RefreshInterval.D())
		}
	}
	return issuers
}

// validateResources checks resources against the configured issuers.
func (c *Config) validateResources(bad badFunc, issuers map[string]bool) {
	if len(c.Resources) == 0 {
		bad("resources", "at least one protected resource is required")
	}

	// Sized for the configuration: with one resource per tenant host there may be thousands.
	names := make(map[string]bool, len(c.Resources))
	type hostPath struct{ host, prefix string }
	routes := make(map[hostPath]string, len(c.Resources))
	// Every resource usually names the same authorization servers: each is parsed once.
	asChecked := map[string]error{}
	for i, r := range c.Resources {
		key := "resources[" + strconv.Itoa(i) + "]"
		if names[r.Name] {
			bad(key+".name", "%q is used by another resource", r.Name)
		}
		names[r.Name] = true
		if r.Resource == "" {
			bad(key+".resource", "required: the URL clients call, e.g. https://mcp.example.com/mcp (RFC 8707 resource identifier)")
		} else if err := c.checkURL(r.Resource, true); err != nil {
			bad(key+".resource", "%q %v", r.Resource, err)
		}
		if len(r.AuthorizationServers) == 0 {
			bad(key+".authorization_servers", "at least one issuer identifier is required (MCP: the metadata must name the authorization server)")
		}
		for j, as := range r.AuthorizationServers {
			err, seen := asChecked[as]
			if !seen {
				err = c.checkURL(as, false)
				asChecked[as] = err
			}
			if err != nil {
				bad(fmt.Sprintf("%s.authorization_servers[%d]", key, j), "%q %v", as, err)
			}
		}
		for j, is := range r.Issuers {
			if !issuers[is] {
				bad(fmt.Sprintf("%s.issuers[%d]", key, j), "%q is not configured under issuers: add it there so its tokens can be verified", is)
			}
		}
		for j, a := range r.Audiences {
			if a == "" || strings.ContainsAny(a, "\"\\") {
				bad(fmt.Sprintf("%s.audiences[%d]", key, j), "%q: an audience is a non-empty string without quotes or backslashes", a)
			}
		}
		for j, h := range r.Hosts {
			if h == "" || strings.ContainsAny(h, "/ ") {
				bad(fmt.Sprintf("%s.hosts[%d]", key, j), "%q: use host or host:port, or * for any host", h)
			}
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			bad(key+".path_prefix", "%q must start with /", r.PathPrefix)
		}
		for j, p := range r.PublicPaths {
			if !strings.HasPrefix(p, "/") || p == "/" {
				bad(fmt.Sprintf("%s.public_paths[%d]", key, j), "%q: a path prefix starting with / and not / itself (that would make the whole host public)", p)
			}
		}
		for _, list := range []struct {
			name   string
			scopes []string
		}{{"scopes.required", r.Scopes.Required}, {"scopes.supported", r.Scopes.Supported}} {
			for j, s := range list.scopes {
				if !scopeTokenOK(s) {
					bad(fmt.Sprintf("%s.%s[%d]", key, list.name, j), "%q is not a valid scope (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)", s)
				}
				if s == "offline_access" && list.name == "scopes.required" {
					bad(fmt.Sprintf("%s.%s[%d]", key, list.name, j), "offline_access cannot be required: it is about refresh tokens, not this resource (MCP 2026-07-28)")
				}
			}
		}
		if m := r.MCP; m != nil {
			for kind, table := range map[string]map[string][]string{"tools": m.Tools, "methods": m.Methods} {
				for name, scopes := range table {
					if name == "" {
						bad(key+".mcp."+kind, "an empty name")
					}
					for j, sc := range scopes {
						if !scopeTokenOK(sc) || sc == "offline_access" {
							bad(fmt.Sprintf("%s.mcp.%s.%s[%d]", key, kind, name, j), "%q is not a scope a resource can require", sc)
						}
					}
				}
			}
		}
		validateRules(bad, key, &c.Resources[i])
		c.validateUpstream(bad, key, &c.Resources[i])
		h := r.IdentityHeaders
		for _, f := range [...]struct{ name, v string }{{"subject", h.Subject}, {"client_id", h.ClientID}, {"scopes", h.Scopes}, {"issuer", h.Issuer}, {"binding", h.Binding}} {
			if f.v != "" { // the key only for a name to check
				checkHeaderName(bad, key+".identity_headers."+f.name, f.v)
			}
		}
		for claim, hn := range h.Claims {
			if claim == "" {
				bad(key+".identity_headers.claims", "empty claim name")
			}
			checkHeaderName(bad, key+".identity_headers.claims."+claim, hn)
		}
		if strings.ContainsAny(r.Realm, "\"\\") {
			bad(key+".realm", "must not contain quotes or backslashes")
		}
		for _, u := range []struct{ name, v string }{{"resource_documentation", r.Documentation}, {"resource_policy_uri", r.PolicyURI}, {"resource_tos_uri", r.TOSURI}} {
			if u.v == "" {
				continue
			}
			if pu, err := url.Parse(u.v); err != nil || !pu.IsAbs() {
				bad(key+"."+u.name, "%q must be an absolute URL", u.v)
			}
		}
		for _, hp := range r.Hosts {
			rk := hostPath{strings.ToLower(hp), r.PathPrefix}
			if other, dup := routes[rk]; dup {
				bad(key, "host %q and path_prefix %q are already served by resource %q", hp, r.PathPrefix, other)
			}
			routes[rk] = r.Name
		}
	}
}

var asymmetricAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// checkURL: absolute, https unless dev.allow_http, no fragment; a resource may carry a query
// (RFC 9728 §1.2 discourages it), an issuer may not (RFC 8414 §2).
func (c *Config) checkURL(s string, queryOK bool) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("must not have a fragment")
	}
	if u.RawQuery != "" && !queryOK {
		return errors.New("must not have a query")
	}
	if strings.ContainsAny(s, "\" \\") {
		return errors.New("must not contain spaces, quotes or backslashes")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.Dev.AllowHTTP {
			return errors.New("must use https (set dev.allow_http: true for local development only)")
		}
	default:
		return errors.New("must use https")
	}
	return nil
}

// scopeTokenOK: RFC 6749 §3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func scopeTokenOK(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// reservedHeaders may not carry identity: the proxy or HTTP itself owns them.
var reservedHeaders = map[string]bool{
	"authorization": true, "host": true, "content-length": true, "content-type": true,
	"transfer-encoding": true, "connection": true, "cookie": true, "te": true, "upgrade": true,
	"x-forwarded-for": true, "x-forwarded-proto": true, "x-request-id": true,
}

// checkSecretRef: exactly one place, never both.
func checkSecretRef(bad func(string, string, ...any), key string, s Secret) {
	if s.Env != "" && s.File != "" {
		bad(key, "give env or file, not both")
	}
}

func checkHeaderName(bad func(string, string, ...any), key, v string) {
	if v == "" || v == "-" {
		return
	}
	if reservedHeaders[v] || strings.HasPrefix(v, ":") {
		bad(key, "%q is reserved; pick a name such as x-auth-...", v)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			bad(key, "%q is not a valid header name (letters, digits, - _ .)", v)
			return
		}
	}
}
