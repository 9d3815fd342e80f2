package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

// fakeChain stands in for the core's verifier chain, which lives in package authz (this
// package must not import it): a table of answers, a call counter, and an optional gate that
// holds every call until it is closed.
type fakeChain struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	calls   atomic.Int64
	gate    chan struct{}
}

type fakeAnswer struct {
	id  identity.Identity
	err error
}

func (f *fakeChain) set(token string, id identity.Identity, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string]fakeAnswer{}
	}
	f.answers[token] = fakeAnswer{id, err}
}

func (f *fakeChain) Verify(ctx context.Context, token string) (identity.Identity, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	a, ok := f.answers[token]
	f.mu.Unlock()
	if !ok {
		return identity.Identity{}, fmt.Errorf("%w: unknown", identity.ErrInvalid)
	}
	if a.err != nil && a.err.Error() == "panic" {
		panic("verifier bug")
	}
	return a.id, a.err
}

var errDown = fmt.Errorf("%w: idp down", identity.ErrUnavailable)

func newVerifier(t *testing.T, c *cache.Tiered, next cache.Next, o cache.VerifierOptions) *cache.Verifier {
	t.Helper()
	if o.MaxTTL == 0 {
		o.MaxTTL = 5 * time.Minute
	}
	v, err := c.Verifier(next, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func verify(t *testing.T, v *cache.Verifier, token string) (identity.Identity, string, error) {
	t.Helper()
	key, ok := v.Key(token)
	if !ok {
		t.Fatal("a caching verifier says it has no key")
	}
	return v.Verify(t.Context(), token, key)
}

// The first Check of a token asks the chain; the next is an L1 hit, and an invalid token is
// remembered as invalid, with its own class, for NegativeTTL only.
func TestVerifierHitsAndNegatives(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	chain := &fakeChain{}
	chain.set("good", rfcIdentity(clk.Now()), nil)
	v := newVerifier(t, c, chain, cache.VerifierOptions{NegativeTTL: 10 * time.Second})

	for i, want := range []string{cache.TierIdP, cache.TierL1} {
		id, tier, err := verify(t, v, "good")
		if err != nil || tier != want {
			t.Fatalf("Check %d: tier %q err %v, want %q", i, tier, err, want)
		}
		sameIdentity(t, id, rfcIdentity(clk.Now()))
	}
	if n := chain.calls.Load(); n != 1 {
		t.Fatalf("chain called %d times for two Checks of one token", n)
	}

	_, _, err := verify(t, v, "bad")
	if !errors.Is(err, identity.ErrInvalid) || errors.Is(err, cache.ErrCachedInvalid) {
		t.Fatalf("first Check of an invalid token: %v, want the chain's own error", err)
	}
	_, tier, err := verify(t, v, "bad")
	var cl identity.Classed
	if !errors.Is(err, cache.ErrCachedInvalid) || !errors.Is(err, identity.ErrInvalid) || tier != cache.TierL1 ||
		!errors.As(err, &cl) || cl.DenialClass() != identity.ClassCached {
		t.Fatalf("second Check of an invalid token: tier %q err %v, want the cached refusal", tier, err)
	}
	calls := chain.calls.Load()
	clk.Advance(10 * time.Second)
	if _, _, err := verify(t, v, "bad"); errors.Is(err, cache.ErrCachedInvalid) || chain.calls.Load() != calls+1 {
		t.Fatalf("after NegativeTTL: %v, chain calls %d → %d; want the chain asked again", err, calls, chain.calls.Load())
	}
}

// An entry never outlives its token's exp, nor revalidate_after for an introspected token of
// that issuer; a token already expired is not stored at all.
func TestVerifierTTL(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	chain := &fakeChain{}
	short := rfcIdentity(clk.Now())
	short.Expiry = clk.Now().Add(30 * time.Second)
	chain.set("short", short, nil)
	chain.set("introspected", rfcIdentity(clk.Now()), nil) // exp in an hour, Source introspection
	gone := rfcIdentity(clk.Now())
	gone.Expiry = clk.Now().Add(-time.Second)
	chain.set("gone", gone, nil)
	v := newVerifier(t, c, chain, cache.VerifierOptions{RevalidateAfter: map[string]time.Duration{rfcIssuer: time.Minute}})

	for _, tok := range []string{"short", "introspected", "gone"} {
		if _, _, err := verify(t, v, tok); err != nil {
			t.Fatal(tok, err)
		}
	}
	if _, tier, _ := verify(t, v, "gone"); tier != cache.TierIdP {
		t.Errorf("an expired token's identity was cached (tier %q)", tier)
	}
	clk.Advance(30 * time.Second)
	if _, _, _, ok := c.GetTier(t.Context(), c.Key("short")); ok {
		t.Error("an entry outlived its token's exp")
	}
	if _, _, _, ok := c.GetTier(t.Context(), c.Key("introspected")); !ok {
		t.Error("an introspected entry ended before revalidate_after")
	}
	clk.Advance(30 * time.Second)
	if _, _, _, ok := c.GetTier(t.Context(), c.Key("introspected")); ok {
		t.Error("an introspected entry outlived revalidate_after")
	}
}

// Concurrent Checks of one new token make one call to the chain, and each reports the tier of
// the answer it got.
func TestVerifierOneFlight(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	chain := &fakeChain{gate: make(chan struct{})}
	chain.set("new", rfcIdentity(clk.Now()), nil)
	v := newVerifier(t, c, chain, cache.VerifierOptions{})

	const n = 20
	var wg sync.WaitGroup
	tiers := make(chan string, n)
	for range n {
		wg.Go(func() {
			_, tier, err := verify(t, v, "new")
			if err != nil {
				t.Error(err)
			}
			tiers <- tier
		})
	}
	eventually(t, "the first call to reach the chain", func() bool { return chain.calls.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // the others join the flight (or hit the cache after it)
	close(chain.gate)
	wg.Wait()
	close(tiers)
	if got := chain.calls.Load(); got != 1 {
		t.Fatalf("%d concurrent Checks made %d calls to the chain, want 1", n, got)
	}
	for tier := range tiers {
		if tier != cache.TierIdP && tier != cache.TierL1 {
			t.Errorf("tier %q", tier)
		}
	}
}

// A token this replica verified before, due again, is answered at once from the earlier
// verification while the chain is asked in the background; the background answer replaces
// it, so a token the IdP now calls invalid is refused at the next Check. With the IdP down,
// the earlier verification keeps answering.
func TestVerifierStaleWhileRevalidate(t *testing.T) {
	clk := newClock()
	const maxTTL = time.Minute
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now, MaxTTL: maxTTL, StaleGrace: 5 * time.Minute})
	chain := &fakeChain{}
	id := rfcIdentity(clk.Now())
	chain.set("tok", id, nil)
	v := newVerifier(t, c, chain, cache.VerifierOptions{MaxTTL: maxTTL, NegativeTTL: time.Minute})
	if _, _, err := verify(t, v, "tok"); err != nil {
		t.Fatal(err)
	}

	clk.Advance(maxTTL) // due
	chain.set("tok", identity.Identity{}, errDown)
	got, tier, err := verify(t, v, "tok")
	if err != nil || tier != cache.TierStale {
		t.Fatalf("IdP down, entry due: tier %q err %v, want the stale answer", tier, err)
	}
	sameIdentity(t, got, id)
	eventually(t, "the background re-verification", func() bool { return chain.calls.Load() == 2 })

	chain.set("tok", identity.Identity{}, fmt.Errorf("%w: revoked", identity.ErrInvalid))
	if _, tier, err := verify(t, v, "tok"); err != nil || tier != cache.TierStale {
		t.Fatalf("entry due, IdP says invalid: tier %q err %v; this Check still gets the stale answer", tier, err)
	}
	eventually(t, "the refusal to be stored", func() bool {
		_, err := func() (identity.Identity, error) { id, _, err := verify(t, v, "tok"); return id, err }()
		return errors.Is(err, cache.ErrCachedInvalid)
	})
}

// With no earlier verification, an unavailable IdP is the chain's unavailable error; a Check
// whose budget runs out while the flight waits gets an unavailable error of its own, and the
// flight goes on to serve the next Check.
func TestVerifierUnavailableAndBudget(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	chain := &fakeChain{}
	chain.set("down", identity.Identity{}, errDown)
	v := newVerifier(t, c, chain, cache.VerifierOptions{NegativeTTL: time.Minute})
	if _, tier, err := verify(t, v, "down"); !errors.Is(err, identity.ErrUnavailable) || tier != cache.TierIdP {
		t.Fatalf("tier %q err %v", tier, err)
	}
	if _, _, _, ok := c.GetTier(t.Context(), c.Key("down")); ok {
		t.Fatal("an unavailable answer was cached")
	}

	chain.gate = make(chan struct{})
	chain.set("slow", rfcIdentity(clk.Now()), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	key, _ := v.Key("slow")
	if _, _, err := v.Verify(ctx, "slow", key); !errors.Is(err, identity.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("budget spent: %v", err)
	}
	close(chain.gate)
	eventually(t, "the flight to store its answer", func() bool {
		_, tier, err := verify(t, v, "slow")
		return err == nil && tier == cache.TierL1
	})
}

// A revocation announced while a verification runs keeps its result out of the cache (the
// verification may have read the token before the revocation).
func TestVerifierRevocationDuringFlight(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	chain := &fakeChain{gate: make(chan struct{})}
	chain.set("tok", rfcIdentity(clk.Now()), nil)
	v := newVerifier(t, c, chain, cache.VerifierOptions{})
	done := make(chan error, 1)
	go func() { _, _, err := verify(t, v, "tok"); done <- err }()
	eventually(t, "the flight to start", func() bool { return chain.calls.Load() == 1 })
	clk.Advance(time.Millisecond)
	if err := c.Revoke(t.Context(), c.Key("tok")); err != nil {
		t.Fatal(err)
	}
	close(chain.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := c.GetTier(t.Context(), c.Key("tok")); ok {
		t.Fatal("a verification that started before a revocation was stored after it")
	}
}

// An API-key identity found in the cache (an older version stored them) is not trusted: the
// chain is asked. Its entry is live, so it is not a hit and yet Tiered.Stale would return it:
// before the cache verifier, the core's stale path answered with it.
func TestVerifierIgnoresCachedAPIKeys(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	key := c.Key("k")
	old := rfcIdentity(clk.Now())
	old.Source = identity.SourceAPIKey
	c.Set(t.Context(), key, old, time.Hour)
	chain := &fakeChain{}
	v := newVerifier(t, c, chain, cache.VerifierOptions{})
	if _, _, err := verify(t, v, "k"); !errors.Is(err, identity.ErrInvalid) || chain.calls.Load() != 1 {
		t.Fatalf("err %v, chain calls %d: want the chain's refusal", err, chain.calls.Load())
	}
}

// A panic in the chain reaches the caller (whose adapter recovers it), not the flight's own
// goroutine, where it would end the process.
func TestVerifierPanicReachesCaller(t *testing.T) {
	c := newTiered(t, cache.Config{L1Size: 100})
	chain := &fakeChain{}
	chain.set("boom", identity.Identity{}, errors.New("panic"))
	v := newVerifier(t, c, chain, cache.VerifierOptions{})
	defer func() {
		if p := recover(); p == nil {
			t.Fatal("no panic reached the caller")
		}
	}()
	verify(t, v, "boom")
}

// Two replicas sharing a Redis: a new token headed for introspection (Shared) is verified by
// one of them; the other waits for its result and reports it from Redis. A token that is not
// Shared (a local JWT check) is verified by each.
func TestVerifierClaimAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	chainA, chainB := &fakeChain{gate: make(chan struct{})}, &fakeChain{}
	id := rfcIdentity(clk.Now())
	chainA.set("opaque", id, nil)
	chainB.set("opaque", id, nil)
	chainA.set("jwt", id, nil)
	chainB.set("jwt", id, nil)
	shared := func(token string) bool { return token == "opaque" }
	o := cache.VerifierOptions{ClaimWait: 5 * time.Second, Shared: shared}
	va, vb := newVerifier(t, a, chainA, o), newVerifier(t, b, chainB, o)

	done := make(chan error, 1)
	go func() { _, _, err := verify(t, va, "opaque"); done <- err }()
	eventually(t, "A to claim and call its chain", func() bool { return chainA.calls.Load() == 1 })
	type res struct {
		tier string
		err  error
	}
	got := make(chan res, 1)
	go func() { _, tier, err := verify(t, vb, "opaque"); got <- res{tier, err} }()
	time.Sleep(20 * time.Millisecond) // B is waiting on A's claim
	close(chainA.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || r.tier != cache.TierRedis {
		t.Fatalf("B: tier %q err %v, want A's result from Redis", r.tier, r.err)
	}
	if n := chainB.calls.Load(); n != 0 {
		t.Fatalf("B's chain was called %d times for a token A verified", n)
	}

	if _, _, err := verify(t, vb, "jwt"); err != nil || chainB.calls.Load() != 1 {
		t.Fatalf("a token that is not Shared: err %v, B's chain calls %d, want 1", err, chainB.calls.Load())
	}
}

func TestVerifierOptionsChecked(t *testing.T) {
	c := newTiered(t, cache.Config{L1Size: 100})
	if _, err := c.Verifier(nil, cache.VerifierOptions{MaxTTL: time.Minute}); err == nil {
		t.Error("a Verifier without a chain")
	}
	if _, err := c.Verifier(&fakeChain{}, cache.VerifierOptions{}); err == nil {
		t.Error("a Verifier with no MaxTTL")
	}
}
