package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

// writeBack is what an attacker with Redis write access does with a value saved earlier: put
// it back under its key with a day of Redis lifetime.
func writeBack(t *testing.T, rdb redis.UniversalClient, key [32]byte, v []byte) {
	t.Helper()
	if err := rdb.Set(t.Context(), rkey(key), v, 86400000*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
}

func save(t *testing.T, rdb redis.UniversalClient, key [32]byte) []byte {
	t.Helper()
	v, err := rdb.Get(t.Context(), rkey(key)).Bytes()
	if err != nil {
		t.Fatalf("saving the value: %v", err)
	}
	return v
}

// A value saved before a revocation and written back after it (and after the revocation's
// repeat) is refused by every replica that received the revocation: they remember it for as
// long as any entry for the token could live. The token has no exp, so nothing but the
// cache's own bookkeeping bounds it.
func TestRevokedValueWrittenBack(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk := newClock()
	cfg := cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, RevokeRepeat: 20 * time.Millisecond,
		Intern: []string{rfcIssuer, rfcResource}}
	a, b := newTiered(t, cfg), newTiered(t, cfg)
	ctx := t.Context()

	key := a.Key("token-without-exp")
	id := rfcIdentity(clk.Now())
	id.Expiry = time.Time{}
	a.Set(ctx, key, id, 5*time.Minute)
	if _, _, ok := b.Get(ctx, key); !ok {
		t.Fatal("setup: B did not get the entry")
	}
	saved := save(t, rdb, key)

	if err := a.Revoke(ctx, key); err != nil {
		t.Fatal(err)
	}
	// The first announcement and its repeat.
	eventually(t, "both announcements at B", func() bool { return b.Stats().EvictionsReceived >= 2 })
	eventually(t, "both announcements at A", func() bool { return a.Stats().EvictionsReceived >= 2 })
	writeBack(t, rdb, key, saved)

	clk.Advance(time.Minute)
	for name, c := range map[string]*cache.Tiered{"A": a, "B": b} {
		if got, _, tier, ok := c.GetTier(ctx, key); ok {
			t.Errorf("%s: the value written back after the revocation is served from %s: %+v", name, tier, got)
		}
		// Nor does it come back through a claim wait.
		if _, _, ok := c.Await(ctx, key, 10*time.Millisecond); ok {
			t.Errorf("%s: Await took the value written back", name)
		}
	}
}

// Every value carries its own deadline, under its MAC: written back after it with a long Redis
// lifetime, it is refused by a replica that knows nothing of its history.
func TestValueDeadline(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk := newClock()
	cfg := cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, Intern: []string{rfcIssuer, rfcResource}}
	a := newTiered(t, cfg)
	ctx := t.Context()

	noExp := rfcIdentity(clk.Now())
	noExp.Expiry = time.Time{}
	apiKey := identity.Identity{Subject: "svc", Source: identity.SourceAPIKey}
	cases := []struct {
		name string
		set  func(key [32]byte)
		ttl  time.Duration
	}{
		{"positive, exp an hour away", func(k [32]byte) { a.Set(ctx, k, rfcIdentity(clk.Now()), time.Minute) }, time.Minute},
		{"positive, no exp", func(k [32]byte) { a.Set(ctx, k, noExp, time.Minute) }, time.Minute},
		{"api key", func(k [32]byte) { a.Set(ctx, k, apiKey, time.Minute) }, time.Minute},
		{"negative", func(k [32]byte) { a.SetNegative(ctx, k, 10*time.Second) }, 10 * time.Second},
	}
	saved := map[string][]byte{}
	for _, tc := range cases {
		k := a.Key(tc.name)
		tc.set(k)
		saved[tc.name] = save(t, rdb, k)
	}
	clk.Advance(10 * time.Second)
	// A fresh replica still takes the live ones from Redis.
	fresh := newTiered(t, cfg)
	if _, _, ok := fresh.Get(ctx, a.Key(cases[0].name)); !ok {
		t.Fatal("a live value was refused")
	}
	clk.Advance(50 * time.Second)
	later := newTiered(t, cfg)
	for _, tc := range cases {
		k := a.Key(tc.name)
		writeBack(t, rdb, k, saved[tc.name])
		if _, _, tier, ok := later.GetTier(ctx, k); ok {
			t.Errorf("%s: served from %s past its deadline (stored for %v, written back with a day of Redis lifetime)", tc.name, tier, tc.ttl)
		}
	}
	// An entry whose Redis lifetime was removed (PERSIST) also ends at its own deadline.
	p := a.Key("persisted")
	a.Set(ctx, p, rfcIdentity(clk.Now()), time.Minute)
	if err := rdb.Persist(ctx, rkey(p)).Err(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, _, ok := newTiered(t, cfg).Get(ctx, p); ok {
		t.Fatal("entry without a Redis TTL served past its deadline")
	}
}

