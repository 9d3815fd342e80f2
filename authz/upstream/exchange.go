package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// RFC 8693 §3 token type identifiers and the grant type (§2.1).
const (
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeRefreshToken  = "urn:ietf:params:oauth:token-type:refresh_token"
	defaultHeader          = "authorization"
	defaultPrefix          = "Bearer "
	tracerName             = "github.com/mcp-authz/mcp-authz/authz/upstream"
	maxRefreshMargin       = 30 * time.Second
	exchangeUnknownExpires = 5 * time.Minute
)

// Inject says where a minted credential goes on the upstream request.
type Inject struct {
	Header string  // default authorization
	Prefix *string // nil: "Bearer " with the authorization header, none otherwise
}

type inject struct{ header, prefix string }

func (in Inject) resolve() inject {
	r := inject{header: strings.ToLower(in.Header)}
	if r.header == "" {
		r.header = defaultHeader
	}
	switch {
	case in.Prefix != nil:
		r.prefix = *in.Prefix
	case r.header == defaultHeader:
		r.prefix = defaultPrefix
	}
	return r
}

// ExchangeConfig configures RFC 8693 token exchange for one resource.
type ExchangeConfig struct {
	Client *Client
	Store  *Store
	// Audience and Resource (RFC 8693 §2.1) name the downstream API the new token is for.
	Audience []string
	Resource []string
	// Scopes asked for: those the caller holds, in this order. Never broader than the
	// caller's: a scope the caller lacks is not asked for, and a caller holding none is refused.
	Scopes             []string
	RequestedTokenType string // default access_token
	// ActorToken (and its type, default access_token) is sent as actor_token (§2.1): the
	// party acting, when the AS wants it named by a token rather than by client authentication.
	ActorToken     string
	ActorTokenType string
	Inject         Inject
	// ActHeader receives the new token's act claim (§4.1) as compact JSON, so the upstream
	// sees who acts for whom without decoding the token. "": not set.
	ActHeader string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Exchange mints an exchanged token per caller token, audience and scopes.
type Exchange struct {
	cfg    ExchangeConfig
	in     inject
	params []byte // the fixed parameters, length-prefixed, for the store key
	log    *slog.Logger
	now    func() time.Time
	sf     singleflight.Group
}

// NewExchange checks the configuration.
func NewExchange(cfg ExchangeConfig) (*Exchange, error) {
	if cfg.Client == nil || cfg.Store == nil {
		return nil, errors.New("token exchange needs a client and a store")
	}
	if len(cfg.Audience) == 0 && len(cfg.Resource) == 0 {
		return nil, errors.New("token exchange needs an audience or a resource: the token is for a downstream API")
	}
	if cfg.RequestedTokenType == "" {
		cfg.RequestedTokenType = TokenTypeAccessToken
	}
	if cfg.ActorToken != "" && cfg.ActorTokenType == "" {
		cfg.ActorTokenType = TokenTypeAccessToken
	}
	x := &Exchange{cfg: cfg, in: cfg.Inject.resolve(), log: cfg.Logger, now: cfg.Now}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	if x.now == nil {
		x.now = time.Now
	}
	// Everything that changes the token asked for is in its key; the actor token (a secret)
	// only as its presence, which is enough as a configuration has one.
	var p []byte
	add := func(s string) {
		p = binary.AppendUvarint(p, uint64(len(s)))
		p = append(p, s...)
	}
	add("exchange/1")
	for _, list := range [][]string{cfg.Audience, cfg.Resource} {
		p = binary.AppendUvarint(p, uint64(len(list)))
		for _, s := range list {
			add(s)
		}
	}
	add(cfg.RequestedTokenType)
	add(cfg.Client.cfg.ClientID)
	add(fmt.Sprint(cfg.ActorToken != ""))
	// The entry keeps its headers built: the injection is part of what it is.
	add(x.in.header)
	add(x.in.prefix)
	add(strings.ToLower(cfg.ActHeader))
	x.params = p
	return x, nil
}

// HeaderNames are the headers Credential sets (authz.UpstreamHeaders).
func (x *Exchange) HeaderNames() []string {
	if x.cfg.ActHeader != "" {
		return []string{x.in.header, strings.ToLower(x.cfg.ActHeader)}
	}
	return []string{x.in.header}
}

// scope is what is asked for: the configured scopes the caller holds.
func (x *Exchange) scope(id *identity.Identity) (string, error) {
	if len(x.cfg.Scopes) == 0 {
		return "", nil
	}
	all := true
	for _, s := range x.cfg.Scopes {
		if !id.HasScope(s) {
			all = false
			break
		}
	}
	if all {
		return strings.Join(x.cfg.Scopes, " "), nil
	}
	var held []string
	for _, s := range x.cfg.Scopes {
		if id.HasScope(s) {
			held = append(held, s)
		}
	}
	if len(held) == 0 {
		return "", fmt.Errorf("%w: the caller holds none of the scopes the exchange asks for", ErrRefused)
	}
	return strings.Join(held, " "), nil
}

// Credential returns the exchanged token for the caller's token, from the cache or a new
// exchange that concurrent callers (on this replica, and with Redis on others) share.
func (x *Exchange) Credential(ctx context.Context, caller authz.CallerToken, id *identity.Identity) (authz.UpstreamCredential, error) {
	callerToken := caller.Token
	if id == nil || id.Source == identity.SourceAPIKey || callerToken == "" {
		return authz.UpstreamCredential{}, fmt.Errorf("%w: only an OAuth access token can be exchanged, not an API key", ErrRefused)
	}
	scope, err := x.scope(id)
	if err != nil {
		return authz.UpstreamCredential{}, err
	}
	st := x.cfg.Store
	// The core's cache key of the token when it has one (the same HMAC): not computed twice.
	ck := caller.Key
	if !caller.Keyed {
		ck = st.callerKey(callerToken)
	}
	k := st.key(ck, x.params, scope)
	if e, tier, ok := st.get(ctx, k, ck); ok {
		if e.neg {
			return authz.UpstreamCredential{}, fmt.Errorf("%w: the authorization server refused this exchange moments ago", ErrRefused)
		}
		if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
			sp.SetAttributes(attribute.String("mcp_authz.upstream_credential.tier", tier))
		}
		if e.cred == nil {
			e.cred = x.headers(e)
			st.keep(k, e)
		}
		return authz.UpstreamCredential{Headers: e.cred, Tier: tier}, nil
	}
	ch := x.sf.DoChan(string(k[:]), func() (any, error) {
		// The first caller's cancellation must not fail the others sharing the exchange.
		return x.exchange(context.WithoutCancel(ctx), k, ck, callerToken, scope, id)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return authz.UpstreamCredential{}, r.Err
		}
		return authz.UpstreamCredential{Headers: r.Val.(entry).cred, Tier: authz.TierIdP}, nil
	case <-ctx.Done():
		return authz.UpstreamCredential{}, fmt.Errorf("token exchange: no answer within the Check's budget: %w", identity.ErrUnavailable)
	}
}

