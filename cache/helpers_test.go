package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/cache"
)

// tokenVerifier is the interface package authz declares (authz.TokenVerifier), restated so
// this package's tests do not depend on authz compiling.
type tokenVerifier interface {
	Key(token string) (key [32]byte, ok bool)
	Verify(ctx context.Context, token string, key [32]byte) (id identity.Identity, tier string, err error)
}

var _ tokenVerifier = (*cache.Verifier)(nil)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// clock is a settable Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuf collects log output so tests can scan it for secrets.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const (
	rfcIssuer   = "https://server.example.com/"
	rfcResource = "https://protected.example.net/resource"
)

// rfcIdentity is the RFC 7662 §2.2 example introspection response, the canonical "typical
// token": sub, client_id, one aud, three scopes, iss; exp an hour after now.
func rfcIdentity(now time.Time) identity.Identity {
	return identity.Identity{
		Issuer:   rfcIssuer,
		Subject:  "Z5O3upPC88QrAjx00dis",
		ClientID: "l238j323ds-23ij4",
		Audience: []string{rfcResource},
		Scopes:   []string{"read", "write", "dolphin"},
		Expiry:   now.Add(time.Hour).Truncate(time.Second),
		Source:   identity.SourceIntrospection,
	}
}

func newTiered(t testing.TB, cfg cache.Config) *cache.Tiered {
	t.Helper()
	c, err := cache.New(t.Context(), required(cfg))
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func newClient(t testing.TB, addrs ...string) redis.UniversalClient {
	t.Helper()
	cfg := cache.RedisConfig{Addrs: addrs}
	if len(addrs) > 1 {
		cfg.Mode = cache.ModeCluster // the tests' only multi-address deployment
	}
	c, err := cache.NewRedisClient(cfg)
	if err != nil {
		t.Fatalf("NewRedisClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sameIdentity(t testing.TB, got, want identity.Identity) {
	t.Helper()
	if got.Issuer != want.Issuer || got.Subject != want.Subject || got.ClientID != want.ClientID ||
		strings.Join(got.Audience, " ") != strings.Join(want.Audience, " ") ||
		strings.Join(got.Scopes, " ") != strings.Join(want.Scopes, " ") ||
		!got.Expiry.Equal(want.Expiry) || !got.NotBefore.Equal(want.NotBefore) ||
		got.Source != want.Source || len(got.Claims) != len(want.Claims) {
		t.Fatalf("identity:\n got %+v\nwant %+v", got, want)
	}
	for k, v := range want.Claims {
		if got.Claims[k] != v {
			t.Fatalf("claim %q = %q, want %q", k, got.Claims[k], v)
		}
	}
}

// eventually polls cond until it holds or a generous deadline passes; the deadline only stops
// a broken test from hanging, it is not what the test asserts.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// required fills what cache.New demands and a test left unset: the secret, and package
// config's defaults written out (this package must not import config).
func required(cfg cache.Config) cache.Config {
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = 5 * time.Minute
	}
	if cfg.RevocationLimit == 0 {
		cfg.RevocationLimit = 10_000
	}
	if cfg.Redis != nil && cfg.RedisTimeout == 0 {
		cfg.RedisTimeout = 50 * time.Millisecond
	}
	return cfg
}
