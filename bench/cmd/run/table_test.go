package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Error("median sorted its argument in place")
	}
}

// Ratios pair round i with round i: a slow round slows every scenario in it, and the pairing
// cancels that. The median of those ratios is not the ratio of the medians.
func TestPerPairsRounds(t *testing.T) {
	rs := results{
		"noop": {{CPU: 10}, {CPU: 100}, {CPU: 50}},
		"x":    {{CPU: 20}, {CPU: 110}, {CPU: 40}},
	}
	if got := rs.per("x", "noop", colCPU); math.Abs(got-1.1) > 1e-9 {
		t.Fatalf("per = %v, want the median of 2.0, 1.1, 0.8", got)
	}
	if got := rs.med("x", colCPU) / rs.med("noop", colCPU); got != 0.8 {
		t.Fatalf("ratio of medians = %v", got)
	}
	if got := rs.perDiff("x", "noop", colCPU); got != 10 {
		t.Fatalf("perDiff = %v, want the median of 10, 10, -10", got)
	}
}

func TestNewRow(t *testing.T) {
	rep := ghzReport{Count: 2000, RPS: 1999.6, Status: map[string]int64{"OK": 1990}}
	rep.Latency = append(rep.Latency, struct {
		Percentage int   `json:"percentage"`
		Latency    int64 `json:"latency"`
	}{50, 2500000})
	d := deltas{serverTicks: 5, redisTicks: 1, redisCalls: 4000, idp: 20, conns: 2, allow: 1500, decided: 2000, gen: 180 * time.Millisecond}
	r := newRow(rep, d, 100)
	want := row{RPS: 1999.6, P50: 2.5, P99: 0, CPU: 25, OK: 1990, N: 2000, Allow: 0.75, RedisCmd: 2, RedisUS: 5, IdP: 0.01, Conns: 0.001, Gen: 90}
	if r != want {
		t.Fatalf("row\n got %+v\nwant %+v", r, want)
	}
	// A server that reports no decisions (a no-op) has allow -1, shown as "-".
	if r := newRow(rep, deltas{}, 100); r.Allow != -1 {
		t.Fatalf("allow without decisions = %v", r.Allow)
	}
	// An empty report divides by one, not zero.
	if r := newRow(ghzReport{Status: map[string]int64{}}, deltas{serverTicks: 1}, 100); math.IsInf(r.CPU, 0) || math.IsNaN(r.CPU) {
		t.Fatalf("cpu of an empty run = %v", r.CPU)
	}
}

