// Command run is the reproducible ext_authz benchmark: a no-op baseline, mcp-authz scenarios and
// OPA-Envoy, measured by the same ghz parameters in the same run, interleaved, with ratios to the
// baseline; then memory, multi-replica, core-scaling and route-count measurements. Results and
// how to read them: bench/README.md.
//
//	go run ./bench/cmd/run [-d 10s] [-c 50] [-r 3] [-p pinned|unpinned] [-l 20ms] [-n 100000] [-q 6000]
//	                       [-s main,rate,memory,scale,cores,routes] [-o noop,jwt-cached,...] [-P 9191]
//	                       [-out FILE] [-keep]
//
// Server CPU µs per Check comes from the server's /proc/PID/stat, which does not depend on how
// busy the load generator is. Needs go, taskset and redis-server; ghz is installed into the tools
// cache when missing, OPA-Envoy built there when its scenario runs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var allSections = []string{"main", "rate", "memory", "scale", "cores", "routes"}

type options struct {
	dur      string        // -d, passed to ghz -z as given
	conc     int           // -c
	rounds   int           // -r
	mode     string        // -p: pinned or unpinned
	lat      time.Duration // -l
	fill     int           // -n
	rate     int           // -q
	base     int           // -P
	sections []string      // -s
	only     []string      // -o
	out      string        // -out
	keep     bool          // -keep (or BENCH_KEEP)
	args     []string      // the command line, for the results' header
}

// usageError is a bad command line: exit status 2, before anything starts.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func parseOptions(args []string, getenv func(string) string) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.dur, "d", "10s", "duration of each measured ghz run")
	fs.IntVar(&o.conc, "c", 50, "ghz concurrency (one HTTP/2 connection)")
	fs.IntVar(&o.rounds, "r", 3, "interleaved rounds (medians are shown)")
	fs.StringVar(&o.mode, "p", "pinned", "pinned: servers on CPU 0, ghz on CPU 1; or unpinned")
	fs.DurationVar(&o.lat, "l", 20*time.Millisecond, "the slow authorization server's latency")
	fs.IntVar(&o.fill, "n", 100000, "distinct tokens for the real-server fill (memory section)")
	fs.IntVar(&o.rate, "q", 6000, "the fixed request rate of the rate section (equal load for every server)")
	sections := fs.String("s", strings.Join(allSections, ","), "sections to run")
	only := fs.String("o", "", "only these main scenarios (the baselines always run)")
	pb := cmpOr(getenv("BENCH_PORT_BASE"), "9191")
	fs.StringVar(&pb, "P", pb, "the port base ($BENCH_PORT_BASE, else 9191): every listener is on 127.0.0.1 at base-910 … base+188")
	fs.StringVar(&o.out, "out", "", `results file (default bench/results/<time>-<mode>[-<sections>].txt; "-" for none)`)
	fs.BoolVar(&o.keep, "keep", getenv("BENCH_KEEP") != "", "keep the work directory (logs, raw ghz JSON); also BENCH_KEEP=1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	var err error
	if o.base, err = strconv.Atoi(pb); err != nil || o.base < 1934 || o.base > 65347 {
		return o, usageError{fmt.Sprintf("-P %s: a port base from 1934 to 65347 (listeners use base-910 … base+188)", pb)}
	}
	if o.mode != "pinned" && o.mode != "unpinned" {
		return o, usageError{"-p pinned or -p unpinned"}
	}
	if d, err := time.ParseDuration(o.dur); err != nil || d <= 0 {
		return o, usageError{fmt.Sprintf("-d %s: a duration such as 10s", o.dur)}
	}
	if o.conc < 1 || o.rounds < 1 || o.fill < 1 || o.rate < 1 {
		return o, usageError{"-c, -r, -n and -q must be at least 1"}
	}
	o.sections = splitList(*sections)
	for _, s := range o.sections {
		if !slices.Contains(allSections, s) {
			return o, usageError{fmt.Sprintf("-s %s: sections are %s", s, strings.Join(allSections, ","))}
		}
	}
	o.only = splitList(*only)
	for _, s := range o.only {
		if !slices.ContainsFunc(mainScenarios, func(sc scenario) bool { return sc.name == s }) {
			return o, usageError{fmt.Sprintf("-o %s: no such main scenario", s)}
		}
	}
	return o, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (o options) want(section string) bool { return slices.Contains(o.sections, section) }

// resultsFile is the default results file's name, e.g. 2026-12-02T1529Z-pinned-main.txt.
func (o options) resultsFile(now time.Time) string {
	name := now.UTC().Format("2006-01-02T1504Z") + "-" + o.mode
	if !slices.Equal(o.sections, allSections) {
		name += "-" + strings.Join(o.sections, "-")
	}
	return filepath.Join("bench", "results", name+".txt")
}

// lab is one run: its options, work directory, processes and the servers started so far.
type lab struct {
	opt     options
	w       io.Writer // the results: stdout and the results file
	work    string
	procs   procs
	servers map[string]*server
	srvCPU  []string // the servers' CPU prefix (taskset -c 0 when pinned)
	gen     []string // the load generator's (taskset -c 1 when pinned)
	ghzPath string
	hz      float64
	runID   string
	jwt     string
	res     results
}

func main() {
	opt, err := parseOptions(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opt)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "interrupted: every process started was stopped")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opt options) error {
	if err := chdirModuleRoot(); err != nil {
		return err
	}
	need := []string{"redis-server", "taskset"}
	for _, b := range need {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not installed (apt-get install -y redis-server util-linux)", b)
		}
	}
	l := &lab{opt: opt, servers: map[string]*server{}, hz: clockTicks(), res: results{}}
	if opt.mode == "pinned" {
		l.srvCPU, l.gen = []string{"taskset", "-c", "0"}, []string{"taskset", "-c", "1"}
	}
	var err error
	if l.work, err = os.MkdirTemp("", "mcp-authz-bench-"); err != nil {
		return err
	}
	defer func() {
		l.procs.stopAll()
		if opt.keep {
			fmt.Fprintln(os.Stderr, "raw results kept in", l.work)
		} else {
			os.RemoveAll(l.work)
		}
	}()

	l.w = os.Stdout
	if opt.out != "-" {
		name := opt.out
		if name == "" {
			name = opt.resultsFile(time.Now())
		}
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		defer func() { f.Close(); fmt.Fprintln(os.Stderr, "results in", name) }()
		l.w = io.MultiWriter(os.Stdout, f)
	}
	err = l.all(ctx)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(l.w, "# FAILED: %v\n", err)
	}
	return err
}

