package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scenario is one measured target: a server and the payload sent to it.
type scenario struct {
	name, server, data string
}

// mainScenarios, in run order. The baseline receives the same request bytes as the JWT
// scenarios (a 700-byte token).
var mainScenarios = []scenario{
	{"noop", "noop", "jwt"},
	{"noop-allow", "noop-allow", "jwt"},
	{"noop-401", "noop-401", "none"},
	{"no-token-401", "demo", "none"},
	{"jwt-cached", "demo", "jwt"},
	{"jwt-cached-tool", "tools", "toolcall"},
	{"jwt-cached-rules", "rules", "toolcall"},
	{"dpop-cached", "dpop", "dpop"},
	{"opaque-L1", "demo", "opaque"},
	{"invalid-token", "demo", "bad"},
	{"mix", "demo", "mix"},
	{"opaque-redis", "redis", "redis"},
	{"jwt-uncached", "nocache", "jwt"},
	{"opaque-miss-slowAS", "slow", "unique"},
	{"opa-jwt", "opa", "jwt"},
}

// selectScenarios keeps the baselines and the -o scenarios (all when -o is empty), in run order.
func selectScenarios(all []scenario, only []string) []scenario {
	if len(only) == 0 {
		return all
	}
	var keep []scenario
	for _, s := range all {
		if slices.Contains([]string{"noop", "noop-allow", "noop-401"}, s.name) || slices.Contains(only, s.name) {
			keep = append(keep, s)
		}
	}
	return keep
}

// target is a scenario bound to its started server.
type target struct {
	name string
	s    *server
	data string
}

func (l *lab) targets(ctx context.Context, scs []scenario, prefix string) ([]target, error) {
	var ts []target
	for _, sc := range scs {
		s, err := l.srv(ctx, sc.server)
		if err != nil {
			return nil, err
		}
		ts = append(ts, target{prefix + sc.name, s, sc.data})
	}
	return ts, nil
}

// warm sends every target 2,000 Checks first.
func (l *lab) warm(ctx context.Context, ts []target) error {
	for _, t := range ts {
		if _, err := l.ghz(ctx, ghzRun{addr: t.s.grpc, data: l.data(t.data), args: []string{"-c", strconv.Itoa(l.opt.conc), "-n", "2000"}}); err != nil {
			return err
		}
	}
	return nil
}

// rounds measures every target once per round, interleaved.
func (l *lab) rounds(ctx context.Context, ts []target, extra ...string) error {
	for range l.opt.rounds {
		for _, t := range ts {
			r, err := l.measure(ctx, t, extra)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			l.res[t.name] = append(l.res[t.name], r)
		}
	}
	return nil
}

// counters is what is read before and after a measured run.
type counters struct {
	server, redis int64
	redisCalls    int64
	as            []asCounts // per started stand-in AS
	allow, total  float64
}

func (l *lab) counters(t target) (counters, error) {
	var c counters
	var err error
	if c.server, err = procCPU(t.s.p.pid()); err != nil {
		return c, err
	}
	if r, ok := l.servers["redis-server"]; ok {
		if c.redis, err = procCPU(r.p.pid()); err != nil {
			return c, err
		}
		info, err := redisCmd(r.grpc, "INFO", "commandstats")
		if err != nil {
			return c, err
		}
		c.redisCalls = commandCalls(info)
	}
	for _, name := range []string{"slowas-fast", "slowas-slow"} {
		if s, ok := l.servers[name]; ok {
			n, err := getCounts(s.grpc)
			if err != nil {
				return c, err
			}
			c.as = append(c.as, n)
		}
	}
	if t.s.http != "" {
		m, err := getMetrics(t.s.http)
		if err != nil {
			return c, err
		}
		c.allow, c.total = decisions(m)
	}
	return c, nil
}

