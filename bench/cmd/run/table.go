package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// row is one measured ghz run of one scenario: the columns of run.sh's per-round rows.
type row struct {
	RPS      float64
	P50, P99 float64 // ms
	CPU      float64 // server CPU µs per Check
	OK, N    int64   // calls answered OK, calls made
	Allow    float64 // share of the server's decisions that allowed; -1 when it reports none
	RedisCmd float64 // Redis commands per Check
	RedisUS  float64 // redis-server CPU µs per Check
	IdP      float64 // introspection calls per Check
	Conns    float64 // new TCP connections to the authorization servers per Check
	Gen      float64 // ghz's own CPU µs per call
}

// deltas are the counters read before and after a run, as differences.
type deltas struct {
	serverTicks, redisTicks int64
	redisCalls              int64
	idp, conns              int64
	allow, decided          float64
	gen                     time.Duration
}

// newRow computes a run's row from ghz's report and the counters' differences, hz being the
// clock ticks per second of /proc.
func newRow(r ghzReport, d deltas, hz float64) row {
	n := float64(max(r.Count, 1))
	allow := -1.0
	if d.decided != 0 {
		allow = d.allow / d.decided
	}
	return row{
		RPS: r.RPS, P50: r.percentileMS(50), P99: r.percentileMS(99),
		CPU: float64(d.serverTicks) / hz * 1e6 / n,
		OK:  r.Status["OK"], N: r.Count,
		Allow:    allow,
		RedisCmd: float64(d.redisCalls) / n,
		RedisUS:  float64(d.redisTicks) / hz * 1e6 / n,
		IdP:      float64(d.idp) / n,
		Conns:    float64(d.conns) / n,
		Gen:      d.gen.Seconds() * 1e6 / n,
	}
}

// results holds every scenario's rows, one per round, in round order.
type results map[string][]row

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// med is the median of one column of a scenario's rounds.
func (rs results) med(name string, col func(row) float64) float64 {
	var v []float64
	for _, r := range rs[name] {
		v = append(v, col(r))
	}
	return median(v)
}

// per is the median of per-round ratios of a column, name against base: round i of one
// against round i of the other, so that what changed between rounds cancels out.
func (rs results) per(name, base string, col func(row) float64) float64 {
	var v []float64
	for i, r := range rs[name] {
		if i < len(rs[base]) {
			v = append(v, col(r)/col(rs[base][i]))
		}
	}
	return median(v)
}

// perDiff is the median of per-round differences of a column.
func (rs results) perDiff(name, base string, col func(row) float64) float64 {
	var v []float64
	for i, r := range rs[name] {
		if i < len(rs[base]) {
			v = append(v, col(r)-col(rs[base][i]))
		}
	}
	return median(v)
}

var (
	colRPS      = func(r row) float64 { return r.RPS }
	colP50      = func(r row) float64 { return r.P50 }
	colP99      = func(r row) float64 { return r.P99 }
	colCPU      = func(r row) float64 { return r.CPU }
	colAllow    = func(r row) float64 { return r.Allow }
	colRedisCmd = func(r row) float64 { return r.RedisCmd }
	colRedisUS  = func(r row) float64 { return r.RedisUS }
	colIdP      = func(r row) float64 { return r.IdP }
	colConns    = func(r row) float64 { return r.Conns }
	colGen      = func(r row) float64 { return r.Gen }
)

