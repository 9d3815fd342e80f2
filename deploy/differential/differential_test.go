package differential

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/deploy/internal/nodeenv"
)

// The whole test, Node processes included, ends within this.
const testTimeout = 120 * time.Second

// workers per target: the Node servers are single-threaded, so a few in flight keep each busy.
const workers = 3

// nameOf: the params member mcp-authz's Operation.Name comes from, by method (as in
// record.mjs). A body's other methods have no name.
var nameOf = map[string]string{
	"tools/call": "name", "prompts/get": "name",
	"resources/read": "uri", "resources/subscribe": "uri", "resources/unsubscribe": "uri",
}

// A target is one upstream server, reached one way.
type target struct {
	key, desc string
	url       string
	// session: initialize a 2025-11-25 session per worker first, then send Mcp-Session-Id and
	// MCP-Protocol-Version on every POST.
	session bool
	// sep2243: send the MCP 2026-07-28 standard headers (SEP-2243) consistent with what
	// mcp-authz read, so a modern-shaped body reaches dispatch; only bodies mcp-authz reads
	// as exactly one operation are sent (there is no header for a batch).
	sep2243 bool
	// encodeName spells the Mcp-Name header as this SDK reads it.
	encodeName func(string) (string, bool)
	server     *upstream
}

// An upstream is one server process (or in-process server) and its record of executions.
type upstream struct {
	name     string
	executed func(context.Context) (map[string][]execution, error)
}

type result struct {
	sent   bool
	status int
	err    string
	exec   []execution
}

type authzResult struct {
	ops []authz.Operation
	err error
}

