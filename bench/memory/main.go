// Command memory measures what the in-process (L1) verified-token cache costs in memory: it
// builds the real cache (package cache, L1 only, no Redis) sized for N entries, fills it with N
// typical identities, reads every entry back to prove none was evicted, and prints the Go heap
// and the process RSS before and after, per entry.
//
// A typical identity is what the introspection verifier makes of an RFC 7662 answer: the
// issuer, a random UUID subject, a client id "client-0" … "client-999", one audience, two
// scopes and exp, a whole number of seconds an hour ahead as time.Unix gives it (NumericDate);
// every string its own allocation, as decoding an answer makes them. The cache's Intern list
// names the issuer, the resource and the two scopes, as the service's does with Redis (without
// Redis it names none, and L1 learns the same strings from the first identities: the same
// figures). With -claims, each identity also keeps the same "groups" claim (a JWT whose claim
// an identity header or a policy rule names), which L1 shares between identities as it shares
// lists; claims that differ per user would each cost a map of their own.
//
//	go run ./bench/memory              # 100k (the default l1_size) and 1M entries
//	go run ./bench/memory -n 50000
//	go run ./bench/memory -claims
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/cache"
)

func main() {
	ns := flag.String("n", "100000,1000000", "comma-separated entry counts, each measured in a fresh cache")
	flag.BoolVar(&withClaims, "claims", false, "identities also keep a groups claim")
	flag.Parse()
	fmt.Printf("%-9s %12s %12s %12s %12s %10s %10s\n", "entries", "heap_MB", "rss_MB", "heap_B/entry", "rss_B/entry", "retained", "fill_s")
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "memory: bad -n:", s)
			os.Exit(2)
		}
		measure(n)
	}
}

var withClaims bool

func measure(n int) {
	ctx := context.Background()
	secret := make([]byte, 32)
	rand.Read(secret)
	const issuer = "https://auth.example.com" // shared, as the verifier's configured issuer is
	h0, r0 := settle()
	c, err := cache.New(ctx, cache.Config{Secret: secret, L1Size: n, MaxTTL: 5 * time.Minute, RevocationLimit: 10_000, Intern: []string{issuer, "https://mcp.example.com/mcp", "mcp:tools", "mcp:read"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
	start := time.Now()
	// As the verifiers give it: NumericDate seconds (time.Unix), no monotonic reading.
	exp := time.Unix(time.Now().Add(time.Hour).Unix(), 0)
	keys := make([][32]byte, n) // kept outside the measured delta below
	for i := range n {
		keys[i] = c.Key(tokenOf(i))
	}
	for i := range n {
		id := identity.Identity{
			Issuer:   strings.Clone(issuer),
			Subject:  uuid(),
			ClientID: "client-" + strconv.Itoa(i%1000),
			Audience: []string{strings.Clone("https://mcp.example.com/mcp")},
			Scopes:   []string{strings.Clone("mcp:tools"), strings.Clone("mcp:read")},
			Expiry:   exp,
			Source:   identity.SourceIntrospection,
		}
		if withClaims {
			id.Source = identity.SourceJWT
			id.Claims = map[string]string{strings.Clone("groups"): strings.Clone(`["staff","finance"]`)}
		}
		c.Set(ctx, keys[i], id, time.Hour)
	}
	fill := time.Since(start)
	time.Sleep(200 * time.Millisecond) // otter applies writes from its buffers asynchronously
	retained := 0
	for i := range n {
		if _, _, ok := c.Get(ctx, keys[i]); ok {
			retained++
		}
	}
	h1, r1 := settle()
	// The keys slice (32 B/entry) is the benchmark's, not the cache's: subtract it.
	dh := float64(int64(h1)-int64(h0)) - float64(32*n)
	dr := float64(int64(r1)-int64(r0)) - float64(32*n)
	fmt.Printf("%-9d %12.1f %12.1f %12.0f %12.0f %10d %10.2f\n", n, dh/1e6, dr/1e6, dh/float64(n), dr/float64(n), retained, fill.Seconds())
	runtime.KeepAlive(keys)
	c.Close()
	runtime.KeepAlive(c)
}

// settle collects garbage and returns the live heap and the RSS, in bytes.
func settle() (heap, rss uint64) {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, vmRSS()
}

func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func tokenOf(i int) string {
	return "opaque-token-" + strconv.Itoa(i) + "-abcdefghijklmnopqrstuvwxyz012345"
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
