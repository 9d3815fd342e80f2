package cache

import (
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// l1Samples are identities the compact record holds and ones it does not (l1Full): each must
// come back from L1 exactly as it was stored, times included (== on time.Time: same instant,
// same location, same monotonic reading).
func l1Samples() map[string]entry {
	s := sampleEntries()
	exp := time.Unix(1_795_000_000, 0)
	s["fractional exp"] = entry{id: identity.Identity{Issuer: "https://server.example.com/", Subject: "s",
		Expiry: time.Unix(1_795_000_000, 250_000_000), Source: identity.SourceJWT}}
	s["exp past 2106"] = entry{id: identity.Identity{Subject: "s", Expiry: time.Unix(1<<33, 0)}}
	s["utc exp"] = entry{id: identity.Identity{Subject: "s", Expiry: exp.UTC()}}
	s["monotonic exp"] = entry{id: identity.Identity{Subject: "s", Expiry: time.Now().Add(time.Hour)}}
	s["empty lists"] = entry{id: identity.Identity{Subject: "s", Audience: []string{}, Scopes: []string{}}}
	s["empty claims"] = entry{id: identity.Identity{Subject: "s", Claims: map[string]string{}}}
	s["long subject"] = entry{id: identity.Identity{Subject: strings.Repeat("x", 256), ClientID: strings.Repeat("c", 255)}}
	s["long list"] = entry{id: identity.Identity{Subject: "s", Scopes: strings.Fields(strings.Repeat("a b c d e f g h i ", 2))}}
	s["two bound"] = entry{id: identity.Identity{Subject: "s", Source: identity.SourceIntrospection,
		Confirmation: identity.Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", X5TS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}}
	return s
}

func TestL1RecordRoundTrip(t *testing.T) {
	for _, configured := range [][]string{nil, {"https://server.example.com/", "https://protected.example.net/resource", "read", "write"}} {
		in := newIntern(configured)
		compact := 0
		for name, e := range l1Samples() {
			p := in.record(&e, 7)
			got, epoch := in.read(p)
			if epoch != 7 || !reflect.DeepEqual(got, e) {
				t.Fatalf("%s: read back (epoch %d)\n got %#v\nwant %#v", name, epoch, got, e)
			}
			// Not only equal: the very same times, as verifiers make them.
			if got.id.Expiry != e.id.Expiry || got.id.NotBefore != e.id.NotBefore {
				t.Fatalf("%s: times changed: %#v", name, got.id)
			}
			if *(*byte)(p)&l1FullBit == 0 {
				compact++
			}
		}
		// The typical ones are compact; otherwise this test proves nothing about records.
		if compact < 8 {
			t.Fatalf("only %d samples stored compactly", compact)
		}
	}
}

// The cache keeps its own copy: changing the slices and map after Set changes nothing, and
// appending to what Get returned does not write into what the next Get returns.
func TestL1OwnCopy(t *testing.T) {
	now := atomic64{ns: time.Unix(1_700_000_000, 0).UnixNano()}
	c, err := New(t.Context(), Config{MaxTTL: 5 * time.Minute, RevocationLimit: 10_000, Secret: testMACKey, L1Size: 100, Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, e := range l1Samples() {
		if e.neg || e.id.Expiry.Before(now.Now()) && !e.id.Expiry.IsZero() {
			continue
		}
		want := e.id
		id := e.id
		id.Audience, id.Scopes = append([]string(nil), id.Audience...), append([]string(nil), id.Scopes...)
		if id.Claims != nil {
			id.Claims = map[string]string{}
			for k, v := range want.Claims {
				id.Claims[k] = v
			}
		}
		key := c.Key(name)
		c.Set(t.Context(), key, id, time.Hour)
		for i := range id.Audience {
			id.Audience[i] = "changed"
		}
		for i := range id.Scopes {
			id.Scopes[i] = "changed"
		}
		for k := range id.Claims {
			id.Claims[k] = "changed"
		}
		got, _, ok := c.Get(t.Context(), key)
		if !ok {
			t.Fatalf("%s: miss", name)
		}
		_ = append(got.Audience, "appended")
		_ = append(got.Scopes, "appended")
		got, _, _ = c.Get(t.Context(), key)
		if !equalEntry(entry{id: got}, entry{id: want}) {
			t.Fatalf("%s: the cached identity changed with the caller's\n got %#v\nwant %#v", name, got, want)
		}
	}
}

// Interning is bounded by constants, never by traffic: a stream of identities whose issuer,
// audience, scopes and claim names are all distinct fills the tables once, and then memory
// stays flat however long it goes on (L1 itself is bounded by L1Size).
func TestL1InternBounded(t *testing.T) {
	c, err := New(t.Context(), Config{MaxTTL: 5 * time.Minute, RevocationLimit: 10_000, Secret: testMACKey, L1Size: 100, Intern: []string{"https://server.example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	exp := time.Unix(time.Now().Add(time.Hour).Unix(), 0)
	n := 0
	flood := func(count int) {
		for range count {
			s := strconv.Itoa(n)
			n++
			c.Set(ctx, c.Key("token-"+s), identity.Identity{
				Issuer: "https://evil.example/" + s, Subject: "sub-" + s,
				Audience: []string{"aud-" + s, "aud2-" + s}, Scopes: []string{"scope-" + s, "other-" + s},
				Claims: map[string]string{"claim-" + s: `"v"`}, Expiry: exp,
			}, time.Hour)
		}
	}
	heap := func() uint64 {
		c.l1.CleanUp()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	flood(2 * maxLists) // the tables are full after this
	strs, lists, sets := c.in.sizes()
	if strs > 1+1+maxLearned || lists > maxLists || sets > maxClaimSets {
		t.Fatalf("tables hold %d strings, %d lists, %d claim sets; bounds %d, %d, %d", strs, lists, sets, 2+maxLearned, maxLists, maxClaimSets)
	}
	before := heap()
	flood(50_000)
	after := heap()
	if s2, l2, c2 := c.in.sizes(); s2 != strs || l2 != lists || c2 != sets {
		t.Fatalf("tables grew from %d/%d/%d to %d/%d/%d entries", strs, lists, sets, s2, l2, c2)
	}
	// 50,000 more distinct values of several strings each: had any of them been kept, the
	// heap would have grown by megabytes. L1 (100 entries) churns, so allow some slack.
	if after > before && after-before > 256<<10 {
		t.Fatalf("heap grew by %d bytes over 50,000 identities with distinct strings", after-before)
	}
	// The configured issuer is still interned, and an identity using it is still compact.
	key := c.Key("good")
	c.Set(ctx, key, identity.Identity{Issuer: "https://server.example.com/", Subject: "s", Expiry: exp}, time.Hour)
	v, ok := c.l1.GetIfPresent(l1KeyOf(key))
	if !ok || *(*byte)(v.p)&l1FullBit != 0 {
		t.Fatal("an identity with the configured issuer is not compact once the learned table is full")
	}
}

// Every entry keeps its own deadline: a compact or full record is refused from its deadline on,
// on the cache's clock.
func TestL1Deadline(t *testing.T) {
	var now atomic64
	now.ns = time.Unix(1_700_000_000, 0).UnixNano()
	c, err := New(t.Context(), Config{MaxTTL: 5 * time.Minute, RevocationLimit: 10_000, Secret: testMACKey, L1Size: 10, Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, e := range l1Samples() {
		if e.neg || (!e.id.Expiry.IsZero() && e.id.Expiry.Before(time.Unix(0, now.ns).Add(time.Hour))) {
			continue
		}
		now.ns = time.Unix(1_700_000_000, 0).UnixNano()
		key := c.Key(name)
		c.Set(t.Context(), key, e.id, time.Minute)
		now.ns += int64(time.Minute) - 1
		if _, _, ok := c.Get(t.Context(), key); !ok {
			t.Fatalf("%s: miss before its deadline", name)
		}
		now.ns++
		if _, _, ok := c.Get(t.Context(), key); ok {
			t.Fatalf("%s: a hit at its deadline", name)
		}
	}
}

type atomic64 struct{ ns int64 }

func (a *atomic64) Now() time.Time { return time.Unix(0, a.ns) }

func BenchmarkL1Read(b *testing.B) {
	in := newIntern([]string{"https://server.example.com/", "https://protected.example.net/resource"})
	e := sampleEntries()["rfc7662"]
	p := in.record(&e, 1)
	b.ReportAllocs()
	for b.Loop() {
		if got, _ := in.read(p); got.id.Subject == "" {
			b.Fatal("empty")
		}
	}
}