// headers are what an entry's token becomes on the upstream request; built once per entry.
func (x *Exchange) headers(e entry) []authz.Header {
	hs := make([]authz.Header, 1, 2)
	hs[0] = authz.Header{Name: x.in.header, Value: x.in.prefix + e.token}
	if x.cfg.ActHeader != "" && e.act != "" {
		hs = append(hs, authz.Header{Name: strings.ToLower(x.cfg.ActHeader), Value: e.act})
	}
	return hs
}

// exchange runs one RFC 8693 exchange (or waits for another replica's) and stores its result.
func (x *Exchange) exchange(ctx context.Context, k, ck [32]byte, callerToken, scope string, id *identity.Identity) (_ entry, err error) {
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, "token_exchange",
		trace.WithAttributes(attribute.String("mcp_authz.issuer", id.Issuer)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, "token exchange failed") // the detail may name the AS's answer only
		}
		span.End()
	}()
	st := x.cfg.Store
	mine, e, ok := st.claimOrAwait(ctx, k, ck)
	if ok {
		span.SetAttributes(attribute.Bool("mcp_authz.awaited_replica", true))
		e.cred = x.headers(e)
		st.keep(k, e)
		return e, nil
	}
	if mine {
		defer st.unclaim(ctx, k)
	}
	mark := x.now().UnixNano()
	form := url.Values{
		"grant_type":           {GrantTokenExchange},
		"subject_token":        {callerToken},
		"subject_token_type":   {TokenTypeAccessToken},
		"requested_token_type": {x.cfg.RequestedTokenType},
	}
	if len(x.cfg.Audience) > 0 {
		form["audience"] = x.cfg.Audience
	}
	if len(x.cfg.Resource) > 0 {
		form["resource"] = x.cfg.Resource
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	if x.cfg.ActorToken != "" {
		form.Set("actor_token", x.cfg.ActorToken)
		form.Set("actor_token_type", x.cfg.ActorTokenType)
	}
	tok, err := x.cfg.Client.Request(ctx, id.Issuer, form)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			st.setRefused(k)
		}
		x.log.Debug("token exchange failed", "issuer", id.Issuer, "error", err)
		return entry{}, fmt.Errorf("token exchange: %w", err)
	}
	// The AS may narrow the scope; a scope beyond what was asked would make the upstream's
	// token broader than the caller's.
	if tok.Scopes != nil {
		asked := strings.Fields(scope)
		for _, s := range tok.Scopes {
			if !slices.Contains(asked, s) {
				st.setRefused(k)
				return entry{}, fmt.Errorf("%w: the authorization server granted a scope that was not asked for", ErrRefused)
			}
		}
	}
	if tok.IssuedTokenType != "" && tok.IssuedTokenType != x.cfg.RequestedTokenType {
		st.setRefused(k)
		return entry{}, fmt.Errorf("%w: issued_token_type %s is not the requested %s", ErrRefused, safeURI(tok.IssuedTokenType), x.cfg.RequestedTokenType)
	}
	now := x.now()
	e = entry{token: tok.AccessToken, act: tok.Act, mark: mark}
	exp := tok.Expiry
	if exp.IsZero() {
		exp = now.Add(exchangeUnknownExpires)
	}
	// Used until shortly before it expires, so the upstream never receives one about to.
	margin := min(maxRefreshMargin, exp.Sub(now)/10)
	deadline := exp.Add(-margin)
	if !id.Expiry.IsZero() && id.Expiry.Before(deadline) {
		deadline = id.Expiry
	}
	e.deadline = deadline.UnixNano()
	e.cred = x.headers(e)
	st.set(ctx, k, e)
	return e, nil
}

func safeURI(s string) string {
	if len(s) <= 128 && printable(s) && !strings.ContainsAny(s, " \"\\") {
		return s
	}
	return "?"
}