// measure is one measured ghz run of a target.
func (l *lab) measure(ctx context.Context, t target, extra []string) (row, error) {
	c0, err := l.counters(t)
	if err != nil {
		return row{}, err
	}
	out := filepath.Join(l.work, t.name+".json")
	gen, err := l.ghz(ctx, ghzRun{addr: t.s.grpc, data: l.data(t.data), out: out,
		args: append([]string{"-c", strconv.Itoa(l.opt.conc), "-z", l.opt.dur}, extra...)})
	if err != nil {
		return row{}, err
	}
	c1, err := l.counters(t)
	if err != nil {
		return row{}, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return row{}, err
	}
	rep, err := parseGhzReport(b)
	if err != nil {
		return row{}, err
	}
	d := deltas{serverTicks: c1.server - c0.server, redisTicks: c1.redis - c0.redis, redisCalls: c1.redisCalls - c0.redisCalls,
		allow: c1.allow - c0.allow, decided: c1.total - c0.total, gen: gen}
	// Each /count query is itself a new connection to each AS, counted in its own answer.
	for i := range c1.as {
		d.idp += c1.as[i].Introspect - c0.as[i].Introspect
		d.conns += c1.as[i].Conns - c0.as[i].Conns - 1
	}
	return newRow(rep, d, l.hz), nil
}

func (l *lab) pid(name string) int {
	if s, ok := l.servers[name]; ok {
		return s.p.pid()
	}
	return 0
}

// rssNames are the servers whose memory the main section reports.
var rssNames = []string{"noop", "demo", "nocache", "redis", "slow", "opa"}

