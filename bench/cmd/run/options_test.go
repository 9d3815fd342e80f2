package main

import (
	"errors"
	"flag"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if o.dur != "10s" || o.conc != 50 || o.rounds != 3 || o.mode != "pinned" || o.lat != 20*time.Millisecond ||
		o.fill != 100000 || o.rate != 6000 || o.base != 9191 || !slices.Equal(o.sections, allSections) || o.only != nil {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parseOptions([]string{"-s", "main", "-o", "noop,jwt-cached,opaque-L1", "-d", "2s", "-r", "1", "-p", "unpinned"},
		func(k string) string { return map[string]string{"BENCH_PORT_BASE": "19191", "BENCH_KEEP": "1"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.base != 19191 || !o.keep || !o.want("main") || o.want("rate") || o.dur != "2s" || o.rounds != 1 {
		t.Fatalf("options: %+v", o)
	}
	if got := o.resultsFile(time.Date(2026, 12, 2, 15, 29, 59, 0, time.UTC)); got != "bench/results/2026-12-02T1529Z-unpinned-main.txt" {
		t.Fatalf("results file %s", got)
	}
}

// A bad command line is refused before anything starts, naming the flag.
func TestParseOptionsRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-P", "80"}, "-P 80: a port base from 1934 to 65347"},
		{[]string{"-P", "65500"}, "-P 65500"},
		{[]string{"-P", "x"}, "-P x"},
		{[]string{"-p", "half"}, "-p pinned or -p unpinned"},
		{[]string{"-d", "ten"}, "-d ten"},
		{[]string{"-s", "main,speed"}, "-s speed"},
		{[]string{"-o", "jwt-cahced"}, "-o jwt-cahced"},
		{[]string{"-c", "0"}, "at least 1"},
		{[]string{"-z", "1s"}, "-z"},
		{[]string{"main"}, "unexpected arguments"},
	} {
		_, err := parseOptions(tc.args, noEnv)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.msg)
		}
	}
}

func TestParseOptionsHelp(t *testing.T) {
	if _, err := parseOptions([]string{"-h"}, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestSelectScenariosKeepsTheBaselines(t *testing.T) {
	var names []string
	for _, s := range selectScenarios(mainScenarios, []string{"opaque-L1", "jwt-cached"}) {
		names = append(names, s.name)
	}
	// Run order, not -o order.
	if want := []string{"noop", "noop-allow", "noop-401", "jwt-cached", "opaque-L1"}; !slices.Equal(names, want) {
		t.Fatalf("selected %v, want %v", names, want)
	}
	if got := selectScenarios(mainScenarios, nil); len(got) != len(mainScenarios) {
		t.Fatalf("no -o: %d scenarios", len(got))
	}
}

// Every listener is placed from the port base, so -P moves all of them (a fixed 9191 collided
// with a running demo): no loopback port is written out in the driver's source, and every offset
// it uses keeps within base-910 … base+188.
func TestPortsFollowTheBase(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fixed := regexp.MustCompile(`(127\.0\.0\.1|localhost):[0-9]+`)
	offset := regexp.MustCompile(`l\.addr\((-?[0-9]+)`)
	seen := 0
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		src, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range fixed.FindAllString(line, -1) {
				// The request's Host, localhost:8080, which nothing listens on; and the OPA
				// config template's port, replaced from the base on the same line.
				if m == "localhost:8080" || strings.Contains(line, `[]byte("127.0.0.1:9198"), []byte(l.addr(7))`) {
					continue
				}
				t.Errorf("%s:%d: fixed port %q; derive it from the base (l.addr)", f.Name(), i+1, m)
			}
			for _, m := range offset.FindAllStringSubmatch(line, -1) {
				seen++
				if off, _ := strconv.Atoi(m[1]); off < -910 || off > 188 {
					t.Errorf("%s:%d: offset %s outside -910 … 188", f.Name(), i+1, m[1])
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found only %d l.addr offsets: has the port helper been renamed?", seen)
	}
	l := &lab{opt: options{base: 1934}}
	if got := l.addr(-910); got != "127.0.0.1:1024" {
		t.Fatalf("lowest listener at base 1934: %s", got)
	}
}
