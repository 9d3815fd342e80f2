package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mcp-authz/mcp-authz/internal/config"
)

// blackHole accepts connections and never answers: an IdP that hangs.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// waitUntil polls cond; the deadline only stops a broken test from hanging.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A hung IdP is answered by mcp-authz itself (the configured status with its challenge) before
// the proxy gives up: the proxy's deadline arrives with the CheckRequest (grpc-timeout), and
// without this the caller got DEADLINE_EXCEEDED, which Envoy turns into a bare 503.
func TestCheckAnswersBeforeTheProxyGivesUp(t *testing.T) {
	idp := blackHole(t)
	for _, tc := range []struct {
		name          string
		mod           func(*config.Config)
		token         string
		proxyDeadline time.Duration
	}{
		// A JWT whose keys are being fetched: the fetch may take 10s; check_timeout does not.
		{"jwt keys hang, check_timeout", func(c *config.Config) {
			c.CheckTimeout = config.Duration(200 * time.Millisecond)
			c.Issuers[0].Introspection.Timeout = config.Duration(100 * time.Millisecond)
		}, handJWT(map[string]any{"alg": "RS256", "kid": "k1", "typ": "at+jwt"},
			map[string]any{"iss": idp, "aud": resource, "exp": time.Now().Add(time.Hour).Unix()},
			func(string) []byte { return []byte("sig") }), 5 * time.Second},
		// Defaults (introspection 2s) behind a proxy whose own timeout is shorter: the answer
		// comes before the proxy's deadline.
		{"introspection hangs, proxy deadline first", nil, "opaque-token-never-answered", 1 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := replica(t, idp, nil, tc.mod)
			ctx, cancel := context.WithTimeout(context.Background(), tc.proxyDeadline)
			defer cancel()
			resp, err := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr())).Check(ctx,
				checkReq("/mcp", map[string]string{"authorization": "Bearer " + tc.token}))
			if err != nil {
				t.Fatalf("no answer before the proxy's deadline (%s): %v", tc.proxyDeadline, err)
			}
			d := resp.GetDeniedResponse()
			if d.GetStatus().GetCode() != 401 || !strings.Contains(respHeader(d.GetHeaders(), "www-authenticate"), `error="invalid_token"`) {
				t.Errorf("want the unavailable answer (401 with its challenge), got %v", resp)
			}
		})
	}
}

func healthOf(t *testing.T, addr string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	r, err := healthpb.NewHealthClient(dial(t, addr)).Check(context.Background(), &healthpb.HealthCheckRequest{Service: authzServiceName})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetStatus()
}

func readyz(t *testing.T, s *Service) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// During shutdown.drain the replica says NOT_SERVING (gRPC health, /readyz 503) so that Envoy
// and Kubernetes stop sending to it, and meanwhile still answers every Check it gets, on old
// connections and new ones.
func TestDrainAnswersWhileNotServing(t *testing.T) {
	a, srv := as(t)
	r := replica(t, srv.URL, nil, func(c *config.Config) {
		d := config.Duration(time.Hour) // ended below by cancelling, not by waiting
		c.Shutdown.Drain = &d
	})
	tok := a.IssueOpaque("dora", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r, tok)) {
		t.Fatal("denied before the drain")
	}
	old := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr()))
	if _, err := old.Check(context.Background(), checkReq("/mcp", nil)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Drain(ctx) }()
	waitUntil(t, "health NOT_SERVING", func() bool { return healthOf(t, r.GRPCAddr()) == healthpb.HealthCheckResponse_NOT_SERVING })
	if code, body := readyz(t, r); code != http.StatusServiceUnavailable || body["serving"] != false {
		t.Errorf("/readyz while draining: %d %v", code, body)
	}
	if !allowed(checkToken(t, r, tok)) {
		t.Error("a Check on a new connection was not answered during the drain")
	}
	if resp, err := old.Check(context.Background(), checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok})); err != nil || !allowed(resp) {
		t.Errorf("a Check on an old connection during the drain: %v %v", resp, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Drain returned before its period or its context ended: %v", err)
	default:
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("Drain cut short by its context returned nil")
	}
}

