package service

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// TestMemoryFlatUnderHostileTraffic (issue 15): every cache and memo is bounded by
// configuration, not by traffic. After a warm-up, 100,000 Checks, each different from every
// other (batches naming distinct sets of per-tool scopes, so distinct step-up challenges;
// distinct unknown tools; distinct garbage tokens), leave the live heap within 10% of where
// it stood. Before the fix the adapter kept every distinct 403's converted response (about
// 3.4 KB each), forever.
//
// The requests go through the service's real ext_authz server (adapter, Check budget, core,
// L1 cache, metrics) without the gRPC transport, whose buffers would only add noise.
//
// Under the race detector (the README's test command) it sends 5,000 + 20,000 Checks; the
// benchmark below, which the README's last command runs once without it, sends the full
// 20,000 + 100,000.
func TestMemoryFlatUnderHostileTraffic(t *testing.T) {
	if raceEnabled {
		memoryFlat(t, 5000, 20000)
		return
	}
	memoryFlat(t, 20000, 100000)
}

func BenchmarkMemoryFlatUnderHostileTraffic(b *testing.B) {
	for b.Loop() {
		memoryFlat(b, 20000, 100000)
	}
}

func memoryFlat(t testing.TB, warm, n int) {
	a, srv := asServerTB(t)
	const tools = 12
	s := replicaWith(t, srv.URL, nil, func(c *config.Config) {
		c.Issuers[0].Introspection = nil // garbage is refused locally, without an IdP call each
		c.Cache.L1Size = 2000
		m := &config.MCP{Tools: map[string][]string{}}
		for i := 0; i < tools; i++ {
			m.Tools[fmt.Sprintf("tool%d", i)] = []string{fmt.Sprintf("scope%d", i)}
		}
		c.Resources[0].MCP = m
	}, Options{})
	tok, err := a.Mint(map[string]any{"iss": srv.URL, "sub": "mallory", "aud": resource, "client_id": "c",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int) *authv3.CheckResponse {
		var h map[string]string
		var body string
		switch i % 3 {
		case 0: // a batch calling a distinct subset of the per-tool-scoped tools: 403, distinct scope=
			var calls []string
			for b := 0; b < tools; b++ {
				if (i/3)%(1<<tools)>>b&1 == 1 {
					calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"tool%d"}}`, b, b))
				}
			}
			if len(calls) == 0 {
				calls = []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tool0"}}`}
			}
			body = "[" + strings.Join(calls, ",") + "]"
			h = map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json"}
		case 1: // a distinct unknown tool: allowed with the resource's scopes
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"unknown-%d-%s"}}`, i, strings.Repeat("x", i%50))
			h = map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json"}
		default: // a distinct garbage token: 401, negatively cached in the bounded L1
			h = map[string]string{"authorization": fmt.Sprintf("Bearer garbage-%d-%x", i, i*7919)}
		}
		req := checkReq("/mcp", h)
		req.Attributes.Request.Http.RawBody = []byte(body)
		resp, err := s.ext.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	run := func(from, to int) {
		var wg sync.WaitGroup
		const workers = 4
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := from + w; i < to; i += workers {
					check(i)
				}
			}(w)
		}
		wg.Wait()
	}
	// The three kinds really are what they claim.
	if r := check(3 * 5); r.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Fatalf("batch: %v", r)
	}
	if r := check(1); !allowed(r) {
		t.Fatalf("unknown tool: %v", r)
	}
	if r := check(2); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("garbage: %v", r)
	}
	live := func() uint64 {
		runtime.GC()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	run(0, warm) // steady state: L1 full, memos full
	steady := live()
	run(warm, warm+n)
	after := live()
	t.Logf("live heap: steady %d KiB, after %d more distinct Checks %d KiB (%+.1f%%)",
		steady>>10, n, after>>10, 100*(float64(after)-float64(steady))/float64(steady))
	if after > steady+steady/10 {
		t.Errorf("live heap grew from %d to %d KiB over %d distinct Checks: something keeps what traffic sends", steady>>10, after>>10, n)
	}
}