// The main table, line for line as run.sh's python printed it for the same rows (the expected
// text was produced by run.sh's own format strings).
func TestMainTableMatchesRunSh(t *testing.T) {
	mk := func(rps, p50, p99, cpu, allow, redisUS, gen float64) row {
		return row{RPS: rps, P50: p50, P99: p99, CPU: cpu, OK: 1000, N: 1000, Allow: allow, RedisUS: redisUS, Gen: gen}
	}
	rs := results{
		"noop":       {mk(10000, 2.5, 10, 25, -1, 0.5, 80), mk(12000, 2.4, 9, 24, -1, 0.5, 78), mk(11000, 2.6, 11, 26, -1, 0.5, 79)},
		"noop-allow": {mk(9000, 3.0, 11, 25, -1, 0.4, 90), mk(11000, 3.1, 10, 26, -1, 0.4, 88), mk(10000, 2.9, 12, 24, -1, 0.4, 89)},
		"jwt-cached": {mk(9500, 3.4, 11.5, 28, 1, 0.5, 91), mk(10500, 3.3, 10.5, 27, 1, 0.5, 90), mk(10000, 3.5, 12.5, 29.5, 1, 0.5, 92)},
	}
	var b strings.Builder
	mainTable(&b, rs, []string{"noop", "noop-allow", "jwt-cached"}, 50, 20*time.Millisecond)
	want := `
scenario                 RPS  p50_ms  p99_ms  vs_noop cpu_us/chk cpu/noop  gen_us allow% | redis_cmd  redis_us idp_call  new_conn
noop                   11000    2.50   10.00    1.00x       25.0    1.00x    79.0     - |      0.00       0.5    0.000     0.000
noop-allow             10000    3.00   11.00    0.91x       25.0    1.00x    89.0     - |      0.00       0.4    0.000     0.000
jwt-cached             10000    3.40   11.50    0.91x       28.0    1.12x    91.0 100.0 |      0.00       0.5    0.000     0.000
`
	if got := b.String(); !strings.HasPrefix(got, want) {
		t.Fatalf("main table:\n%s\nwant it to start with:\n%s", got, want)
	}
	if !strings.Contains(b.String(), "jwt-cached      noop-allow   1.00x  1.05x      1.12x      +3.0   91.0 vs  89.0\n") {
		t.Fatalf("no decision-alone line for jwt-cached:\n%s", b.String())
	}
	if strings.Contains(b.String(), "WARN") {
		t.Fatalf("a WARN with every call OK:\n%s", b.String())
	}

	// More than 1% of a round's calls not OK is a warning; 1% is not.
	rs["jwt-cached"][1].OK = 989
	rs["jwt-cached"][2].OK = 990
	b.Reset()
	mainTable(&b, rs, []string{"noop", "noop-allow", "jwt-cached"}, 50, 20*time.Millisecond)
	if got := strings.Count(b.String(), "WARN"); got != 1 || !strings.Contains(b.String(), "WARN jwt-cached: 11 of 1000 calls not OK") {
		t.Fatalf("%d WARN lines:\n%s", got, b.String())
	}
}

func TestMainTableSlowASBound(t *testing.T) {
	rs := results{"noop": {{RPS: 10000, CPU: 20}}, "opaque-miss-slowAS": {{RPS: 2000, CPU: 100}}}
	var b strings.Builder
	mainTable(&b, rs, []string{"noop", "opaque-miss-slowAS"}, 50, 20*time.Millisecond)
	if !strings.Contains(b.String(), "opaque-miss-slowAS: bound = concurrency/latency = 50/0.02s = 2500 RPS; measured 2000 (80% of it)") {
		t.Fatalf("no bound line:\n%s", b.String())
	}
}

func TestRateTable(t *testing.T) {
	rs := results{
		"rate-noop":       {{RPS: 6000, P99: 10, CPU: 60, Allow: -1}},
		"rate-noop-allow": {{RPS: 6000, P99: 11, CPU: 50, Allow: -1}},
		"rate-jwt-cached": {{RPS: 5000, P99: 12, CPU: 66, Allow: 1}},
	}
	var b strings.Builder
	rateTable(&b, rs, []string{"rate-noop", "rate-noop-allow", "rate-jwt-cached"}, 6000)
	want := "jwt-cached             5000    0.00   12.00    1.20x       66.0    1.10x      1.32x  100.0\n" +
		"WARN jwt-cached: did not sustain 6000 Checks/s: lower -q\n"
	if !strings.Contains(b.String(), want) || strings.Count(b.String(), "WARN") != 1 {
		t.Fatalf("rate table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRoutesTable(t *testing.T) {
	rs := results{"routes-1": {{RPS: 5000, CPU: 40, Allow: 1}}, "routes-100": {{RPS: 5000, CPU: 42, Allow: 1}}, "routes-10000": {{RPS: 4000, CPU: 48, Allow: 1}}}
	var b strings.Builder
	routesTable(&b, rs, map[int]time.Duration{1: 500 * time.Millisecond, 100: 600 * time.Millisecond, 10000: 2 * time.Second}, 1500*time.Millisecond)
	for _, want := range []string{"    10000    4000    0.00       48.0  1.20x  100.0     2000\n", "'configuration reloaded': 1500 ms)"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("routes table:\n%s\nwant %q", b.String(), want)
		}
	}
}
