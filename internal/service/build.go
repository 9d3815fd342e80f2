package service

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/apikey"
	"github.com/mcp-authz/mcp-authz/authz/introspect"
	"github.com/mcp-authz/mcp-authz/authz/jwt"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/telemetry"
)

// parts is everything built from a configuration.
type parts struct {
	core       *authz.Authorizer
	jwts       []*jwt.Verifier
	intros     []*introspect.Verifier
	cache      *cache.Tiered
	redis      redis.UniversalClient
	adminToken string
}

// build turns a validated configuration into the decision core and what it needs. Nothing
// here performs network I/O except opening the Redis client, which connects lazily.
func build(cfg *config.Config, o Options) (p parts, err error) {
	defer func() {
		if err != nil {
			if p.cache != nil {
				p.cache.Close()
			}
			if p.redis != nil {
				p.redis.Close()
			}
		}
	}()
	if err := buildCache(cfg, o, &p); err != nil {
		return p, err
	}
	if o.upstream != nil {
		o.upstream.redis = p.redis
	}
	if p.adminToken, err = cfg.Admin.Token.Read("admin.token", o.Getenv); err != nil {
		return p, err
	}
	p.core, p.jwts, p.intros, err = buildCore(cfg, o, p.cache)
	return p, err
}

// buildCore builds the verifiers and the decision core on an existing cache (nil: none). A
// configuration reload calls it alone: the cache, its Redis connection and the listeners stay.
func buildCore(cfg *config.Config, o Options, tc *cache.Tiered) (*authz.Authorizer, []*jwt.Verifier, []*introspect.Verifier, error) {
	var jwts []*jwt.Verifier
	var intros []*introspect.Verifier
	claims := cfg.ClaimsFor()
	vs := authz.Verifiers{JWT: map[string]authz.Verifier{}}
	var opaque []authz.Verifier
	for i, is := range cfg.Issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		if *is.VerifyJWT {
			if o.metrics != nil {
				o.metrics.InitIssuer(is.Issuer)
			}
			v, err := jwt.New(jwt.Config{
				Issuer:          is.Issuer,
				JWKSURL:         is.JWKSURI,
				Algorithms:      is.Algorithms,
				RequireTyp:      *is.RequireTyp,
				AllowTyp:        is.AllowTyp,
				RolesAsScopes:   is.RolesAsScopes != nil && *is.RolesAsScopes,
				MaxStale:        is.JWKSMaxStale.D(),
				ClockSkew:       cfg.ClockSkew.D(),
				Claims:          claims,
				RefreshInterval: is.RefreshInterval.D(),
				HTTPClient:      idpClient(o, "keys", is.Issuer),
				Observer:        o.metrics,
				Now:             o.Now,
				Logger:          o.Logger,
			})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", key, err)
			}
			vs.JWT[is.Issuer] = v
			jwts = append(jwts, v)
		}
		if in := is.Introspection; in != nil {
			secret, err := in.ClientSecret.Read(key+".introspection.client_secret", o.Getenv)
			if err != nil {
				return nil, nil, nil, err
			}
			shape := introspect.Shape{Pattern: in.OpaqueTokenPattern, Prefix: in.OpaqueTokenPrefix,
				MinLength: in.OpaqueTokenMinLength, MaxLength: in.OpaqueTokenMaxLength}
			v, err := introspect.New(introspect.Config{
				Issuer:        is.Issuer,
				Endpoint:      in.Endpoint,
				ClientID:      in.ClientID,
				ClientSecret:  secret,
				AuthMethod:    in.AuthMethod,
				Timeout:       in.Timeout.D(),
				MaxConcurrent: in.MaxConcurrent,
				Shape:         shape,
				Breaker:       introspect.Breaker{Failures: in.CircuitBreaker.Failures, OpenFor: in.CircuitBreaker.OpenFor.D()},
				ClockSkew:     cfg.ClockSkew.D(),
				Claims:        claims,
				HTTPClient:    idpClient(o, "introspection", is.Issuer),
				Now:           o.Now,
				Logger:        o.Logger,
			})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s.introspection: %w", key, err)
			}
			opaque = append(opaque, v)
			intros = append(intros, v)
			if is.FallbackToIntrospection {
				if vs.Fallback == nil {
					vs.Fallback = map[string]authz.Verifier{}
				}
				vs.Fallback[is.Issuer] = v.ForJWTs()
			}
		}
	}
	if len(opaque) > 0 {
		vs.Opaque = authz.AnyOf(opaque...)
	}
	if len(cfg.APIKeys.Keys) > 0 {
		keys := make([]apikey.Key, 0, len(cfg.APIKeys.Keys))
		for _, k := range cfg.APIKeys.Keys {
			keys = append(keys, apikey.Key{SHA256: k.SHA256, Subject: k.Subject, ClientID: k.ClientID, Scopes: k.Scopes})
		}
		v, err := apikey.New(apikey.Config{Keys: keys})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("api_keys: %w", err)
		}
		vs.APIKeys, vs.APIKeyScheme = v, cfg.APIKeys.Scheme
	}

	ups, err := buildUpstream(cfg, o, tc)
	if err != nil {
		return nil, nil, nil, err
	}
	dp, err := o.senders.checker(cfg, o)
	if err != nil {
		return nil, nil, nil, err
	}
	core, err := authz.New(authz.Options{
		Resources:          cfg.AuthzResources(),
		Verifiers:          vs,
		Cache:              cachingVerifier(cfg, o, tc),
		ClockSkew:          cfg.ClockSkew.D(),
		Unavailable:        cfg.AuthzUnavailable(),
		ScopeImplies:       cfg.ScopeImplies,
		CORSAllowedOrigins: cfg.CORS.AllowedOrigins,
		Upstream:           ups,
		DPoP:               dp,
		Now:                o.Now,
		Logger:             o.Logger,
	})
	return core, jwts, intros, err
}