// TestDifferential sends every corpus body to real MCP servers of the TypeScript SDK 1.x
// and 2.x (Node, over loopback HTTP) and the Go SDK (in-process, over loopback HTTP), and
// fails when mcp-authz's ReadOperations accepts a body and an upstream executes an operation
// it did not read (another method, tool, prompt or resource name).
func TestDifferential(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	node := nodeenv.Need(t, "node", "install Node.js >= 20")
	nodeenv.Node(t, node)
	versions := nodeenv.Modules(t, "deploy/differential")
	versions["github.com/modelcontextprotocol/go-sdk"] = goSDKVersion(t)

	started := time.Now()
	bodies := append(handBodies(), generated()...)
	reads := make([]authzResult, len(bodies))
	accepted := 0
	for i, b := range bodies {
		reads[i] = readOperations(t, b)
		if reads[i].err == nil {
			accepted++
		}
	}

	dir := t.TempDir()
	sdk1 := startNode(ctx, t, dir, node, "sdk1.mjs")
	sdk2 := startNode(ctx, t, dir, node, "sdk2.mjs")
	rec := newRecorder()
	goUp := &upstream{name: "go-sdk", executed: func(context.Context) (map[string][]execution, error) { return rec.take(), nil }}
	goStateless := httptest.NewServer(goHandler(rec, true))
	t.Cleanup(goStateless.Close)
	goSession := httptest.NewServer(goHandler(rec, false))
	t.Cleanup(goSession.Close)

	ts1 := "TS SDK " + versions["@modelcontextprotocol/sdk"]
	ts2 := "TS SDK " + versions["@modelcontextprotocol/server"]
	gov := "Go SDK " + versions["github.com/modelcontextprotocol/go-sdk"]
	targets := []*target{
		{key: "ts1-stateless", desc: ts1 + ", stateless", url: sdk1.base + "/stateless", server: sdk1.upstream},
		{key: "ts1-session", desc: ts1 + ", 2025-11-25 session", url: sdk1.base + "/session", session: true, server: sdk1.upstream},
		{key: "ts2", desc: ts2 + ", createMcpHandler, no SEP-2243 headers", url: sdk2.base + "/mcp", server: sdk2.upstream},
		{key: "ts2-sep2243", desc: ts2 + ", createMcpHandler, SEP-2243 headers", url: sdk2.base + "/mcp", sep2243: true, encodeName: sentinelName, server: sdk2.upstream},
		{key: "go-stateless", desc: gov + ", stateless, no SEP-2243 headers", url: goStateless.URL, server: goUp},
		{key: "go-sep2243", desc: gov + ", stateless, SEP-2243 headers", url: goStateless.URL, sep2243: true, encodeName: rawName, server: goUp},
		{key: "go-session", desc: gov + ", 2025-11-25 session", url: goSession.URL, session: true, server: goUp},
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * workers * len(targets)}, Timeout: 20 * time.Second}
	results := make([][]result, len(targets))
	took := make([]time.Duration, len(targets))
	var wg sync.WaitGroup
	for ti, tg := range targets {
		results[ti] = make([]result, len(bodies))
		wg.Go(func() {
			start := time.Now()
			var tw sync.WaitGroup
			for w := range workers {
				tw.Go(func() {
					if err := runWorker(ctx, client, tg, w, bodies, reads, results[ti]); err != nil {
						t.Errorf("%s: %v", tg.desc, err)
					}
				})
			}
			tw.Wait()
			took[ti] = time.Since(start)
		})
	}
	wg.Wait()
	for ti, tg := range targets {
		t.Logf("%s: %v", tg.desc, took[ti].Round(time.Millisecond))
	}
	if t.Failed() {
		return
	}

	// What each upstream recorded, by case.
	executed := map[string][]execution{}
	for _, up := range []*upstream{sdk1.upstream, sdk2.upstream, goUp} {
		got, err := up.executed(ctx)
		if err != nil {
			t.Fatalf("%s: the record of executions: %v", up.name, err)
		}
		maps.Copy(executed, got)
	}
	if ex := executed["(no case)"]; len(ex) > 0 {
		t.Errorf("executions without a case: %v", ex)
	}
	for ti, tg := range targets {
		for w := range workers {
			for _, when := range []string{"start", "end"} {
				c := canaryCase(tg, w, when)
				_, want := canaryBody(tg)
				if !slices.ContainsFunc(executed[c], func(e execution) bool { return e.Method == want[0].Method && e.Via == "dispatch" }) {
					t.Errorf("%s: the canary at the %s of worker %d was not executed (%v): the upstream stopped working, its results say nothing", tg.desc, when, w, executed[c])
				}
			}
		}
		for i := range bodies {
			results[ti][i].exec = executed[caseID(tg, i)]
		}
	}
	if t.Failed() {
		return
	}

	// The invariant.
	failures := 0
	for ti, tg := range targets {
		for i, b := range bodies {
			r := results[ti][i]
			if !r.sent || reads[i].err != nil {
				continue
			}
			if problem := violation(reads[i].ops, r.exec); problem != "" {
				failures++
				if failures <= 40 {
					t.Errorf("%s executed what mcp-authz did not read (%s)\n  class: %s\n  body: %s\n  mcp-authz: %s\n  upstream executed: %s\n  HTTP %d",
						tg.desc, problem, b.class, quote(b.data), authzSays(reads[i]), describe(r.exec), r.status)
				}
			}
		}
	}
	if failures > 40 {
		t.Errorf("... %d violations in all", failures)
	}

	// The test must be able to fail: judged on the same upstream results, the reader mcp-authz
	// had before issue 14 lets every SDK execute what it did not read.
	legacy := map[*upstream]int{}
	shown := map[*upstream]bool{}
	for ti, tg := range targets {
		if tg.sep2243 {
			continue // sent only what the current reader accepts
		}
		for i, b := range bodies {
			ops, err := legacyOperations(b.data)
			if err != nil || !results[ti][i].sent {
				continue
			}
			if p := violation(ops, results[ti][i].exec); p != "" {
				// Shown: a body on which the upstream deletes while the old reader saw another tool.
				if !shown[tg.server] && strings.Contains(p, `"delete_file"`) {
					shown[tg.server] = true
					t.Logf("the pre-issue-14 reader, e.g.: %s executed %s of %q %s, it read %v", tg.desc, p, b.class, quote(b.data), ops)
				}
				legacy[tg.server]++
			}
		}
	}
	for _, up := range []*upstream{sdk1.upstream, sdk2.upstream, goUp} {
		if legacy[up] == 0 {
			t.Errorf("%s: the pre-issue-14 reader shows no violation: this test no longer catches the bypass it was written for", up.name)
		}
	}
	t.Logf("the pre-issue-14 reader would fail here: %d violations (%s), %d (%s), %d (%s)",
		legacy[sdk1.upstream], sdk1.upstream.name, legacy[sdk2.upstream], sdk2.upstream.name, legacy[goUp], goUp.name)

	rep := report(bodies, reads, targets, results)
	t.Logf("ran: %s; %d bodies (%d hand-written, %d generated from seed %#x/%#x), mcp-authz accepted %d; %d targets, %d POSTs in %v",
		strings.Join(sortedVersions(versions), ", "), len(bodies), len(handBodies()), genCount, genSeed1, genSeed2,
		accepted, len(targets), countSent(results), time.Since(started).Round(time.Millisecond))
	t.Log(rep)
	if p := os.Getenv("DIFFERENTIAL_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(rep), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// readOperations runs mcp-authz's reader; a panic is a failure of its own (bad input gets a
// clear answer, never a panic).
func readOperations(t *testing.T, b body) (r authzResult) {
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("ReadOperations panicked on %s (%s): %v", quote(b.data), b.class, p)
			r = authzResult{err: fmt.Errorf("panic: %v", p)}
		}
	}()
	ops, err := authz.ReadOperations(b.data)
	return authzResult{ops, err}
}