// chdirModuleRoot moves to the module's root, where the packages and bench/opa are, from
// anywhere inside it.
func chdirModuleRoot() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return errors.New("run inside the mcp-authz module (go run ./bench/cmd/run)")
	}
	return os.Chdir(filepath.Dir(gomod))
}

func (l *lab) all(ctx context.Context) error {
	var err error
	if l.ghzPath, err = findGhz(ctx); err != nil {
		return err
	}
	build := commandContext(ctx, nil, "go", "build", "-o", l.work+"/", "./cmd/mcp-authz", "./bench/noop", "./bench/slowas",
		"./bench/memory", "./bench/cpuscale", "./bench/dpop")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	os.Setenv("BENCH_CACHE_SECRET", hex.EncodeToString(secret))
	os.Setenv("BENCH_INTROSPECTION_SECRET", "bench-secret")
	id := make([]byte, 6)
	rand.Read(id)
	l.runID = hex.EncodeToString(id)

	if _, err := l.srv(ctx, "demo"); err != nil {
		return err
	}
	if l.jwt, err = l.token("demo"); err != nil {
		return err
	}
	opaque, err := l.token("demo-opaque")
	if err != nil {
		return err
	}
	for name, v := range dataFiles(l.jwt, opaque, l.runID) {
		if err := l.writeData(name, v); err != nil {
			return err
		}
	}
	if err := l.header(ctx); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		run  func(context.Context) error
	}{{"main", l.mainSection}, {"rate", l.rateSection}, {"memory", l.memorySection}, {"scale", l.scaleSection},
		{"cores", l.coresSection}, {"routes", l.routesSection}} {
		if !l.opt.want(s.name) {
			continue
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s section: %w", s.name, err)
		}
	}
	busy, err := l.busy(ctx)
	if err != nil {
		return err
	}
	scale, err := l.cpuscale(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "\n# done %s; machine CPU busy in the last second (servers idle): %d%%; two vCPUs do %s\n",
		time.Now().UTC().Format(time.RFC3339), busy, scale)
	return nil
}

func (l *lab) header(ctx context.Context) error {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	goVer, _ := exec.Command("go", "env", "GOVERSION").Output()
	redisVer, _ := exec.Command("redis-server", "--version").Output()
	rv := "?"
	if f := strings.Fields(string(redisVer)); len(f) >= 3 {
		rv = f[2]
	}
	fmt.Fprintf(l.w, "# %s %d CPU %s, %s, %s, ghz %s, opa-envoy-plugin %s\n", time.Now().UTC().Format(time.RFC3339),
		nproc(), model, strings.TrimSpace(string(goVer)), rv, ghzVersion, cmpOr(os.Getenv("OPA_ENVOY_VERSION"), "v1.15.2-envoy"))
	fmt.Fprintf(l.w, "# go run ./bench/cmd/run %s\n", strings.Join(l.opt.args, " "))
	fmt.Fprintf(l.w, "# -c %d -z %s, %d rounds, %s; slow AS latency %s; medians\n", l.opt.conc, l.opt.dur, l.opt.rounds, l.opt.mode, l.opt.lat)
	busy, err := l.busy(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "# machine CPU busy in the second before the runs (our servers idle): %d%%\n", busy)
	scale, err := l.cpuscale(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "# two vCPUs busy at once do %s: bench/cpuscale\n", scale)
	if busy > 15 {
		fmt.Fprintln(l.w, "WARN: something else is using the CPU: every number below is skewed")
	}
	return nil
}

func nproc() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "processor") {
				n++
			}
		}
	}
	return n
}

// busy is how busy the machine is over one second.
func (l *lab) busy(ctx context.Context) (int, error) {
	a, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return 0, err
	}
	b, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	return busyPercent(a, b), nil
}

// cpuscale is how much a second vCPU adds here: one CPU-bound thread alone, then one on each
// vCPU at once.
func (l *lab) cpuscale(ctx context.Context) (string, error) {
	if nproc() < 2 {
		return "n/a (one CPU here)", nil
	}
	bin := filepath.Join(l.work, "cpuscale")
	one := func(cpu string) (float64, error) {
		out, err := commandContext(ctx, []string{"taskset", "-c", cpu}, bin).Output()
		if err != nil {
			return 0, fmt.Errorf("cpuscale: %w", err)
		}
		return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	}
	a, err := one("0")
	if err != nil {
		return "", err
	}
	type res struct {
		v   float64
		err error
	}
	ch := make(chan res, 1)
	go func() { v, err := one("1"); ch <- res{v, err} }()
	b, errB := one("0")
	c := <-ch
	if err := errors.Join(errB, c.err); err != nil {
		return "", err
	}
	return fmt.Sprintf("%.2fx of one (alone %.0f, together %.0f + %.0f)", (b+c.v)/a, a, b, c.v), nil
}