func (l *lab) mainSection(ctx context.Context) error {
	scs := selectScenarios(mainScenarios, l.opt.only)
	ts, err := l.targets(ctx, scs, "")
	if err != nil {
		return err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	idle := map[string]string{}
	for _, n := range rssNames {
		idle[n] = rssMB(l.pid(n), "VmRSS")
	}
	if err := l.warm(ctx, ts); err != nil {
		return err
	}
	if err := l.rounds(ctx, ts); err != nil {
		return err
	}
	var names []string
	for _, t := range ts {
		names = append(names, t.name)
	}
	mainTable(l.w, l.res, names, l.opt.conc, l.opt.lat)
	fmt.Fprintf(l.w, "\nRSS MB (VmRSS after startup, before any request / VmHWM peak after the rounds):\n")
	for _, n := range rssNames {
		fmt.Fprintf(l.w, "  %-8s %7s / %7s\n", n, idle[n], rssMB(l.pid(n), "VmHWM"))
	}
	return nil
}

// A server's CPU per Check depends on its load: the busier it is, the more Checks each wake-up and
// each read or write system call serves. In the main section ghz is the bottleneck, so a server
// whose answers cost ghz more is offered fewer Checks per second and looks dearer per Check. At
// one fixed rate that every server sustains, CPU per Check and latency compare like for like.
var rateScenarios = []scenario{
	{"noop", "noop", "jwt"}, {"noop-allow", "noop-allow", "jwt"}, {"noop-401", "noop-401", "none"},
	{"jwt-cached", "demo", "jwt"}, {"opaque-L1", "demo", "opaque"}, {"no-token-401", "demo", "none"},
	{"mix", "demo", "mix"}, {"opaque-redis", "redis", "redis"},
}

func (l *lab) rateSection(ctx context.Context) error {
	fmt.Fprintf(l.w, "\nRate: every server offered the same %d Checks/s (ghz --rps, -c %d, -z %s), %d rounds, medians\n",
		l.opt.rate, l.opt.conc, l.opt.dur, l.opt.rounds)
	ts, err := l.targets(ctx, rateScenarios, "rate-")
	if err != nil {
		return err
	}
	if err := l.rounds(ctx, ts, "--rps", strconv.Itoa(l.opt.rate)); err != nil {
		return err
	}
	var names []string
	for _, t := range ts {
		names = append(names, t.name)
	}
	rateTable(l.w, l.res, names, l.opt.rate)
	return nil
}

// memorySection: L1 entries in process (bench/memory), then a real server filled through Redis.
func (l *lab) memorySection(ctx context.Context) error {
	fmt.Fprintf(l.w, "\nL1 cache memory (bench/memory: the real cache package, L1 only, typical introspection identities):\n")
	mem := commandContext(ctx, nil, filepath.Join(l.work, "memory"))
	mem.Stdout, mem.Stderr = l.w, os.Stderr
	if err := mem.Run(); err != nil {
		return fmt.Errorf("bench/memory: %w", err)
	}
	// A real server: L1 large enough to keep every token, Redis on, a fast AS; -n distinct tokens.
	redis, err := l.srv(ctx, "redis-server")
	if err != nil {
		return err
	}
	fast, err := l.srv(ctx, "slowas-fast")
	if err != nil {
		return err
	}
	fill, err := l.serve(ctx, "fill", 13, "http://"+fast.grpc, l.redisCache(fmt.Sprintf("l1_size: %d, ", l.opt.fill*2)), true, "", "")
	if err != nil {
		return err
	}
	defer fill.p.stop()
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	if err := l.writeData("fill", checkRequest("bench-fill-"+l.runID+"-{{.RequestNumber}}-abcdefghijklmnopqrstuvwxyz0123456789")); err != nil {
		return err
	}
	type snap struct{ rss, heap, used, keys float64 }
	take := func() (snap, error) {
		var s snap
		rss, _ := strconv.ParseFloat(rssMB(fill.p.pid(), "VmRSS"), 64)
		s.rss = rss
		m, err := getMetrics(fill.http)
		if err != nil {
			return s, err
		}
		h, _ := metricValue(m, "go_memstats_heap_inuse_bytes")
		s.heap = h / 1048576
		info, err := redisCmd(redis.grpc, "INFO", "memory")
		if err != nil {
			return s, err
		}
		s.used = infoField(info, "used_memory")
		keys, err := redisCmd(redis.grpc, "DBSIZE")
		if err != nil {
			return s, err
		}
		s.keys, _ = strconv.ParseFloat(keys, 64)
		return s, nil
	}
	s0, err := take()
	if err != nil {
		return err
	}
	out := filepath.Join(l.work, "fill.json")
	if _, err := l.ghz(ctx, ghzRun{addr: fill.grpc, data: l.data("fill"), out: out,
		args: []string{"-c", strconv.Itoa(l.opt.conc), "-n", strconv.Itoa(l.opt.fill)}}); err != nil {
		return err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	s1, err := take()
	if err != nil {
		return err
	}
	b, _ := os.ReadFile(out)
	rep, err := parseGhzReport(b)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "\nReal server, %d distinct opaque tokens (L1 %d entries + Redis): RSS %.1f -> %.1f MB (%.0f B/token), Go heap in use %.1f -> %.1f MB;\n",
		l.opt.fill, l.opt.fill*2, s0.rss, s1.rss, (s1.rss-s0.rss)*1048576/float64(l.opt.fill), s0.heap, s1.heap)
	fmt.Fprintf(l.w, "  Redis: %.0f keys added, used_memory +%.1f MB = %.0f B/entry; fill ran at %.0f Checks/s\n",
		s1.keys-s0.keys, (s1.used-s0.used)/1048576, (s1.used-s0.used)/max(s1.keys-s0.keys, 1), rep.RPS)
	return nil
}

// scaleSection: 3 replicas sharing Redis and the cache secret, in front of the slow AS.
func (l *lab) scaleSection(ctx context.Context) error {
	if _, err := l.srv(ctx, "redis-server"); err != nil {
		return err
	}
	slow, err := l.srv(ctx, "slowas-slow")
	if err != nil {
		return err
	}
	var reps []*server
	defer func() {
		for _, r := range reps {
			r.p.stop()
		}
	}()
	for i := 1; i <= 3; i++ {
		r, err := l.serve(ctx, fmt.Sprintf("replica%d", i), 9+i, "http://"+slow.grpc, l.redisCache(""), true, "", "")
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	introspections := func() (int64, error) { c, err := getCounts(slow.grpc); return c.Introspect, err }
	redisCalls := func() (int64, error) {
		info, err := redisCmd(l.servers["redis-server"].grpc, "INFO", "commandstats")
		return commandCalls(info), err
	}
	fmt.Fprintf(l.w, "\nScale: 3 replicas (L1 on) sharing one Redis and cache secret; the AS answers in %s\n", l.opt.lat)
	t1 := "bench-scale-seq-" + l.runID
	a0, err := introspections()
	if err != nil {
		return err
	}
	for range 2 {
		for _, r := range reps {
			out, _, err := l.check(ctx, r.grpc, t1)
			if err != nil {
				return err
			}
			if !strings.Contains(out, "okResponse") {
				fmt.Fprintf(os.Stderr, "WARN: %s did not allow\n", r.grpc)
			}
		}
	}
	a1, err := introspections()
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "  one token, one Check on each replica in turn, twice: %d introspection call(s) at the AS (expected 1)\n", a1-a0)

	if err := l.writeData("burst", checkRequest("bench-scale-burst-"+l.runID)); err != nil {
		return err
	}
	if a0, err = introspections(); err != nil {
		return err
	}
	c0, err := redisCalls()
	if err != nil {
		return err
	}
	errs := make(chan error, len(reps))
	for _, r := range reps {
		go func() {
			_, err := l.ghz(ctx, ghzRun{addr: r.grpc, data: l.data("burst"), args: []string{"-c", strconv.Itoa(l.opt.conc), "-n", "3000"}})
			errs <- err
		}()
	}
	for range reps {
		if e := <-errs; e != nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	if a1, err = introspections(); err != nil {
		return err
	}
	c1, err := redisCalls()
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "  one new token, 3 x 3000 Checks at once (c=%d each): %d introspection call(s) (expected 1: the first replica\n", l.opt.conc, a1-a0)
	fmt.Fprintf(l.w, "    to miss claims the token in Redis, the others wait for its entry), %.4f Redis commands per Check\n", float64(c1-c0)/9000)

	if c0, err = redisCalls(); err != nil {
		return err
	}
	out := filepath.Join(l.work, "steady.json")
	if _, err := l.ghz(ctx, ghzRun{addr: reps[1].grpc, data: l.data("burst"), out: out, args: []string{"-c", strconv.Itoa(l.opt.conc), "-z", l.opt.dur}}); err != nil {
		return err
	}
	if c1, err = redisCalls(); err != nil {
		return err
	}
	b, _ := os.ReadFile(out)
	rep, err := parseGhzReport(b)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "  steady state, that token on one replica for %s (%d Checks, L1 hits): %.5f Redis commands per Check\n",
		l.opt.dur, rep.Count, float64(c1-c0)/float64(max(rep.Count, 1)))
	fmt.Fprintln(l.w, "  (with L1 off every Check is one GET: see redis_cmd of opaque-redis above)")
	return nil
}

