package cache_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

const prefix = "mcp-authz:v5:"

func rkey(k [32]byte) string { return prefix + string(k[:16]) }

// pair is two replicas sharing one Redis, each with its own L1.
func pair(t *testing.T, rdb redis.UniversalClient, clk *clock, logs *logBuf) (a, b *cache.Tiered) {
	t.Helper()
	cfg := cache.Config{L1Size: 1000, Redis: rdb, Now: clk.Now, Logger: logs.logger(),
		Intern: []string{rfcIssuer, rfcResource}}
	return newTiered(t, cfg), newTiered(t, cfg)
}

func TestL2RoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()

	want := rfcIdentity(clk.Now())
	want.NotBefore = clk.Now().Add(-time.Minute)
	want.Claims = map[string]string{"username": "jdoe", "extension_field": "twenty-seven"}
	key := a.Key("2YotnFZFEjr1zCsicMWpAA")
	if b.Key("2YotnFZFEjr1zCsicMWpAA") != key {
		t.Fatal("replicas with one secret disagree on the key")
	}
	a.Set(ctx, key, want, time.Minute)

	got, neg, ok := b.Get(ctx, key)
	if !ok || neg {
		t.Fatalf("B.Get: ok=%v negative=%v", ok, neg)
	}
	sameIdentity(t, got, want)
	if st := b.Stats(); st.L1Misses != 1 || st.L2Hits != 1 {
		t.Fatalf("B's first Get should come from Redis: %+v", st)
	}
	got, _, ok = b.Get(ctx, key)
	if !ok {
		t.Fatal("second B.Get missed")
	}
	sameIdentity(t, got, want)
	if st := b.Stats(); st.L1Hits != 1 || st.L2Hits != 1 {
		t.Fatalf("B's second Get should come from its L1: %+v", st)
	}

	// Negative entries travel too.
	bad := a.Key("garbage")
	a.SetNegative(ctx, bad, 10*time.Second)
	if _, neg, ok := b.Get(ctx, bad); !ok || !neg {
		t.Fatalf("negative via Redis: ok=%v negative=%v", ok, neg)
	}
	if _, _, ok := b.Get(ctx, b.Key("never-set")); ok {
		t.Fatal("hit for a key nobody set")
	}
	if h := b.Health(); !h.RedisConfigured || !h.RedisUp || h.BreakerState != "closed" {
		t.Fatalf("health: %+v", h)
	}
}

func TestRedisTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()

	pttl := func(k [32]byte) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, rkey(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	long := a.Key("ttl-bound")
	a.Set(ctx, long, rfcIdentity(clk.Now()), 30*time.Second)
	if d := pttl(long); d <= 25*time.Second || d > 30*time.Second {
		t.Fatalf("PTTL %v, want just under 30s", d)
	}
	short := a.Key("exp-bound")
	id := rfcIdentity(clk.Now())
	id.Expiry = clk.Now().Add(10 * time.Second)
	a.Set(ctx, short, id, time.Hour)
	if d := pttl(short); d <= 5*time.Second || d > 10*time.Second {
		t.Fatalf("PTTL %v, want the 10s left to exp, not the hour asked for", d)
	}
	neg := a.Key("neg")
	a.SetNegative(ctx, neg, 3*time.Second)
	if d := pttl(neg); d <= 0 || d > 3*time.Second {
		t.Fatalf("negative PTTL %v", d)
	}

	// B learns the entry from Redis; its L1 copy must die with the token, although Redis
	// (on real time) still holds it.
	if _, _, ok := b.Get(ctx, short); !ok {
		t.Fatal("B missed")
	}
	clk.Advance(10 * time.Second)
	if _, _, ok := b.Get(ctx, short); ok {
		t.Fatal("B returned an entry past the token's exp")
	}
	if pttl(short) <= 0 {
		t.Fatal("test premise: Redis should still hold the entry")
	}

	// Redis's lifetime only reclaims memory; the value's own deadline (TestValueDeadline)
	// decides when it stops being served.
}

func TestTamperedRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()

	alice, mallory := a.Key("alice-token"), a.Key("mallory-token")
	admin := rfcIdentity(clk.Now())
	admin.Subject, admin.Scopes = "alice", []string{"admin"}
	a.Set(ctx, alice, admin, time.Minute)
	a.Set(ctx, mallory, rfcIdentity(clk.Now()), time.Minute)
	va, _ := rdb.Get(ctx, rkey(alice)).Bytes()
	vm, _ := rdb.Get(ctx, rkey(mallory)).Bytes()

	// Swap: mallory's key now holds alice's (validly MAC'd) value, and the reverse.
	rdb.Set(ctx, rkey(mallory), va, time.Minute)
	rdb.Set(ctx, rkey(alice), vm, time.Minute)
	for _, k := range [][32]byte{alice, mallory} {
		if id, _, ok := b.Get(ctx, k); ok {
			t.Fatalf("swapped value accepted: %+v", id)
		}
	}
	if st := b.Stats(); st.BadMAC != 2 || st.L2Hits != 0 {
		t.Fatalf("after swap: %+v", st)
	}

	// Every single-byte change is caught.
	before := b.Stats()
	for i := range va {
		w := bytes.Clone(va)
		w[i] ^= 0x20
		rdb.Set(ctx, rkey(alice), w, time.Minute)
		if _, _, ok := b.Get(ctx, alice); ok {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	after := b.Stats()
	rejected := (after.BadMAC - before.BadMAC) + (after.Undecodable - before.Undecodable)
	if rejected != uint64(len(va)) || after.L2Hits != 0 {
		t.Fatalf("%d of %d tampered values counted as rejected: %+v", rejected, len(va), after)
	}
	// Junk of other kinds.
	for _, junk := range []string{"", "x", `{"active":true,"sub":"root"}`, strings.Repeat("\x01", 64)} {
		rdb.Set(ctx, rkey(alice), junk, time.Minute)
		if _, _, ok := b.Get(ctx, alice); ok {
			t.Fatalf("junk %q accepted", junk)
		}
	}
	if st := b.Stats(); st.Undecodable == 0 {
		t.Fatalf("junk not counted as undecodable: %+v", st)
	}
	// The log says so, once per interval, without the value.
	out := logs.String()
	if !strings.Contains(out, "rejected a redis value") || strings.Contains(out, "alice") ||
		strings.Count(out, "rejected a redis value") != 1 {
		t.Fatalf("log:\n%s", out)
	}
}

func TestKeyHasNoToken(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()
	tokens := []string{
		"2YotnFZFEjr1zCsicMWpAA",
		"eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		"mF_9.B5f-4.1JqM",
	}
	for i, tok := range tokens {
		if i == 2 {
			a.SetNegative(ctx, a.Key(tok), time.Minute)
		} else {
			a.Set(ctx, a.Key(tok), rfcIdentity(clk.Now()), time.Minute)
		}
		b.Get(ctx, b.Key(tok))
		if err := a.Revoke(ctx, a.Key(tok)); err != nil {
			t.Fatal(err)
		}
		a.Set(ctx, a.Key(tok), rfcIdentity(clk.Now()), time.Minute)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) != len(tokens) {
		t.Fatalf("KEYS: %v %v", keys, err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || len(k) != len(prefix)+16 {
			t.Errorf("key %q: not prefix + 16 bytes", k)
		}
		v, _ := rdb.Get(ctx, k).Result()
		for _, tok := range tokens {
			for _, s := range []string{k, v, logs.String()} {
				if strings.Contains(s, tok) {
					t.Fatalf("token %q found in Redis or logs", tok)
				}
			}
		}
	}
}

// Redis dies mid-test: the cache keeps answering from L1, the breaker opens after the
// configured failures and stops calls, Health says so; Redis comes back and so does L2.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	c := newTiered(t, cache.Config{L1Size: 1000, Redis: rdb, Now: clk.Now, Logger: logs.logger(),
		Breaker: cache.BreakerConfig{Failures: 3, OpenFor: 5 * time.Second}})
	ctx := t.Context()
	cached := c.Key("cached-before-outage")
	c.Set(ctx, cached, rfcIdentity(clk.Now()), time.Hour)

	srv.Kill()
	if _, _, ok := c.Get(ctx, cached); !ok {
		t.Fatal("L1 entry lost when Redis died")
	}
	for i := range 3 {
		if _, _, ok := c.Get(ctx, c.Key("unknown-"+string(rune('a'+i)))); ok {
			t.Fatal("hit for an unknown key")
		}
	}
	st := c.Stats()
	if st.L2Errors != 3 {
		t.Fatalf("errors before the breaker opens: %+v", st)
	}
	h := c.Health()
	if h.RedisUp || h.BreakerState != "open" || h.LastError == "" {
		t.Fatalf("health during outage: %+v", h)
	}
	// Open: Redis is not called at all, Set still feeds L1.
	during := c.Key("set-during-outage")
	c.Set(ctx, during, rfcIdentity(clk.Now()), time.Hour)
	if _, _, ok := c.Get(ctx, during); !ok {
		t.Fatal("Set during the outage did not reach L1")
	}
	c.Get(ctx, c.Key("another-unknown"))
	if st2 := c.Stats(); st2.L2Errors != st.L2Errors || st2.L2Skipped == 0 {
		t.Fatalf("open breaker still called Redis: %+v", st2)
	}
	if n := strings.Count(logs.String(), "breaker open"); n != 1 {
		t.Fatalf("breaker opening logged %d times:\n%s", n, logs.String())
	}

	srv.Restart()
	// After the open period one probe goes through; a pooled connection that died with the
	// old process may fail it once, so allow a few periods.
	for i := 0; c.Health().BreakerState != "closed"; i++ {
		if i == 10 {
			t.Fatalf("breaker never closed: %+v", c.Health())
		}
		clk.Advance(5 * time.Second)
		c.Get(ctx, c.Key("probe"))
	}
	if h := c.Health(); !h.RedisUp {
		t.Fatalf("health after recovery: %+v", h)
	}
	after := c.Key("set-after-recovery")
	c.Set(ctx, after, rfcIdentity(clk.Now()), time.Hour)
	if n, err := rdb.Exists(ctx, rkey(after)).Result(); err != nil || n != 1 {
		t.Fatalf("Set after recovery did not reach Redis: %d %v", n, err)
	}
	if !strings.Contains(logs.String(), "breaker closed") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// blackhole accepts connections and never answers, like a Redis that hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// A Redis that accepts but never answers costs each call RedisTimeout, not the client's