// mainTable is the main section's table and what follows it, as run.sh printed them.
func mainTable(w io.Writer, rs results, names []string, conc int, lat time.Duration) {
	fmt.Fprintf(w, "\n%-19s %8s %7s %7s %8s %10s %8s %7s %6s | %9s %9s %8s %9s\n", "scenario", "RPS", "p50_ms", "p99_ms",
		"vs_noop", "cpu_us/chk", "cpu/noop", "gen_us", "allow%", "redis_cmd", "redis_us", "idp_call", "new_conn")
	for _, n := range names {
		a := "    -"
		if allow := rs.med(n, colAllow); allow >= 0 {
			a = fmt.Sprintf("%5.1f", allow*100)
		}
		fmt.Fprintf(w, "%-19s %8.0f %7.2f %7.2f %7.2fx %10.1f %7.2fx %7.1f %s | %9.2f %9.1f %8.3f %9.3f\n", n,
			rs.med(n, colRPS), rs.med(n, colP50), rs.med(n, colP99), rs.per(n, "noop", colRPS), rs.med(n, colCPU),
			rs.per(n, "noop", colCPU), rs.med(n, colGen), a, rs.med(n, colRedisCmd), rs.med(n, colRedisUS),
			rs.med(n, colIdP), rs.med(n, colConns))
	}
	fmt.Fprintln(w, "(gen_us = ghz's own CPU µs per call; per Check: redis_cmd = Redis commands, redis_us = redis-server CPU µs,")
	fmt.Fprintln(w, " idp_call = introspection calls, new_conn = new TCP connections to the AS)")

	var pairs [][2]string
	for _, n := range []string{"jwt-cached", "jwt-cached-tool", "jwt-cached-rules", "dpop-cached", "opaque-L1"} {
		if slices.Contains(names, n) {
			pairs = append(pairs, [2]string{n, "noop-allow"})
		}
	}
	for _, n := range []string{"no-token-401", "invalid-token"} {
		if slices.Contains(names, n) {
			pairs = append(pairs, [2]string{n, "noop-401"})
		}
	}
	if len(pairs) > 0 {
		fmt.Fprintln(w, "\nThe decision alone: each scenario against the no-op replaying the same response (medians of per-round ratios)")
		fmt.Fprintf(w, "%-15s %-11s %6s %6s %10s %9s %14s\n", "scenario", "replay", "RPS", "p99", "cpu/Check", "cpu µs +", "gen_us")
		for _, p := range pairs {
			n, m := p[0], p[1]
			fmt.Fprintf(w, "%-15s %-11s %5.2fx %5.2fx %9.2fx %+9.1f %6.1f vs %5.1f\n", n, m, rs.per(n, m, colRPS),
				rs.per(n, m, colP99), rs.per(n, m, colCPU), rs.perDiff(n, m, colCPU), rs.med(n, colGen), rs.med(m, colGen))
		}
		fmt.Fprintf(w, "(the empty no-op's gen_us is %.1f: ghz decodes every response into a dynamic message, so a bigger answer\n", rs.med("noop", colGen))
		fmt.Fprintln(w, " costs the load generator more per call; pinned, ghz is saturated and RPS follows its cost, not the server's)")
	}

	if slices.Contains(names, "opa-jwt") && slices.Contains(names, "jwt-cached") && slices.Contains(names, "jwt-uncached") {
		c := rs.per("jwt-cached", "opa-jwt", colCPU)
		fmt.Fprintf(w, "\nmcp-authz jwt-cached vs opa-jwt (medians of per-round ratios): RPS %.2fx, CPU/Check %.3fx (1/%.1f);"+
			" jwt-uncached vs opa-jwt: RPS %.2fx, CPU/Check %.3fx\n", rs.per("jwt-cached", "opa-jwt", colRPS), c, 1/c,
			rs.per("jwt-uncached", "opa-jwt", colRPS), rs.per("jwt-uncached", "opa-jwt", colCPU))
	}
	if slices.Contains(names, "opaque-miss-slowAS") && lat > 0 {
		bound := float64(conc) / lat.Seconds()
		got := rs.med("opaque-miss-slowAS", colRPS)
		fmt.Fprintf(w, "opaque-miss-slowAS: bound = concurrency/latency = %d/%gs = %.0f RPS; measured %.0f (%.0f%% of it)\n",
			conc, lat.Seconds(), bound, got, got/bound*100)
	}
	// Calls still in flight when a -z run ends are cut off by ghz; more than 1% non-OK is a problem.
	for _, n := range names {
		for _, r := range rs[n] {
			if float64(r.N-r.OK) > float64(r.N)/100 {
				fmt.Fprintf(w, "WARN %s: %d of %d calls not OK\n", n, r.N-r.OK, r.N)
			}
		}
	}
}