// coresSection: the same server on 1 and on 2 CPUs, ghz unpinned (it competes for the same cores).
// Unlike run.sh, ghz stays pinned in the sections after this one (run.sh unpinned it for the rest
// of the run).
func (l *lab) coresSection(ctx context.Context) error {
	fmt.Fprintf(l.w, "\nCores: servers under taskset -c 0 (GOMAXPROCS 1) vs -c 0,1 (GOMAXPROCS 2); ghz unpinned, -c %d -z %s, %d rounds, medians\n",
		l.opt.conc, l.opt.dur, l.opt.rounds)
	demoIssuer := "http://" + l.addr(2)
	cached, uncached := l.addr(20), l.addr(21)
	os.WriteFile(filepath.Join(l.work, "corecached.yaml"), []byte(l.config(cached, l.addr(120), demoIssuer, "{ l1_size: 100000 }", false)), 0o600)
	os.WriteFile(filepath.Join(l.work, "coreuncached.yaml"), []byte(l.config(uncached, l.addr(121), demoIssuer, "{ l1_size: -1 }", false)), 0o600)
	gen := l.gen
	l.gen = nil
	defer func() { l.gen = gen }()
	for _, cpus := range []string{"0", "0,1"} {
		noop, err := l.run(ctx, "cores-noop", []string{"taskset", "-c", cpus}, "-", l.addr(19), "", filepath.Join(l.work, "noop"), "-addr", l.addr(19))
		if err != nil {
			return err
		}
		c, err := l.serveFile(ctx, "corecached", cached, l.addr(120), cpus)
		if err != nil {
			return err
		}
		u, err := l.serveFile(ctx, "coreuncached", uncached, l.addr(121), cpus)
		if err != nil {
			return err
		}
		p := "cores" + cpus + "-"
		ts := []target{{p + "noop", noop, "jwt"}, {p + "jwt-cached", c, "jwt"}, {p + "jwt-uncached", u, "jwt"}}
		err = l.warm(ctx, ts)
		if err == nil {
			err = l.rounds(ctx, ts)
		}
		for _, t := range ts {
			t.s.p.stop()
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintln(l.w, "(ghz needs about a core of its own: a server allowed on both vCPUs takes CPU from it, so RPS cannot show")
	fmt.Fprintln(l.w, " server scaling on this 2-vCPU machine; compare cpu_us, and see bench/README.md)")
	coresTable(l.w, l.res)
	return nil
}

// routesSection: a cached Check with 1, 100 and 10,000 resources, one per tenant host. The
// request is the jwt-cached one, to the first resource; the others are tenants on their own
// hosts, all with their metadata at the same path. Start-up is from exec to the listeners
// accepting (YAML parsing, validation, building every route); reload from SIGHUP to the log line
// "configuration reloaded" (the same work, while serving).
func (l *lab) routesSection(ctx context.Context) error {
	var ts []target
	defer func() {
		for _, t := range ts {
			t.s.p.stop()
		}
	}()
	start := map[int]time.Duration{}
	for i, n := range routeCounts {
		name := fmt.Sprintf("routes%d", n)
		grpc, http := l.addr(30+i), l.addr(130+i)
		cfg := strings.Replace(l.config(grpc, http, "http://"+l.addr(2), "{ l1_size: 100000 }", false), "log: { level: error }", "log: { level: info }", 1)
		var b strings.Builder
		b.WriteString(cfg)
		for t := 1; t < n; t++ {
			fmt.Fprintf(&b, "  - resource: http://tenant-%d.example.com/mcp\n    audiences: [\"%s\"]\n    scopes: { required: [mcp:tools] }\n", t, resource)
		}
		if err := os.WriteFile(filepath.Join(l.work, name+".yaml"), []byte(b.String()), 0o600); err != nil {
			return err
		}
		t0 := time.Now()
		s, err := l.serveFile(ctx, name, grpc, http, "")
		if err != nil {
			return err
		}
		start[n] = time.Since(t0)
		ts = append(ts, target{fmt.Sprintf("routes-%d", n), s, "jwt"})
	}
	big := ts[len(ts)-1].s.p
	reloaded := func() int {
		b, _ := os.ReadFile(big.log)
		return strings.Count(string(b), "configuration reloaded")
	}
	r0 := reloaded()
	t0 := time.Now()
	if err := syscall.Kill(big.pid(), syscall.SIGHUP); err != nil {
		return err
	}
	// 30 s at most: run.sh's 10 s were nearly used up (9.2 s) on a loaded machine.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if reloaded() > r0 {
			break
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	reload := time.Since(t0)
	if reloaded() <= r0 {
		fmt.Fprintln(os.Stderr, "WARN: the 10,000-resource server did not log a reload")
	}
	if err := l.warm(ctx, ts); err != nil {
		return err
	}
	if err := l.rounds(ctx, ts); err != nil {
		return err
	}
	fmt.Fprintf(l.w, "\nRoutes: jwt-cached with 1, 100 and 10,000 resources (one per tenant host); -c %d -z %s, %d rounds, medians\n",
		l.opt.conc, l.opt.dur, l.opt.rounds)
	routesTable(l.w, l.res, start, reload)
	return nil
}