// A revocation message that does not come from a replica holding the cache secret evicts
// nothing: a raw key, a key with a made-up MAC, or a genuine message replayed after its window.
func TestForgedRevocationIgnored(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk := newClock()
	cfg := cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, RevokeRepeat: -1, MaxTTL: time.Hour}
	a, b := newTiered(t, cfg), newTiered(t, cfg)
	ctx := t.Context()
	channel := prefix + "revoke"

	victim := a.Key("victim")
	b.Set(ctx, victim, rfcIdentity(clk.Now()), time.Hour)

	// Capture a genuine announcement to replay later.
	spy := rdb.Subscribe(ctx, channel)
	t.Cleanup(func() { spy.Close() })
	if _, err := spy.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	old := a.Key("revoked-long-ago")
	if err := a.Revoke(ctx, old); err != nil {
		t.Fatal(err)
	}
	msg, err := spy.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to receive the genuine revocation", func() bool { return b.Stats().EvictionsReceived >= 1 })
	b.Set(ctx, old, rfcIdentity(clk.Now()), time.Hour) // verified again since, say

	// Past the replay window; the entries live on.
	clk.Advance(2 * time.Minute)
	forged := [][]byte{
		victim[:], // the old format: a bare key
		append(victim[:], make([]byte, len(msg.Payload)-32)...), // right length, made-up rest
	}
	for _, f := range forged {
		if err := rdb.Publish(ctx, channel, f).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Publish(ctx, channel, msg.Payload).Err(); err != nil { // the replay
		t.Fatal(err)
	}
	// A genuine revocation of another key after them: once B has applied it, B has read the
	// forged ones (one channel delivers in order).
	barrier := a.Key("barrier")
	if err := a.Revoke(ctx, barrier); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to receive the barrier", func() bool { return b.Stats().EvictionsReceived >= 2 })
	for name, k := range map[string][32]byte{"victim": victim, "replayed": old} {
		if _, _, tier, ok := b.GetTier(ctx, k); !ok || tier != "l1" {
			t.Errorf("%s: after forged messages, Get = tier %q ok %v; want B's L1 entry untouched", name, tier, ok)
		}
	}
	if st := b.Stats(); st.AnnouncementsRejected != 3 || st.EvictionsReceived != 2 {
		t.Errorf("AnnouncementsRejected %d, EvictionsReceived %d; want 3 and 2", st.AnnouncementsRejected, st.EvictionsReceived)
	}
}

// Entries never live longer than MaxTTL, whatever their caller asks for, in either tier.
func TestMaxTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk := newClock()
	cfg := cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, MaxTTL: time.Minute}
	a := newTiered(t, cfg)
	ctx := t.Context()
	key, neg := a.Key("asks for an hour"), a.Key("garbage for an hour")
	a.Set(ctx, key, rfcIdentity(clk.Now()), time.Hour)
	a.SetNegative(ctx, neg, time.Hour)
	for _, k := range [][32]byte{key, neg} {
		if d, err := rdb.PTTL(ctx, rkey(k)).Result(); err != nil || d <= 0 || d > time.Minute {
			t.Fatalf("PTTL %v %v, want at most MaxTTL", d, err)
		}
	}
	clk.Advance(time.Minute)
	b := newTiered(t, cfg)
	for _, k := range [][32]byte{key, neg} {
		if _, _, tier, ok := a.GetTier(ctx, k); ok {
			t.Errorf("A served an entry past MaxTTL from %s", tier)
		}
		if _, _, ok := b.Get(ctx, k); ok {
			t.Error("B took an entry past MaxTTL from Redis")
		}
	}
}

// Past RevocationLimit the oldest revocation is forgotten, and the replica fails safe: no
// positive Redis value that could predate the forgotten revocation is served until its memory
// would have ended, so the forgotten token's saved value is refused too.
func TestRevocationLimit(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	cfg := cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, RevokeRepeat: -1}
	a := newTiered(t, cfg)
	cfg.RevocationLimit, cfg.Logger = 2, logs.logger()
	b := newTiered(t, cfg)
	ctx := t.Context()

	first, bystander := a.Key("revoked first"), a.Key("never revoked")
	a.Set(ctx, first, rfcIdentity(clk.Now()), 5*time.Minute)
	a.Set(ctx, bystander, rfcIdentity(clk.Now()), 5*time.Minute)
	saved := save(t, rdb, first)
	for i, tok := range []string{"revoked first", "second", "third"} {
		if err := a.Revoke(ctx, a.Key(tok)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B to receive the revocation", func() bool { return b.Stats().EvictionsReceived >= uint64(i+1) })
	}
	if st := b.Stats(); st.RevocationsRemembered != 2 || st.RevocationsForgotten != 1 {
		t.Fatalf("B remembers %d and forgot %d revocations; want 2 and 1", st.RevocationsRemembered, st.RevocationsForgotten)
	}
	writeBack(t, rdb, first, saved)
	if _, _, ok := b.Get(ctx, first); ok {
		t.Fatal("the value of a forgotten revocation was served")
	}
	// The price: a value stored before the overflow is refused too, and so is one stored just
	// after (its deadline is within the forgotten revocation's memory); L1 is untouched.
	if _, _, ok := b.Get(ctx, bystander); ok {
		t.Error("a value that could predate the forgotten revocation was served")
	}
	fresh := b.Key("verified after the overflow")
	b.Set(ctx, fresh, rfcIdentity(clk.Now()), 5*time.Minute)
	if _, _, tier, ok := b.GetTier(ctx, fresh); !ok || tier != "l1" {
		t.Errorf("L1 after the overflow: tier %q ok %v", tier, ok)
	}
	if !strings.Contains(logs.String(), "revocation limit") {
		t.Errorf("the overflow was not logged:\n%s", logs.String())
	}

	// Once the forgotten revocation's memory (max TTL, repeat, slack) is over, Redis serves again.
	clk.Advance(5*time.Minute + time.Minute)
	later := a.Key("stored once the memory is over")
	a.Set(ctx, later, rfcIdentity(clk.Now()), 5*time.Minute)
	if _, _, ok := b.Get(ctx, later); !ok {
		t.Error("Redis values still refused after the forgotten revocation's memory ended")
	}
}