// read timeout (a minute here): the calls must come back long before that.
func TestHungRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: blackhole(t), ContextTimeoutEnabled: true,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	clk := newClock()
	ctx := t.Context()
	c, err := cache.New(ctx, required(cache.Config{Secret: secret, L1Size: 100, Redis: rdb, Now: clk.Now, RedisTimeout: 20 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		k := c.Key("t")
		c.Set(ctx, k, rfcIdentity(clk.Now()), time.Minute)
		if _, _, ok := c.Get(ctx, k); !ok {
			t.Error("L1 entry not served while Redis hangs")
		}
		for i := range 10 {
			c.Get(ctx, c.Key(strings.Repeat("x", i+1)))
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("cache calls blocked on a hung Redis")
	}
	if h := c.Health(); h.BreakerState != "open" {
		t.Fatalf("breaker after repeated timeouts: %+v", h)
	}
	// Close is bounded too; it may report that the subscription is still closing.
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close blocked on a hung Redis")
	}
}

// A revocation on A reaches B's L1. The test waits for B to receive it (bounded poll on B's
// counter), then asserts B answers a miss.
func TestRevokePropagates(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()
	key, keep := a.Key("revoked-token"), a.Key("kept-token")
	a.Set(ctx, key, rfcIdentity(clk.Now()), time.Hour)
	a.Set(ctx, keep, rfcIdentity(clk.Now()), time.Hour)
	for _, k := range [][32]byte{key, keep} {
		if _, _, ok := b.Get(ctx, k); !ok {
			t.Fatal("B did not get the entry")
		}
	}
	if err := a.Revoke(ctx, key); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, _, ok := a.Get(ctx, key); ok {
		t.Fatal("revoking replica still answers")
	}
	eventually(t, "B to receive the revocation", func() bool { return b.Stats().EvictionsReceived >= 1 })
	if _, _, ok := b.Get(ctx, key); ok {
		t.Fatal("B still answers a revoked key")
	}
	if _, _, ok := b.Get(ctx, keep); !ok {
		t.Fatal("revocation evicted another key")
	}
	if n, _ := rdb.Exists(ctx, rkey(key)).Result(); n != 0 {
		t.Fatal("revoked key still in Redis")
	}
}

// Pub/sub loses messages sent while a subscriber is disconnected, so after a resubscription
// L1 entries are no longer hits: they are re-verified (Redis, then the IdP). They remain
// available through Stale, for when their token cannot be verified at all, and an entry
// re-stored after the resubscription is a hit again.
func TestResubscribeMakesL1Suspect(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	c := newTiered(t, cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, Logger: logs.logger()})
	ctx := t.Context()
	key, neg := c.Key("before-restart"), c.Key("invalid-before-restart")
	id := rfcIdentity(clk.Now())
	c.Set(ctx, key, id, time.Hour)
	c.SetNegative(ctx, neg, time.Hour)
	if _, ok := c.Stale(key); !ok {
		t.Fatal("Stale misses a live entry")
	}
	srv.Restart() // empty again: only L1 could answer now
	eventually(t, "resubscription", func() bool { return strings.Contains(logs.String(), "resubscribed") })
	if _, _, ok := c.Get(ctx, key); ok {
		t.Fatal("an L1 entry from before the resubscription is still a hit")
	}
	got, ok := c.Stale(key)
	if !ok || got.Subject != id.Subject {
		t.Fatalf("Stale after resubscription = %+v, %v; want the earlier identity", got, ok)
	}
	if _, ok := c.Stale(neg); ok {
		t.Error("Stale returned a negative entry")
	}
	if c.Stats().StaleUsed != 2 {
		t.Errorf("StaleUsed = %d, want 2", c.Stats().StaleUsed)
	}
	clk.Advance(2 * time.Hour)
	if _, ok := c.Stale(key); ok {
		t.Error("Stale returned an entry past its lifetime")
	}
	c.Set(ctx, key, rfcIdentity(clk.Now()), time.Hour)
	if _, _, ok := c.Get(ctx, key); !ok || c.Stats().L1Hits == 0 {
		t.Error("an entry re-stored after the resubscription is not a hit")
	}
}