// cachingVerifier puts the verified-token cache in front of the core's verifier chain; nil
// without a cache.
func cachingVerifier(cfg *config.Config, o Options, tc *cache.Tiered) func(*authz.Chain) (authz.TokenVerifier, error) {
	if tc == nil {
		return nil
	}
	return func(chain *authz.Chain) (authz.TokenVerifier, error) {
		return tc.Verifier(chain, cache.VerifierOptions{
			MaxTTL:          cfg.Cache.MaxTTL.D(),
			NegativeTTL:     cfg.Cache.NegativeTTL.D(),
			RevalidateAfter: revalidateAfter(cfg),
			ClaimWait:       claimWait(cfg),
			Shared:          chain.Introspects,
			Logger:          o.Logger,
		})
	}
}

// revalidateAfter is issuers[].revalidate_after by issuer, where set.
func revalidateAfter(cfg *config.Config) map[string]time.Duration {
	var m map[string]time.Duration
	for _, is := range cfg.Issuers {
		if d := is.RevalidateAfter.D(); d > 0 {
			if m == nil {
				m = map[string]time.Duration{}
			}
			m[is.Issuer] = d
		}
	}
	return m
}

// claimWait is how long a replica waits for another's introspection of a new token: the
// slowest issuer's timeout, plus the time a call may queue for a slot, plus a margin. Without
// Redis there is nobody to wait for.
func claimWait(cfg *config.Config) time.Duration {
	if cfg.Cache.Redis == nil {
		return 0
	}
	var longest time.Duration
	for _, is := range cfg.Issuers {
		if is.Introspection == nil {
			continue
		}
		longest = max(longest, is.Introspection.Timeout.D())
	}
	if longest == 0 {
		return 0
	}
	return longest + 200*time.Millisecond
}

