package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// ClientCredentialsConfig configures one service token per resource (RFC 6749 §4.4).
type ClientCredentialsConfig struct {
	Client   *Client
	Issuer   string // whose token endpoint (from its metadata unless the client names one)
	Scopes   []string
	Audience []string
	Resource []string
	Inject   Inject
	// Lifetime assumed when the AS says nothing of expiry (no expires_in, opaque token).
	// Default 5m.
	DefaultLifetime time.Duration
	Logger          *slog.Logger
	Now             func() time.Time
}

// ClientCredentials holds the resource's service token. It is refreshed before it expires:
// from the refresh point on, the first Check starts a refresh in the background and keeps
// using the current token until it expires; only without a usable token does a Check wait.
type ClientCredentials struct {
	cfg ClientCredentialsConfig
	in  inject
	cur atomic.Pointer[serviceToken]
	sf  singleflight.Group
	now func() time.Time
	log *slog.Logger
}

type serviceToken struct {
	header            authz.Header
	refreshAt, expiry int64 // unix nanos
}

// NewClientCredentials checks the configuration; no request is made until the first Check.
func NewClientCredentials(cfg ClientCredentialsConfig) (*ClientCredentials, error) {
	if cfg.Client == nil || cfg.Issuer == "" && cfg.Client.cfg.TokenEndpoint == "" {
		return nil, errors.New("client credentials need a client and an issuer or token endpoint")
	}
	if cfg.DefaultLifetime <= 0 {
		cfg.DefaultLifetime = 5 * time.Minute
	}
	c := &ClientCredentials{cfg: cfg, in: cfg.Inject.resolve(), now: cfg.Now, log: cfg.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// HeaderNames are the headers Credential sets.
func (c *ClientCredentials) HeaderNames() []string { return []string{c.in.header} }

// Credential returns the service token, whoever the caller is.
func (c *ClientCredentials) Credential(ctx context.Context, _ authz.CallerToken, _ *identity.Identity) (authz.UpstreamCredential, error) {
	now := c.now().UnixNano()
	t := c.cur.Load()
	if t != nil && now < t.expiry {
		if now >= t.refreshAt {
			c.sf.DoChan("", c.refresh) // in the background; the current one is still good
		}
		return authz.UpstreamCredential{Headers: []authz.Header{t.header}, Tier: authz.TierL1}, nil
	}
	ch := c.sf.DoChan("", c.refresh)
	select {
	case r := <-ch:
		if r.Err != nil {
			return authz.UpstreamCredential{}, r.Err
		}
		return authz.UpstreamCredential{Headers: []authz.Header{r.Val.(*serviceToken).header}, Tier: authz.TierIdP}, nil
	case <-ctx.Done():
		return authz.UpstreamCredential{}, fmt.Errorf("client credentials: no answer within the Check's budget: %w", identity.ErrUnavailable)
	}
}

func (c *ClientCredentials) refresh() (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Client.cfg.Timeout+time.Second)
	defer cancel()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(c.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(c.cfg.Scopes, " "))
	}
	if len(c.cfg.Audience) > 0 {
		form["audience"] = c.cfg.Audience
	}
	if len(c.cfg.Resource) > 0 {
		form["resource"] = c.cfg.Resource
	}
	tok, err := c.cfg.Client.Request(ctx, c.cfg.Issuer, form)
	if err != nil {
		c.log.Warn("client credentials: token request failed", "issuer", c.cfg.Issuer, "error", err)
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	now := c.now()
	exp := tok.Expiry
	if exp.IsZero() {
		exp = now.Add(c.cfg.DefaultLifetime)
	}
	life := exp.Sub(now)
	// Refresh with a fifth of the lifetime left (at most a minute before expiry), so a slow
	// or briefly failing AS has time before the token runs out.
	t := &serviceToken{
		header:    authz.Header{Name: c.in.header, Value: c.in.prefix + tok.AccessToken},
		refreshAt: exp.Add(-min(time.Minute, life/5)).UnixNano(),
		expiry:    exp.Add(-min(5*time.Second, life/10)).UnixNano(),
	}
	c.cur.Store(t)
	return t, nil
}

// Static injects a configured secret.
type Static struct{ h authz.Header }

// NewStatic: value is the secret; in.Prefix goes before it ("Bearer " by default in the
// authorization header).
func NewStatic(in Inject, value string) (*Static, error) {
	r := in.resolve()
	v := r.prefix + value
	if value == "" || !printable(v) {
		return nil, errors.New("the static credential is empty or has characters a header cannot carry")
	}
	return &Static{h: authz.Header{Name: r.header, Value: v}}, nil
}

// HeaderNames are the headers Credential sets.
func (s *Static) HeaderNames() []string { return []string{s.h.Name} }

// Credential returns the secret, whoever the caller is.
func (s *Static) Credential(context.Context, authz.CallerToken, *identity.Identity) (authz.UpstreamCredential, error) {
	return authz.UpstreamCredential{Headers: []authz.Header{s.h}}, nil
}