// replayOf is the rate section's replaying no-op for each mcp-authz scenario.
var replayOf = map[string]string{"rate-jwt-cached": "rate-noop-allow", "rate-opaque-L1": "rate-noop-allow", "rate-no-token-401": "rate-noop-401"}

func rateTable(w io.Writer, rs results, names []string, rate int) {
	fmt.Fprintf(w, "%-19s %7s %7s %7s %8s %10s %8s %10s %6s\n", "scenario", "RPS", "p50_ms", "p99_ms", "p99/noop", "cpu_us/chk", "cpu/noop", "cpu/replay", "allow%")
	for _, n := range names {
		a := "     -"
		if allow := rs.med(n, colAllow); allow >= 0 {
			a = fmt.Sprintf("%6.1f", allow*100)
		}
		rp := "         -"
		if m, ok := replayOf[n]; ok {
			rp = fmt.Sprintf("%9.2fx", rs.per(n, m, colCPU))
		}
		fmt.Fprintf(w, "%-19s %7.0f %7.2f %7.2f %7.2fx %10.1f %7.2fx %s %s\n", strings.TrimPrefix(n, "rate-"), rs.med(n, colRPS),
			rs.med(n, colP50), rs.med(n, colP99), rs.per(n, "rate-noop", colP99), rs.med(n, colCPU), rs.per(n, "rate-noop", colCPU), rp, a)
		if rs.med(n, colRPS) < 0.97*float64(rate) {
			fmt.Fprintf(w, "WARN %s: did not sustain %d Checks/s: lower -q\n", strings.TrimPrefix(n, "rate-"), rate)
		}
	}
}

func coresTable(w io.Writer, rs results) {
	fmt.Fprintf(w, "%-14s %10s %11s %8s %9s %9s %8s %7s %7s\n", "server", "RPS 1 CPU", "RPS 2 CPUs", "scaling", "cpu_us 1", "cpu_us 2", "implied", "p99 1", "p99 2")
	for _, s := range []string{"noop", "jwt-cached", "jwt-uncached"} {
		a, b := "cores0-"+s, "cores0,1-"+s
		fmt.Fprintf(w, "%-14s %10.0f %11.0f %7.2fx %9.1f %9.1f %7.2fx %7.2f %7.2f\n", s, rs.med(a, colRPS), rs.med(b, colRPS),
			rs.med(b, colRPS)/rs.med(a, colRPS), rs.med(a, colCPU), rs.med(b, colCPU), 2*rs.med(a, colCPU)/rs.med(b, colCPU),
			rs.med(a, colP99), rs.med(b, colP99))
	}
	fmt.Fprintln(w, "(implied = capacity from CPU cost alone, (2 cores / cpu_us 2) / (1 core / cpu_us 1), as if the server had both cores to itself)")
}

// routeCounts are the routes section's configurations: resources per server.
var routeCounts = []int{1, 100, 10000}

func routesTable(w io.Writer, rs results, start map[int]time.Duration, reload time.Duration) {
	fmt.Fprintf(w, "%9s %7s %7s %10s %6s %6s %8s\n", "resources", "RPS", "p99_ms", "cpu_us/chk", "cpu/1", "allow%", "start_ms")
	for _, n := range routeCounts {
		name := fmt.Sprintf("routes-%d", n)
		fmt.Fprintf(w, "%9d %7.0f %7.2f %10.1f %5.2fx %6.1f %8d\n", n, rs.med(name, colRPS), rs.med(name, colP99),
			rs.med(name, colCPU), rs.per(name, "routes-1", colCPU), rs.med(name, colAllow)*100, start[n].Milliseconds())
	}
	fmt.Fprintln(w, "(cpu/1 = median of per-round ratios to 1 resource; start_ms = exec to the gRPC port listening;")
	fmt.Fprintf(w, " reload of the 10,000-resource configuration, SIGHUP to 'configuration reloaded': %d ms)\n", reload.Milliseconds())
}
