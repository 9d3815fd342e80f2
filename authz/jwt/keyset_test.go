package jwt

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

func TestCacheTTL(t *testing.T) {
	for _, tc := range []struct {
		cc   []string
		want time.Duration
	}{
		{nil, defaultTTL},
		{[]string{"public, max-age=3600"}, time.Hour},
		{[]string{"max-age=\"600\""}, 10 * time.Minute},
		{[]string{"public", "max-age=7200, must-revalidate"}, 2 * time.Hour},
		{[]string{"S-MAXAGE=300"}, 5 * time.Minute},
		{[]string{"max-age=0"}, minTTL},
		{[]string{"max-age=5"}, minTTL},
		{[]string{"no-cache"}, minTTL},
		{[]string{"max-age=3600, no-store"}, minTTL},
		{[]string{"max-age=31536000"}, maxTTL},
		{[]string{"max-age=99999999999999999999"}, defaultTTL}, // does not parse: ignored
		{[]string{"max-age=-1"}, defaultTTL},
		{[]string{"max-age=soon"}, defaultTTL},
		{[]string{",,=,max-age"}, defaultTTL},
	} {
		h := http.Header{}
		for _, v := range tc.cc {
			h.Add("Cache-Control", v)
		}
		if got := cacheTTL(h); got != tc.want {
			t.Errorf("Cache-Control %q: ttl %s, want %s", tc.cc, got, tc.want)
		}
	}
}

// countingObserver records key-set events for the tests.
type countingObserver struct {
	mu                sync.Mutex
	ok, failed, stale int
}

func (o *countingObserver) KeysFetched(_ string, err error, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.failed++
	} else {
		o.ok++
	}
}

func (o *countingObserver) StaleKeys(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stale++
}

func (o *countingObserver) counts() (ok, failed, stale int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ok, o.failed, o.stale
}

// waitHits waits, bounded, for the issuer to have served n JWKS requests and for the fetch
// that made the last one to have finished.
func waitHits(t *testing.T, f *fixture, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.v.keys.mu.Lock()
		busy := f.v.keys.fetching
		f.v.keys.mu.Unlock()
		if f.is.jwksHits.Load() >= n && !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JWKS fetches: %d, want %d", f.is.jwksHits.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The JWKS response's max-age decides when keys are refreshed: in the background, before
// they expire, and not before.
func TestJWKSCacheControlRefreshesBeforeExpiry(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	f.is.mu.Lock()
	f.is.cc = "public, max-age=120"
	f.is.mu.Unlock()
	token := mint(t, keyRSA(), f.claims(), nil)
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if got := f.v.keys.keys.Load().ttl; got != 2*time.Minute {
		t.Fatalf("ttl %s, want the served max-age 2m", got)
	}
	// At 80 s (under 3/4 of 120 s) nothing is due.
	f.clock.Advance(80 * time.Second)
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Fatalf("%d fetches before the refresh was due, want 1", n)
	}
	// At 100 s a refresh is due: the request is answered from the current keys at once and
	// the refresh runs behind it.
	f.is.mu.Lock()
	f.is.keys = []testKey{keyEC()} // rsa-1 withdrawn
	f.is.mu.Unlock()
	f.clock.Advance(20 * time.Second)
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatalf("due refresh blocked or failed the request: %v", err)
	}
	waitHits(t, f, 2)
	// The refreshed set no longer has rsa-1: the withdrawn key stopped verifying within the TTL.
	id, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil))
	wantErr(t, id, err, identity.ErrInvalid, "unknown kid", "")
}

// With the issuer down, keys past their TTL serve for MaxStale, then stop, and readiness says
// so; when the issuer comes back one request brings them back.
func TestJWKSBoundedStaleness(t *testing.T) {
	obs := &countingObserver{}
	f := setup(t, discoveryNone, func(c *Config) { c.MaxStale = time.Hour; c.Observer = obs })
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	f.is.setDown(true)
	// Past the TTL: still verifying, stale use counted, background refreshes failing.
	f.clock.Advance(defaultTTL + time.Minute)
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatalf("stale keys within MaxStale: %v", err)
	}
	waitHits(t, f, 2)
	if ok, failed, stale := obs.counts(); ok != 1 || failed != 1 || stale != 1 {
		t.Errorf("observer: %d ok, %d failed, %d stale; want 1, 1, 1", ok, failed, stale)
	}
	if err := f.v.Ready(); err != nil {
		t.Errorf("Ready within MaxStale = %v", err)
	}
	// Past TTL + MaxStale: the keys no longer verify; the token is not blamed (unavailable).
	f.clock.Advance(time.Hour)
	token := mint(t, keyRSA(), f.claims(), nil)
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrUnavailable, "keys expired and unavailable", token)
	if err := f.v.Ready(); err == nil {
		t.Error("Ready with expired keys = nil")
	}
	// A flood inside the interval makes no further fetches.
	hits := f.is.jwksHits.Load()
	for range 50 {
		if _, err := f.v.Verify(t.Context(), token); !errors.Is(err, identity.ErrUnavailable) {
			t.Fatalf("expired keys: %v", err)
		}
	}
	if n := f.is.jwksHits.Load(); n != hits {
		t.Errorf("flood with expired keys: %d fetches, want %d", n, hits)
	}
	// The issuer is back: after the interval, one request reloads and verifies.
	f.is.setDown(false)
	f.clock.Advance(31 * time.Second)
	token = mint(t, keyRSA(), f.claims(), nil)
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatalf("after the issuer came back: %v", err)
	}
	if err := f.v.Ready(); err != nil {
		t.Errorf("Ready after recovery = %v", err)
	}
}

func TestAllowTyp(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.AllowTyp = []string{"JWT"} })
	for _, typ := range []string{"JWT", "jwt", "at+jwt"} {
		if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), map[string]any{"typ": typ})); err != nil {
			t.Errorf("typ %q with allow_typ [JWT]: %v", typ, err)
		}
	}
	for _, typ := range []string{"", "id_token", "JWT2"} {
		token := mint(t, keyRSA(), f.claims(), map[string]any{"typ": typ})
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrInvalid, "typ", token)
	}
}

// A key rotated in just after a fetch is found by one trailing refresh when the interval
// allows it, not only when another unknown kid arrives after the interval.
func TestTrailingRefreshAfterRateLimit(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.RefreshInterval = time.Second; c.Now = nil })
	// Real time here: the trailing refresh is a real timer.
	claims := func() map[string]any { return claimsFor(f.is.URL, time.Now()) }
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), claims(), nil)); err != nil {
		t.Fatal(err)
	}
	newKey := testKey{kid: "rsa-new", alg: jose.RS256, priv: rsaKey2}
	f.is.mu.Lock()
	f.is.keys = append(f.is.keys, newKey)
	f.is.mu.Unlock()
	token := mint(t, newKey, claims(), nil)
	// Inside the interval: refused, no fetch, a trailing refresh scheduled (once, however many
	// tokens ask).
	for range 20 {
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrInvalid, "unknown kid", token)
	}
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Fatalf("%d fetches inside the interval, want 1", n)
	}
	waitHits(t, f, 2)
	if _, err := f.v.Verify(t.Context(), token); err != nil {
		t.Fatalf("after the trailing refresh: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a second trailing refresh would have fired by now
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (one trailing refresh)", n)
	}
}
