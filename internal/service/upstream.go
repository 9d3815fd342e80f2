package service

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/upstream"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/telemetry"
)

// upstreamState is what outlives a configuration reload on the upstream-credentials side:
// the exchanged-token cache, made when a resource first needs it, on the cache's secret and
// Redis (both restart-only settings).
type upstreamState struct {
	mu    sync.Mutex
	store *upstream.Store
	redis redis.UniversalClient // the cache's, nil without Redis
}

func (u *upstreamState) close() {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.store != nil {
		u.store.Close()
		u.store = nil
	}
}

// exchangeStore returns the exchanged-token cache, making it on first use.
func (u *upstreamState) exchangeStore(cfg *config.Config, o Options, tc *cache.Tiered, rdb func() *upstream.StoreConfig) (*upstream.Store, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.store != nil {
		return u.store, nil
	}
	sc := rdb()
	s, err := upstream.NewStore(*sc)
	if err != nil {
		return nil, err
	}
	u.store = s
	if o.metrics != nil {
		o.metrics.SetUpstreamStats(func() telemetry.UpstreamStats {
			st := s.Stats()
			return telemetry.UpstreamStats{L1Hits: st.L1Hits, RedisHits: st.RedisHits, Misses: st.Misses,
				Refused: st.Refused, BadValues: st.BadValues, ClaimsWaited: st.ClaimsWaited}
		})
	}
	return s, nil
}

// buildUpstream makes each resource's upstream credential source, by resource name.
// Without o.upstream (the doctor command builds only verifiers) there are none.
func buildUpstream(cfg *config.Config, o Options, tc *cache.Tiered) (map[string]authz.UpstreamCredentials, error) {
	var out map[string]authz.UpstreamCredentials
	if o.upstream == nil {
		return nil, nil
	}
	for i, r := range cfg.Resources {
		u := r.UpstreamCredentials
		if u == nil {
			continue
		}
		key := fmt.Sprintf("resources[%d].upstream_credentials", i)
		in := upstream.Inject{Header: u.Header, Prefix: u.Prefix}
		var (
			src authz.UpstreamCredentials
			err error
		)
		switch {
		case u.Static != nil:
			var v string
			if v, err = u.Static.Value.Read(key+".static.value", o.Getenv); err != nil {
				return nil, err
			}
			src, err = upstream.NewStatic(in, v)
		case u.ClientCredentials != nil:
			cc := u.ClientCredentials
			var c *upstream.Client
			if c, err = tokenClient(o, key+".client_credentials.client", &cc.Client, "client_credentials"); err != nil {
				return nil, err
			}
			src, err = upstream.NewClientCredentials(upstream.ClientCredentialsConfig{
				Client: c, Issuer: cc.Issuer, Scopes: cc.Scopes, Audience: cc.Audience, Resource: cc.Resource,
				Inject: in, Logger: o.Logger, Now: o.Now,
			})
		case u.TokenExchange != nil:
			x := u.TokenExchange
			var c *upstream.Client
			if c, err = tokenClient(o, key+".token_exchange.client", &x.Client, "token_exchange"); err != nil {
				return nil, err
			}
			var actor string
			if actor, err = x.ActorToken.Read(key+".token_exchange.actor_token", o.Getenv); err != nil {
				return nil, err
			}
			var st *upstream.Store
			if st, err = o.upstream.exchangeStore(cfg, o, tc, func() *upstream.StoreConfig { return storeConfig(cfg, o, tc) }); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			src, err = upstream.NewExchange(upstream.ExchangeConfig{
				Client: c, Store: st, Audience: x.Audience, Resource: x.Resource, Scopes: x.Scopes,
				RequestedTokenType: x.RequestedTokenType, ActorToken: actor, ActorTokenType: x.ActorTokenType,
				Inject: in, ActHeader: x.ActHeader, Logger: o.Logger, Now: o.Now,
			})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if out == nil {
			out = map[string]authz.UpstreamCredentials{}
		}
		out[r.Name] = src
	}
	return out, nil
}

func tokenClient(o Options, key string, tc *config.TokenClient, kind string) (*upstream.Client, error) {
	secret, err := tc.ClientSecret.Read(key+".client_secret", o.Getenv)
	if err != nil {
		return nil, err
	}
	var pemKey []byte
	if tc.PrivateKey.Env != "" || tc.PrivateKey.File != "" {
		var k string
		if tc.PrivateKey.File != "" {
			b, err := os.ReadFile(tc.PrivateKey.File)
			if err != nil {
				return nil, fmt.Errorf("%s.private_key: %v", key, err)
			}
			k = string(b)
		} else if k, err = tc.PrivateKey.Read(key+".private_key", o.Getenv); err != nil {
			return nil, err
		}
		pemKey = []byte(k)
	}
	timeout := tc.Timeout.D()
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	clients := map[string]*http.Client{}
	var mu sync.Mutex
	c, err := upstream.NewClient(upstream.ClientConfig{
		ClientID: tc.ClientID, Secret: secret, AuthMethod: tc.AuthMethod,
		PrivateKeyPEM: pemKey, KeyID: tc.KeyID, TokenEndpoint: tc.TokenEndpoint,
		HTTPClient: o.HTTPClient, Timeout: timeout, Now: o.Now,
		// Counted and traced per issuer as idp_requests_total{kind=...}. Issuers reaching
		// here are configured ones (a caller's was verified against the resource's issuers).
		HTTPClientFor: func(issuer string) *http.Client {
			mu.Lock()
			defer mu.Unlock()
			hc, ok := clients[issuer]
			if !ok {
				hc = idpClient(o, kind, issuer)
				clients[issuer] = hc
			}
			return hc
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return c, nil
}

// storeConfig: the exchanged-token cache shares the verified-token cache's secret, Redis,
// bounds and revocations.
func storeConfig(cfg *config.Config, o Options, tc *cache.Tiered) *upstream.StoreConfig {
	sc := &upstream.StoreConfig{
		L1Size: max(cfg.Cache.L1Size, 0), MaxTTL: cfg.Cache.MaxTTL.D(), NegativeTTL: cfg.Cache.NegativeTTL.D(),
		Now: o.Now, Logger: o.Logger,
	}
	if sc.L1Size == 0 && cfg.Cache.Redis == nil {
		sc.L1Size = 1000 // the cache is off; an exchange per Check would be worse
	}
	secret, _ := cfg.Cache.Secret.Read("cache.secret", o.Getenv) // buildCache checked it
	sc.Secret = []byte(secret)
	if len(sc.Secret) < 32 {
		sc.Secret = make([]byte, 32) // no Redis: nothing leaves this process
		rand.Read(sc.Secret)
	}
	if o.upstream.redis != nil && cfg.Cache.Redis != nil {
		sc.Redis = o.upstream.redis
		sc.RedisTimeout = cfg.Cache.Redis.Timeout.D()
		// As long as an exchange may take, plus a margin, like introspection's claims.
		sc.ClaimWait = 2*time.Second + 200*time.Millisecond
	}
	if tc != nil {
		sc.CallerKey, sc.Revoked = tc.Key, tc.RevokedSince
	}
	return sc
}