// A drain of 0s (or a service never drained) still stops gracefully.
func TestShutdownWithoutDrain(t *testing.T) {
	_, srv := as(t)
	r := replica(t, srv.URL, nil, func(c *config.Config) {
		var zero config.Duration
		c.Shutdown.Drain = &zero
	})
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// /readyz names every configured issuer, the introspection-only ones included, and says when
// an issuer's introspection endpoint is failing.
func TestReadyzCoversEveryVerifier(t *testing.T) {
	a, srv := as(t)
	down := httptest500(t)
	r := replica(t, srv.URL, nil, func(c *config.Config) {
		no := false
		c.Issuers[0].VerifyJWT = &no
		c.Issuers = append(c.Issuers, config.Issuer{Issuer: down, VerifyJWT: &no, Introspection: &config.Introspection{
			ClientID: "rs", ClientSecret: config.Secret{Env: "RS_SECRET"}, Endpoint: down + "/introspect"}})
		c.Resources[0].Issuers = []string{srv.URL, down}
		c.Resources[0].AuthorizationServers = []string{srv.URL}
	})
	issuers := func() map[string]any {
		_, body := readyz(t, r)
		m, _ := body["issuers"].(map[string]any)
		return m
	}
	got := issuers()
	for _, is := range []string{srv.URL, down} {
		if _, ok := got[is]; !ok {
			t.Errorf("/readyz leaves out the introspection-only issuer %s: %v", is, got)
		}
	}
	// Both are asked: the good issuer answers, the other fails.
	if !allowed(checkToken(t, r, a.IssueOpaque("ines", "c", []string{"mcp:tools"}, resource, time.Hour))) {
		t.Fatal("good opaque token denied")
	}
	checkToken(t, r, "unknown-opaque-token")
	got = issuers()
	good, _ := got[srv.URL].(map[string]any)
	bad, _ := got[down].(map[string]any)
	if good["ready"] != true {
		t.Errorf("working introspection issuer: %v", good)
	}
	if bad["ready"] != false || !strings.Contains(bad["error"].(string), "503") {
		t.Errorf("failing introspection issuer: %v", bad)
	}
}

// httptest500 is an authorization server whose every answer is 503.
func httptest500(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// syncBuf is a log destination tests read while the service writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A reload applies what it can live (log.level, check_timeout, shutdown.drain) and names every
// changed field it cannot, each as needing a restart; nothing is silently ignored.
func TestReloadNamesWhatNeedsARestart(t *testing.T) {
	_, srv := as(t)
	var logs syncBuf
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))
	r := replicaWith(t, srv.URL, nil, nil, Options{Logger: log, LogLevel: level})
	if level.Level() != slog.LevelInfo {
		t.Fatalf("log level %v at start, want the configured info", level.Level())
	}
	next := *r.live.Load().cfg
	next.Log.Level = "debug"
	next.Log.Format = "text"
	next.Tracing = config.Tracing{Exporter: "otlp-grpc", Endpoint: "127.0.0.1:4317", Insecure: true}
	next.Listen.HTTP = "127.0.0.1:1"
	next.Cache.L1Size = 7
	next.CheckTimeout = config.Duration(time.Second)
	next.ApplyDefaults()
	if err := r.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log.level debug not applied live: %v", level.Level())
	}
	out := logs.String()
	for _, key := range []string{"log.format", "tracing.exporter", "tracing.endpoint", "tracing.insecure", "tracing.sample_ratio", "listen.http", "cache.l1_size"} {
		if !strings.Contains(out, key) {
			t.Errorf("reload does not name %s as needing a restart:\n%s", key, out)
		}
	}
	for _, key := range []string{"log.level", "check_timeout"} {
		if strings.Contains(out, key) {
			t.Errorf("reload names %s as needing a restart, but it applies live:\n%s", key, out)
		}
	}
	if r.live.Load().cfg.CheckTimeout.D() != time.Second {
		t.Error("check_timeout not live")
	}
}

// Serving the metadata document is not a denial: it must not count in the deny rate.
func TestMetadataIsNotCountedAsDenial(t *testing.T) {
	_, srv := as(t)
	r := replica(t, srv.URL, nil, nil)
	resp, err := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr())).Check(context.Background(), checkReq("/.well-known/oauth-protected-resource/mcp", nil))
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 200 {
		t.Fatalf("metadata through Check: %v %v", resp, err)
	}
	m, err := http.Get("http://" + r.HTTPAddr() + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	m.Body.Close()
	mr, err := http.Get("http://" + r.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	metrics := string(b)
	if strings.Contains(metrics, `decision="deny",reason="metadata"`) {
		t.Errorf("metadata answers counted as denials:\n%s", grepLines(metrics, "mcp_authz_decisions_total"))
	}
	if !strings.Contains(metrics, "mcp_authz_metadata_requests_total 2") {
		t.Errorf("metadata answers not counted on their own:\n%s", grepLines(metrics, "metadata"))
	}
}

// budgetCtx behaves as context.WithDeadline does for everything that waits on it.
func TestBudgetContext(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	bc := &budgetCtx{Context: parent, deadline: time.Now().Add(20 * time.Millisecond)}
	if dl, ok := bc.Deadline(); !ok || !dl.Equal(bc.deadline) {
		t.Fatal("deadline")
	}
	if bc.Value(key{}) != "v" || bc.made.Load() {
		t.Fatal("a value lookup made the timer")
	}
	child, cancel := context.WithCancel(bc)
	defer cancel()
	<-child.Done()
	if !errors.Is(bc.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) ||
		!errors.Is(context.Cause(bc), context.DeadlineExceeded) || bc.Value(key{}) != "v" {
		t.Errorf("after the deadline: %v %v %v", bc.Err(), child.Err(), context.Cause(bc))
	}
	bc.stop()

	// Stopped before anything waited: later waiters see a finished context, not a panic.
	early := &budgetCtx{Context: parent, deadline: time.Now().Add(time.Hour)}
	early.stop()
	<-early.Done()
	if early.Err() == nil {
		t.Error("a stopped budget is not done")
	}
	// Its parent's cancellation reaches it.
	pctx, pcancel := context.WithCancel(context.Background())
	linked := &budgetCtx{Context: pctx, deadline: time.Now().Add(time.Hour)}
	pcancel()
	<-linked.Done()
	if !errors.Is(linked.Err(), context.Canceled) {
		t.Errorf("parent cancelled: %v", linked.Err())
	}
	linked.stop()
}