// buildCache: L1 in process, Redis when configured. Without a configured secret (allowed only
// without Redis) each process draws its own: entries never leave it, so none is needed.
func buildCache(cfg *config.Config, o Options, p *parts) error {
	secret, err := cfg.Cache.Secret.Read("cache.secret", o.Getenv)
	if err != nil {
		return err
	}
	key := []byte(secret)
	if secret == "" {
		key = make([]byte, 32)
		rand.Read(key)
	} else if len(key) < 32 {
		return fmt.Errorf("cache.secret: %d bytes; use at least 32 random bytes (e.g. openssl rand -hex 32)", len(key))
	}
	defer func() {
		if o.senders != nil {
			o.senders.start(cfg, o, key, p.redis)
		}
	}()
	l1 := cfg.Cache.L1Size
	if l1 < 0 {
		l1 = 0
	}
	if l1 == 0 && cfg.Cache.Redis == nil {
		return nil // no cache at all: every token is verified every time
	}
	cc := cache.Config{Secret: key, L1Size: l1, Logger: o.Logger, Now: o.Now, MaxTTL: cfg.Cache.MaxTTL.D(), RevocationLimit: cfg.Cache.RevocationLimit, StaleGrace: cfg.Cache.Grace()}
	// Strings most entries repeat are stored as 16-bit references, in Redis values and in L1
	// records: the issuers, the audiences and the configured scopes, which typical tokens
	// carry verbatim. Bounded by the configuration.
	for _, is := range cfg.Issuers {
		cc.Intern = append(cc.Intern, is.Issuer)
	}
	for _, res := range cfg.Resources {
		cc.Intern = append(cc.Intern, res.Resource)
		cc.Intern = append(cc.Intern, res.Audiences...)
		cc.Intern = append(cc.Intern, res.Scopes.Required...)
		cc.Intern = append(cc.Intern, res.Scopes.Supported...)
		if res.MCP != nil {
			for _, m := range []map[string][]string{res.MCP.Tools, res.MCP.Methods} {
				for _, scopes := range m {
					cc.Intern = append(cc.Intern, scopes...)
				}
			}
		}
	}
	if r := cfg.Cache.Redis; r != nil {
		pw, err := r.Password.Read("cache.redis.password", o.Getenv)
		if err != nil {
			return err
		}
		spw, err := r.SentinelPassword.Read("cache.redis.sentinel_password", o.Getenv)
		if err != nil {
			return err
		}
		p.redis, err = cache.NewRedisClient(cache.RedisConfig{
			Mode: r.Mode, Addrs: r.Addrs, MasterName: r.MasterName, Cluster: r.Cluster,
			Username: r.Username, Password: pw, DB: r.DB, TLS: r.TLS,
			SentinelUsername: r.SentinelUsername, SentinelPassword: spw,
		})
		if err != nil {
			return fmt.Errorf("cache.redis: %w", err)
		}
		if o.tp != nil {
			// Commands become child spans of the Check; their arguments (keys are HMACs,
			// values MAC'd identities) stay out of the spans.
			if err := redisotel.InstrumentTracing(p.redis, redisotel.WithTracerProvider(o.tp), redisotel.WithDBStatement(false)); err != nil {
				return fmt.Errorf("cache.redis: tracing: %w", err)
			}
		}
		cc.Redis, cc.RedisTimeout = p.redis, r.Timeout.D()
		cc.Deployment = cache.RedisConfig{Mode: r.Mode, Addrs: r.Addrs, MasterName: r.MasterName, TLS: r.TLS, SentinelUsername: r.SentinelUsername, SentinelPassword: spw}
	}
	p.cache, err = cache.New(context.Background(), cc)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// idpClient is o.HTTPClient for one kind of call to one issuer, counted and timed in metrics
// and, with tracing on, traced as a child span whose context is propagated to the IdP.
func idpClient(o Options, kind, issuer string) *http.Client {
	c := *o.HTTPClient
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if o.tp != nil {
		rt = otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(o.tp),
			otelhttp.WithPropagators(propagation.TraceContext{}),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return kind + " " + r.Method }))
	}
	if o.metrics != nil {
		rt = o.metrics.IdPTransport(rt, kind, issuer)
	}
	c.Transport = rt
	return &c
}

// Verifiers builds each issuer's verifiers exactly as serve does, for `mcp-authz doctor` to
// try a sample token with: JWT verifiers and introspection verifiers by issuer.
func Verifiers(cfg *config.Config, getenv func(string) string, client *http.Client) (map[string]authz.Verifier, map[string]authz.Verifier, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	cfg.ApplyDefaults()
	// A metrics sink of its own: the verifiers take it as their observer, and nothing reads it.
	_, jwts, intros, err := buildCore(cfg, Options{Getenv: getenv, HTTPClient: client, metrics: telemetry.New(nil)}, nil)
	if err != nil {
		return nil, nil, err
	}
	js, is := map[string]authz.Verifier{}, map[string]authz.Verifier{}
	for _, v := range jwts {
		js[v.Issuer()] = v
	}
	for _, v := range intros {
		is[v.Issuer()] = v
	}
	return js, is, nil
}