// violation says what an upstream executed that mcp-authz did not read, "" when it executed
// only operations mcp-authz read (each at most as often as read). Executing fewer is no
// bypass: a batch member the upstream refused, a notification (no request dispatch).
// A resource handler's URI is left out: the SDKs hand it over parsed as a URL (normalized),
// and the dispatch record already holds the URI as the SDK read it from the body.
func violation(ops []authz.Operation, exec []execution) string {
	for _, via := range []string{"dispatch", "handler"} {
		left := slices.Clone(ops)
		for _, e := range exec {
			if e.Via != via {
				continue
			}
			if e.IllFormed || e.NonString {
				return fmt.Sprintf("%s of %s: a name mcp-authz cannot have read", via, describe([]execution{e}))
			}
			i := slices.IndexFunc(left, func(o authz.Operation) bool {
				if o.Method != e.Method {
					return false
				}
				if via == "handler" && strings.HasPrefix(e.Method, "resources/") {
					return true
				}
				return o.Name == nameOrEmpty(e)
			})
			if i < 0 {
				return fmt.Sprintf("%s of %s", via, describe([]execution{e}))
			}
			left = slices.Delete(left, i, i+1)
		}
	}
	return ""
}

func nameOrEmpty(e execution) string {
	if e.Name == nil {
		return ""
	}
	return *e.Name
}

func describe(exec []execution) string {
	var parts []string
	for _, e := range exec {
		if e.Via != "dispatch" {
			continue
		}
		s := short(e.Method)
		switch {
		case e.NonString:
			s += "(non-string " + *e.Name + ")"
		case e.Name != nil:
			s += "(" + short(*e.Name) + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " ")
}

// canaryBody: a request every upstream must execute, before and after a worker's bodies.
// The 2026-07-28 revision has no ping, so a modern target gets tools/list.
func canaryBody(tg *target) ([]byte, []authz.Operation) {
	if tg.sep2243 {
		return []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + envelope + `}}`), []authz.Operation{{Method: "tools/list"}}
	}
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), []authz.Operation{{Method: "ping"}}
}

func caseID(tg *target, i int) string { return tg.key + "#" + strconv.Itoa(i) }

func canaryCase(tg *target, w int, when string) string {
	return fmt.Sprintf("%s#canary-%s-%d", tg.key, when, w)
}

// runWorker sends bodies w, w+workers, … to tg, between two canary pings.
func runWorker(ctx context.Context, client *http.Client, tg *target, w int, bodies []body, reads []authzResult, out []result) error {
	var session string
	if tg.session {
		var err error
		if session, err = initialize(ctx, client, tg, w); err != nil {
			return err
		}
	}
	canary, canaryOps := canaryBody(tg)
	if _, err := post(ctx, client, tg, canaryCase(tg, w, "start"), session, canary, canaryOps); err != nil {
		return fmt.Errorf("canary: %v", err)
	}
	for i := w; i < len(bodies); i += workers {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if tg.sep2243 && !modernSingle(bodies[i].data, reads[i]) {
			continue
		}
		r, err := post(ctx, client, tg, caseID(tg, i), session, bodies[i].data, reads[i].ops)
		if err != nil {
			r.err = err.Error()
		}
		out[i] = r
	}
	if _, err := post(ctx, client, tg, canaryCase(tg, w, "end"), session, canary, canaryOps); err != nil {
		return fmt.Errorf("canary: %v", err)
	}
	return nil
}