func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	rdb := newClient(t, cl.Addrs()...)
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("NewRedisClient with 3 addresses gave %T", rdb)
	}
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()
	var keys [][32]byte
	for i := range 30 { // enough to land on every master
		k := a.Key("cluster-token-" + string(rune('A'+i)))
		id := rfcIdentity(clk.Now())
		id.Subject = "user-" + string(rune('A'+i))
		a.Set(ctx, k, id, time.Minute)
		keys = append(keys, k)
	}
	for i, k := range keys {
		id, _, ok := b.Get(ctx, k)
		if !ok || id.Subject != "user-"+string(rune('A'+i)) {
			t.Fatalf("key %d via cluster: ok=%v %+v", i, ok, id)
		}
	}
	if st := b.Stats(); st.L2Hits != uint64(len(keys)) || st.L2Errors != 0 {
		t.Fatalf("stats: %+v", st)
	}
	if err := a.Revoke(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to receive the revocation", func() bool { return b.Stats().EvictionsReceived >= 1 })
	if _, _, ok := b.Get(ctx, keys[0]); ok {
		t.Fatal("revoked key still served through the cluster")
	}
}

func TestNewRedisClient(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  cache.RedisConfig
		want string // error substring, or the client type
	}{
		{"no address", cache.RedisConfig{}, "addrs"},
		{"empty address", cache.RedisConfig{Addrs: []string{""}}, "addrs"},
		{"cluster db", cache.RedisConfig{Mode: cache.ModeCluster, Addrs: []string{"a:1", "b:1"}, DB: 2}, "database 0"},
		{"cluster flag db", cache.RedisConfig{Addrs: []string{"a:1"}, Cluster: true, DB: 1}, "database 0"},
		{"sentinel and cluster", cache.RedisConfig{Addrs: []string{"a:1"}, MasterName: "m", Cluster: true}, "sentinel"},
		{"negative db", cache.RedisConfig{Addrs: []string{"a:1"}, DB: -1}, "negative"},
		{"single", cache.RedisConfig{Addrs: []string{"a:1"}, DB: 3}, "*redis.Client"},
		{"sentinel", cache.RedisConfig{Addrs: []string{"a:26379", "b:26379"}, MasterName: "m", DB: 3, TLS: true}, "*redis.Client"},
		{"cluster", cache.RedisConfig{Mode: cache.ModeCluster, Addrs: []string{"a:1", "b:1"}}, "*redis.ClusterClient"},
		{"cluster one seed", cache.RedisConfig{Addrs: []string{"a:1"}, Cluster: true}, "*redis.ClusterClient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.NewRedisClient(tc.cfg)
			if strings.HasPrefix(tc.want, "*") {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := typeName(c); got != tc.want {
					t.Fatalf("client %s, want %s", got, tc.want)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	}
	return "other"
}

// TestBytesPerEntry measures what one typical entry costs Redis (MEMORY USAGE: key, value and
// per-key overhead) and fails when a typical one, the RFC 7662 example or an MCP-style identity
// with UUIDs, costs more than 200 bytes.
func TestBytesPerEntry(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk := newClock()
	ctx := t.Context()
	usage := func(c *cache.Tiered, tok string) int64 {
		t.Helper()
		n, err := rdb.MemoryUsage(ctx, rkey(c.Key(tok))).Result()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := rdb.StrLen(ctx, rkey(c.Key(tok))).Result()
		t.Logf("  value %d bytes, key %d bytes", v, len(rkey(c.Key(tok))))
		return n
	}
	interned := newTiered(t, cache.Config{Redis: rdb, Now: clk.Now, Intern: []string{rfcIssuer, rfcResource}})
	plain := newTiered(t, cache.Config{Redis: rdb, Now: clk.Now})

	interned.Set(ctx, interned.Key("rfc"), rfcIdentity(clk.Now()), time.Minute)
	got := usage(interned, "rfc")
	t.Logf("RFC 7662 §2.2 example, issuer and resource interned: MEMORY USAGE %d bytes", got)

	plain.Set(ctx, plain.Key("rfc-plain"), rfcIdentity(clk.Now()), time.Minute)
	t.Logf("same, nothing interned: MEMORY USAGE %d bytes", usage(plain, "rfc-plain"))

	mcp := identity.Identity{
		Issuer: "https://auth.example.com", Subject: "f47ac10b-58cc-4372-a567-0e02b2c3d479",
		ClientID: "3c6e0b8a-9c0d-4e2b-8f1a-2b7c5d9e4f60", Audience: []string{"https://mcp.example.com/mcp"},
		Scopes: []string{"mcp:tools", "mcp:resources"}, Expiry: clk.Now().Add(time.Hour), Source: identity.SourceJWT,
	}
	// The service interns the configured issuers, audiences and scopes (internal/service/build.go).
	mcpCache := newTiered(t, cache.Config{Redis: rdb, Now: clk.Now, Intern: []string{mcp.Issuer, mcp.Audience[0], "mcp:tools", "mcp:resources"}})
	mcpCache.Set(ctx, mcpCache.Key("mcp"), mcp, time.Minute)
	mcpGot := usage(mcpCache, "mcp")
	t.Logf("MCP-style JWT (UUID sub and client_id), interned: MEMORY USAGE %d bytes", mcpGot)

	interned.SetNegative(ctx, interned.Key("neg"), time.Minute)
	t.Logf("negative entry: MEMORY USAGE %d bytes", usage(interned, "neg"))

	if got > 200 || mcpGot > 200 {
		t.Fatalf("typical entries cost %d (RFC 7662 example) and %d (MCP-style) bytes in Redis, budget 200", got, mcpGot)
	}
}

// A verification that started before a revocation, here or on a replica the announcement
// reached, does not store its result after it; one that started afterwards does.
func TestRevokeDropsInFlightResults(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()
	key := a.Key("revoked-while-verifying")
	markA, markB := a.Mark(), b.Mark() // both verifications start
	if err := a.Revoke(ctx, key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to receive the revocation", func() bool { return b.Stats().EvictionsReceived >= 1 })
	a.SetSince(ctx, key, rfcIdentity(clk.Now()), time.Hour, markA)
	b.SetSince(ctx, key, rfcIdentity(clk.Now()), time.Hour, markB)
	for name, c := range map[string]*cache.Tiered{"A": a, "B": b} {
		if _, _, ok := c.Get(ctx, key); ok {
			t.Errorf("%s stored a result verified before the revocation", name)
		}
		if st := c.Stats(); st.RevokedDrops != 1 {
			t.Errorf("%s: RevokedDrops = %d, want 1", name, st.RevokedDrops)
		}
	}
	if n, _ := rdb.Exists(ctx, rkey(key)).Result(); n != 0 {
		t.Fatal("a result verified before the revocation reached Redis")
	}

	clk.Advance(time.Millisecond)
	mark := b.Mark() // a verification that starts after the revocation
	b.SetSince(ctx, key, rfcIdentity(clk.Now()), time.Hour, mark)
	if _, _, tier, ok := b.GetTier(ctx, key); !ok || tier != "l1" {
		t.Fatal("a verification made after the revocation was not stored")
	}
	// A replica that remembers the revocation cannot tell this entry in Redis from one saved
	// before the revocation and written back, so it verifies for itself; one that never heard
	// of the revocation takes it.
	if _, _, ok := a.Get(ctx, key); ok {
		t.Error("A took a positive entry for a token it knows was revoked from Redis")
	}
	if st := a.Stats(); st.RevokedRefused != 1 {
		t.Errorf("A: RevokedRefused = %d, want 1", st.RevokedRefused)
	}
	c := newTiered(t, cache.Config{L1Size: 10, Redis: rdb, Now: clk.Now, Intern: []string{rfcIssuer, rfcResource}})
	if _, _, ok := c.Get(ctx, key); !ok {
		t.Error("a new replica did not take the entry verified after the revocation")
	}
}

// A replica that stored its result before the announcement arrived (a plain Set stands for
// that race here) is corrected by the repeated delete and announcement.
func TestRevokeRepeats(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk := newClock()
	cfg := cache.Config{L1Size: 100, Redis: rdb, Now: clk.Now, RevokeRepeat: 100 * time.Millisecond}
	a, b := newTiered(t, cfg), newTiered(t, cfg)
	ctx := t.Context()
	key := a.Key("stored-before-the-message")
	if err := a.Revoke(ctx, key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to receive the revocation", func() bool { return b.Stats().EvictionsReceived >= 1 })
	b.Set(ctx, key, rfcIdentity(clk.Now()), time.Hour)
	if _, _, ok := b.Get(ctx, key); !ok {
		t.Fatal("setup: B did not store")
	}
	eventually(t, "the repeated revocation", func() bool { return b.Stats().EvictionsReceived >= 2 })
	if _, _, ok := b.Get(ctx, key); ok {
		t.Fatal("B still answers after the repeated revocation")
	}
	if n, _ := rdb.Exists(ctx, rkey(key)).Result(); n != 0 {
		t.Fatal("still in Redis after the repeated revocation")
	}
}
