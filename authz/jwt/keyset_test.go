package jwt

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
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
	// The refreshed set no longer has rsa-1: the withdrawn key stopped verifying within the
	// TTL (unavailable inside the refresh interval, invalid once a fetch confirms it).
	id, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil))
	wantErr(t, id, err, identity.ErrUnavailable, "unknown kid", "")
	f.clock.Advance(30 * time.Second)
	id, err = f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil))
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
	for _, typ := range []string{"", "JWT2"} {
		token := mint(t, keyRSA(), f.claims(), map[string]any{"typ": typ})
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrInvalid, "typ", token)
	}
	token := mint(t, keyRSA(), f.claims(), map[string]any{"typ": "id_token"})
	id, err := f.v.Verify(t.Context(), token)
	wantErr(t, id, err, identity.ErrInvalid, "not an access token", token)
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
	// Inside the interval: unavailable (not invalid, so not cached as such), no fetch, a
	// trailing refresh scheduled (once, however many tokens ask).
	for range 20 {
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrUnavailable, "unknown kid", token)
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

// Issue 15 item 7: a token signed with a key rotated in just after our last fetch is not the
// token's fault. Inside the refresh interval it is unavailable (so neither cached as invalid
// nor blamed on the caller), and it is allowed by the first request the interval lets fetch,
// with no negative-cache delay on top.
func TestRotatedKeyInsideIntervalIsUnavailable(t *testing.T) {
	f := setup(t, discoveryNone, func(c *Config) { c.RefreshInterval = 10 * time.Second })
	if _, err := f.v.Verify(t.Context(), mint(t, keyRSA(), f.claims(), nil)); err != nil {
		t.Fatal(err)
	}
	newKey := testKey{kid: "rsa-rotated", alg: jose.RS256, priv: rsaKey2}
	f.is.addKey(newKey)
	f.clock.Advance(time.Second)
	token := mint(t, newKey, f.claims(), nil)
	for range 5 {
		id, err := f.v.Verify(t.Context(), token)
		wantErr(t, id, err, identity.ErrUnavailable, "unknown kid", token)
	}
	if n := f.is.jwksHits.Load(); n != 1 {
		t.Fatalf("%d fetches inside the interval, want 1", n)
	}
	f.clock.Advance(9 * time.Second) // the interval since the last fetch is over
	id, err := f.v.Verify(t.Context(), token)
	if err != nil || id.Subject != "user-1" {
		t.Fatalf("the rotated key once the interval allows a fetch: %+v, %v", id, err)
	}
	if n := f.is.jwksHits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

// Issue 15 item 6: an https issuer whose metadata names an http jwks_uri does not get its
// keys fetched in clear (anyone on the path could serve their own), nor does a redirect from
// an https jwks_uri to http. Introspection refuses the same downgrade (checkDiscovered).
func TestJWKSNotFetchedInClearForHTTPSIssuer(t *testing.T) {
	genKeys()
	plain := newIssuer(t, discoveryNone, keyRSA()) // serves /jwks over http
	mux := http.NewServeMux()
	var jwksURI atomic.Value // written by the test, read by the server
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, "https://"+r.Host, jwksURI.Load())
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
	})
	tlsIs := httptest.NewTLSServer(mux)
	defer tlsIs.Close()
	tlsURL := tlsIs.URL

	for _, tc := range []struct{ name, jwksURI, want string }{
		{"discovered http jwks_uri", plain.URL + "/jwks", "not https"},
		{"https jwks_uri redirecting to http", tlsURL + "/jwks", "redirect from https to http refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwksURI.Store(tc.jwksURI)
			before := plain.jwksHits.Load()
			v, err := New(required(Config{Issuer: tlsURL, HTTPClient: tlsIs.Client(), RequireTyp: true}))
			if err != nil {
				t.Fatal(err)
			}
			token := mint(t, keyRSA(), claimsFor(tlsURL, time.Now()), nil)
			id, err := v.Verify(t.Context(), token)
			wantErr(t, id, err, identity.ErrUnavailable, tc.want, token)
			if n := plain.jwksHits.Load() - before; n != 0 {
				t.Errorf("keys fetched over http %d times", n)
			}
		})
	}
	// Over http the same jwks_uri is the operator's choice (local testing) and is used.
	v, err := New(required(Config{Issuer: plain.URL, JWKSURL: plain.URL + "/jwks", RequireTyp: true, HTTPClient: plain.Client()}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), mint(t, keyRSA(), claimsFor(plain.URL, time.Now()), nil)); err != nil {
		t.Fatal(err)
	}
}