func post(ctx context.Context, client *http.Client, tg *target, caseID, session string, data []byte, ops []authz.Operation) (result, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", tg.url, bytes.NewReader(data))
	if err != nil {
		return result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("X-Diff-Case", caseID)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	if tg.sep2243 {
		op := ops[0]
		if !headerSafe(op.Method) {
			return result{}, nil // not sendable as a header: nothing to compare
		}
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", op.Method)
		if _, ok := nameOf[op.Method]; ok {
			v, ok := tg.encodeName(op.Name)
			if !ok {
				return result{}, nil
			}
			req.Header.Set("Mcp-Name", v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{sent: true}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return result{sent: true, status: resp.StatusCode}, nil
}

// initialize opens a 2025-11-25 session as a client does: initialize, then the initialized
// notification.
func initialize(ctx context.Context, client *http.Client, tg *target, w int) (string, error) {
	init := []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"differential","version":"1.0.0"}}}`)
	req, _ := http.NewRequestWithContext(ctx, "POST", tg.url, bytes.NewReader(init))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("X-Diff-Case", fmt.Sprintf("%s#init-%d", tg.key, w))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		return "", fmt.Errorf("initialize: HTTP %d, session %q: %s", resp.StatusCode, sid, b)
	}
	note := []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if _, err := post(ctx, client, tg, fmt.Sprintf("%s#initialized-%d", tg.key, w), sid, note, nil); err != nil {
		return "", err
	}
	return sid, nil
}

// modernSingle: a body for a SEP-2243 target, one mcp-authz reads as one operation (there is
// no header for a batch) and that carries the 2026-07-28 claim (a 2025-shaped body with
// MCP-Protocol-Version 2026-07-28 is refused by every modern SDK before dispatch, which tests
// nothing).
func modernSingle(data []byte, r authzResult) bool {
	return r.err == nil && len(r.ops) == 1 && bytes.Contains(data, []byte("2026-07-28"))
}

// headerSafe: a value Go's HTTP client sends as is (no control characters).
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return s == strings.TrimSpace(s)
}

// sentinelName spells Mcp-Name as SEP-2243 says for values a header cannot carry verbatim:
// =?base64?…?= (the 2.x TypeScript SDK decodes it).
func sentinelName(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=", true
		}
	}
	if s != strings.TrimSpace(s) {
		return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=", true
	}
	return s, true
}

// rawName: the Go SDK v1.8.0 compares Mcp-Name with the body's name byte for byte (it does
// not decode the sentinel), so it gets the name verbatim where a header can carry it.
func rawName(s string) (string, bool) { return s, headerSafe(s) }

// A Node program of this directory, started for the test.
type nodeServer struct {
	base     string
	upstream *upstream
}

func startNode(ctx context.Context, t *testing.T, dir, node, script string) *nodeServer {
	t.Helper()
	logPath := filepath.Join(dir, script+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close() // the child has its own copy
	cmd := exec.CommandContext(ctx, node, script, "0")
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s stderr, last lines:\n%s", script, tail(string(b), 30))
		}
	})
	select {
	case l := <-lines:
		var hello struct {
			Port int `json:"port"`
		}
		if err := json.Unmarshal([]byte(l), &hello); err != nil || hello.Port == 0 {
			t.Fatalf("%s printed %q, want {\"port\":N}", script, l)
		}
		base := "http://127.0.0.1:" + strconv.Itoa(hello.Port)
		return &nodeServer{base: base, upstream: &upstream{name: script, executed: func(ctx context.Context) (map[string][]execution, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/executed", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			var m map[string][]execution
			return m, json.NewDecoder(resp.Body).Decode(&m)
		}}}
	case <-exited:
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%s exited at start (%v):\n%s", script, cmd.ProcessState, b)
	case <-ctx.Done():
		t.Fatalf("%s did not start: %v", script, ctx.Err())
	}
	return nil
}

// goSDKVersion: the version go.mod requires, the one this test was built with.
func goSDKVersion(t *testing.T) string {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "github.com/modelcontextprotocol/go-sdk" {
			return f[1]
		}
	}
	t.Fatal("go.mod does not require github.com/modelcontextprotocol/go-sdk")
	return ""
}

func sortedVersions(v map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if strings.Contains(k, "modelcontextprotocol") {
			out = append(out, k+" "+v[k])
		}
	}
	return out
}

func countSent(results [][]result) int {
	n := 0
	for _, rs := range results {
		for _, r := range rs {
			if r.sent {
				n++
			}
		}
	}
	return n
}

// report: the classes of bodies on which the upstreams disagree with each other (what they
// executed), and what mcp-authz made of them.
func report(bodies []body, reads []authzResult, targets []*target, results [][]result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Bodies on which the upstreams executed different things (\"-\": not sent to that target):\n")
	for ti, tg := range targets {
		fmt.Fprintf(&b, "  [%d] %s\n", ti, tg.desc)
	}
	type agg struct {
		n       int
		example int
	}
	gen := map[string]*agg{}
	legend := "Generated bodies with disagreement, by mcp-authz's verdict and what each target did\n" +
		"(= executed exactly what mcp-authz read, < executed part of it, 0 executed nothing, ! executed\n" +
		"something else, x executed something of a body mcp-authz denies, E transport error, - not sent):\n"

	for i, bd := range bodies {
		sigs := make([]string, len(targets))
		distinct := map[string]bool{}
		for ti := range targets {
			r := results[ti][i]
			switch {
			case !r.sent:
				sigs[ti] = "-"
			case r.err != "":
				sigs[ti] = "error: " + r.err
				distinct[sigs[ti]] = true
			default:
				sigs[ti] = describe(r.exec)
				distinct[sigs[ti]] = true
			}
		}
		if len(distinct) < 2 {
			continue
		}
		if strings.HasPrefix(bd.class, "gen: ") {
			verdict := "accepts"
			if reads[i].err != nil {
				verdict = "denies "
			}
			syms := make([]string, len(targets))
			for ti := range targets {
				syms[ti] = symbol(results[ti][i], reads[i])
			}
			k := verdict + "  " + strings.Join(syms, " ")
			a := gen[k]
			if a == nil {
				a = &agg{example: i}
				gen[k] = a
			}
			a.n++
			continue
		}
		fmt.Fprintf(&b, "\n%s\n  body: %s\n  mcp-authz: %s\n", bd.class, quote(bd.data), authzSays(reads[i]))
		for ti := range targets {
			fmt.Fprintf(&b, "  [%d] %s\n", ti, sigs[ti])
		}
	}
	if len(gen) > 0 {
		b.WriteString("\n" + legend)
		for _, k := range slices.Sorted(maps.Keys(gen)) {
			a := gen[k]
			ex := bodies[a.example]
			fmt.Fprintf(&b, "  %s  %4d  e.g. (%s) %s\n", k, a.n, strings.TrimPrefix(ex.class, "gen: "), quote(ex.data))
		}
	}
	return b.String()
}

// symbol: what a target did with a body, relative to what mcp-authz read (see the legend).
func symbol(r result, read authzResult) string {
	var dispatched []execution
	for _, e := range r.exec {
		if e.Via == "dispatch" {
			dispatched = append(dispatched, e)
		}
	}
	switch {
	case !r.sent:
		return "-"
	case r.err != "":
		return "E"
	case len(dispatched) == 0:
		return "0"
	case read.err != nil:
		return "x"
	case violation(read.ops, r.exec) != "":
		return "!"
	case len(dispatched) == len(read.ops):
		return "="
	}
	return "<"
}

func authzSays(r authzResult) string {
	if r.err != nil {
		return "denies (" + r.err.Error() + ")"
	}
	var parts []string
	for _, o := range r.ops {
		s := short(o.Method)
		if _, ok := nameOf[o.Method]; ok {
			s += "(" + short(o.Name) + ")"
		}
		parts = append(parts, s)
	}
	return "accepts " + strings.Join(parts, " ")
}

// short quotes s, cut to a readable length.
func short(s string) string {
	if len(s) > 60 {
		return strconv.Quote(s[:40]) + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

func quote(b []byte) string {
	if len(b) > 240 {
		return strconv.Quote(string(b[:200])) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
