package service

import (
	"bytes"
	"net"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"context"
	"encoding/json"
	"fmt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

const resource = "http://localhost:8080/mcp"

// as starts a real authorization server (demoas) behind httptest.
func as(t *testing.T) (*demoas.Server, *httptest.Server) {
	t.Helper()
	a, srv := asServerTB(t)
	return a, srv
}

func asServer(tb testing.TB) (*demoas.Server, string) {
	a, srv := asServerTB(tb)
	return a, srv.URL
}

func asServerTB(t testing.TB) (*demoas.Server, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	a := demoASOn(t, srv)
	// Tests may wrap it (delays, faults) before their first request.
	srv.Config.Handler = a.Handler()
	return a, srv
}

// demoASOn is the demo AS that the tests' replicas trust, issuing as srv; the caller serves its
// Handler there.
func demoASOn(t testing.TB, srv *httptest.Server) *demoas.Server {
	t.Helper()
	a, err := demoas.New(demoas.Config{
		Issuer:               srv.URL,
		Clients:              []demoas.Client{{ID: "c", Secret: "s", Scopes: []string{"mcp:tools"}}},
		Resources:            []string{resource},
		DefaultResource:      resource,
		IntrospectionClients: map[string]string{"rs": "rs-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// replica starts one mcp-authz with the given Redis (nil: none), as a replica would run.
func replica(t *testing.T, issuer string, redisAddrs []string, mod func(*config.Config)) *Service {
	t.Helper()
	return replicaLog(t, issuer, redisAddrs, mod, nil)
}

func replicaOpts(t *testing.T, issuer string, mod func(*config.Config), o Options) *Service {
	t.Helper()
	return replicaWith(t, issuer, nil, mod, o)
}

func replicaLog(t *testing.T, issuer string, redisAddrs []string, mod func(*config.Config), log *slog.Logger) *Service {
	t.Helper()
	return replicaWith(t, issuer, redisAddrs, mod, Options{Logger: log})
}

func replicaWith(t testing.TB, issuer string, redisAddrs []string, mod func(*config.Config), o Options) *Service {
	t.Helper()
	cfg := &config.Config{
		Listen: config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
		Dev:    config.Dev{AllowHTTP: true},
		Cache:  config.Cache{Secret: config.Secret{Env: "CACHE_SECRET"}},
		Admin:  config.Admin{Token: config.Secret{Env: "ADMIN_TOKEN"}},
		Issuers: []config.Issuer{{Issuer: issuer, Introspection: &config.Introspection{
			ClientID: "rs", ClientSecret: config.Secret{Env: "RS_SECRET"}}}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:tools"}}}},
	}
	if redisAddrs != nil {
		cfg.Cache.Redis = &config.Redis{Addrs: redisAddrs, Timeout: config.Duration(200 * time.Millisecond)}
	}
	if mod != nil {
		mod(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CACHE_SECRET": strings.Repeat("k", 32), "ADMIN_TOKEN": "admin-token", "RS_SECRET": "rs-secret"}
	o.Getenv = func(k string) string { return env[k] }
	return startService(t, cfg, o)
}

// startService starts a Service on cfg and shuts it down when the test ends.
func startService(t testing.TB, cfg *config.Config, o Options) *Service {
	t.Helper()
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func checkToken(t *testing.T, s *Service, tok string) *authv3.CheckResponse {
	t.Helper()
	resp, err := authv3.NewAuthorizationClient(dial(t, s.GRPCAddr())).Check(context.Background(), checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func allowed(r *authv3.CheckResponse) bool {
	return r.GetStatus().GetCode() == 0 && r.GetOkResponse() != nil
}

func revoke(t *testing.T, s *Service, form url.Values, adminToken string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr()+"/admin/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Two replicas sharing one real Redis: an opaque token is introspected once and allowed by
// both; revocation evicts it on both; a tampered Redis entry is refused; Redis killed → the
// replicas keep deciding.
func TestReplicasShareRedis(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	r1 := replica(t, srv.URL, []string{rs.Addr()}, nil)
	r2 := replica(t, srv.URL, []string{rs.Addr()}, nil)

	tok := a.IssueOpaque("alice", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r1, tok)) {
		t.Fatal("replica 1 denied a valid opaque token")
	}
	if !allowed(checkToken(t, r2, tok)) || !allowed(checkToken(t, r2, tok)) {
		t.Fatal("replica 2 denied a valid opaque token")
	}
	if n := a.Counts().Introspect; n != 1 {
		t.Errorf("introspected %d times for two replicas; want 1 (shared through Redis)", n)
	}

	// The Redis keys never contain the token.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	keys, _ := rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		v, _ := rdb.Get(context.Background(), k).Result()
		if strings.Contains(k, tok) || strings.Contains(v, tok) {
			t.Fatal("the token is stored in Redis")
		}
	}

	// Revocation: admin auth required; then evicted on both replicas, so the next check goes
	// to the AS, which now says inactive.
	if code := revoke(t, r1, url.Values{"token": {tok}}, ""); code != 401 {
		t.Errorf("revoke without admin token: %d", code)
	}
	if code := revoke(t, r1, url.Values{"token": {tok}}, "wrong"); code != 401 {
		t.Errorf("revoke with wrong admin token: %d", code)
	}
	a.Revoke(tok)
	if code := revoke(t, r1, url.Values{"token": {tok}}, "admin-token"); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for allowed(checkToken(t, r2, tok)) {
		if time.Now().After(deadline) {
			t.Fatal("replica 2 still allows a revoked token")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if allowed(checkToken(t, r1, tok)) {
		t.Error("replica 1 still allows a revoked token")
	}

	// A tampered entry: rewrite every value in Redis; the next replica to read refuses it and
	// asks the AS again.
	tok2 := a.IssueOpaque("bob", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r1, tok2)) {
		t.Fatal("tok2 denied")
	}
	keys, _ = rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		v, err := rdb.Get(context.Background(), k).Bytes()
		if err != nil {
			continue
		}
		v[len(v)-1] ^= 0xff // in the MAC: the value still decodes, and only the MAC can tell
		rdb.Set(context.Background(), k, v, time.Hour)
	}
	before := a.Counts().Introspect
	r3 := replica(t, srv.URL, []string{rs.Addr()}, nil)
	if !allowed(checkToken(t, r3, tok2)) {
		t.Fatal("tok2 denied after tampering; a bad MAC must be a miss, then the AS answers")
	}
	if a.Counts().Introspect != before+1 {
		t.Errorf("tampered entry was used: introspections %d → %d", before, a.Counts().Introspect)
	}
	if st := r3.cache.Stats(); st.BadMAC == 0 {
		t.Errorf("bad MAC not counted: %+v", st)
	}

	// Redis down: decisions go on from L1 and the AS.
	rs.Kill()
	if !allowed(checkToken(t, r1, tok2)) {
		t.Error("cached token denied with Redis down")
	}
	tok3 := a.IssueOpaque("carol", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r2, tok3)) {
		t.Error("new token denied with Redis down")
	}
	ready, err := http.Get("http://" + r2.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Cache struct {
			RedisUp bool `json:"redis_up"`
		} `json:"cache"`
	}
	json.NewDecoder(ready.Body).Decode(&st)
	ready.Body.Close()
	if st.Cache.RedisUp {
		t.Error("/readyz says Redis is up while it is down")
	}
}

// A token whose exp is sooner than the cache's max TTL stops being accepted at exp, cached or not.
func TestCachedTokenExpiresAtExp(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	r := replica(t, srv.URL, []string{rs.Addr()}, func(c *config.Config) {
		c.Cache.MaxTTL = config.Duration(time.Hour)
		c.ClockSkew = config.Duration(time.Nanosecond)
	})
	tok := a.IssueOpaque("dave", "c", []string{"mcp:tools"}, resource, 1500*time.Millisecond)
	if !allowed(checkToken(t, r, tok)) {
		t.Fatal("denied")
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	keys, _ := rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		if ttl, _ := rdb.PTTL(context.Background(), k).Result(); ttl > 1500*time.Millisecond {
			t.Errorf("Redis TTL %v outlives the token's exp", ttl)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for allowed(checkToken(t, r, tok)) {
		if time.Now().After(deadline) {
			t.Fatal("still allowed long after exp")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// JWKS endpoint down → the same JWT is accepted through introspection where configured; all
// IdPs down → 401 invalid_token, never a 5xx.
func TestFallbackAndOutage(t *testing.T) {
	a, srv := as(t)
	tok, err := a.Mint(map[string]any{"iss": srv.URL, "sub": "erin", "aud": resource, "client_id": "c",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The introspection endpoint lives on another server, so the AS's JWKS can fail alone.
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.PostForm.Get("token") == tok {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"active":true,"iss":%q,"sub":"erin","aud":%q,"scope":"mcp:tools","exp":%d}`, srv.URL, resource, time.Now().Add(time.Hour).Unix())
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	}))
	defer intro.Close()
	a.SetDown(true)
	r := replica(t, srv.URL, nil, func(c *config.Config) {
		c.Issuers[0].Introspection.Endpoint = intro.URL
		c.Issuers[0].FallbackToIntrospection = true
		c.Admin = config.Admin{}
	})
	if !allowed(checkToken(t, r, tok)) {
		t.Fatal("JWKS down: the JWT was not accepted through introspection")
	}
	// Now everything is down.
	intro.Close()
	resp := checkToken(t, r, "opaque-token-never-seen")
	if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 401 || !strings.Contains(respHeader(d.GetHeaders(), "www-authenticate"), `error="invalid_token"`) {
		t.Errorf("all IdPs down: %v", resp)
	}
}

// Concurrent misses for one token coalesce into one IdP call.
func TestConcurrentMissesCoalesce(t *testing.T) {
	a, srv := as(t)
	r := replica(t, srv.URL, nil, nil)
	tok := a.IssueOpaque("frank", "c", []string{"mcp:tools"}, resource, time.Hour)
	client := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr()))
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			resp, err := client.Check(context.Background(), checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok}))
			if err == nil && !allowed(resp) {
				err = fmt.Errorf("denied: %v", resp)
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := a.Counts().Introspect; n != 1 {
		t.Errorf("%d introspection calls for 20 concurrent Checks of one token; want 1", n)
	}
	// A garbage token is remembered as invalid: a flood does not reach the AS.
	for range 10 {
		checkToken(t, r, "garbage-token")
	}
	if n := a.Counts().Introspect; n != 2 {
		t.Errorf("%d introspection calls after 10 checks of one garbage token; want 2 (negative cache)", n)
	}
}

// A full scenario at debug level: no token, client secret, cache secret or admin token
// appears in the logs.
func TestNoSecretsInLogs(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Spans go to a real OTLP/gRPC receiver, as they would to Jaeger.
	recv, otlpAddr := startOTLPReceiver(t)
	r := replicaWith(t, srv.URL, []string{rs.Addr()}, func(c *config.Config) {
		c.Tracing = config.Tracing{Exporter: "otlp-grpc", Endpoint: otlpAddr, Insecure: true, SampleRatio: 1}
		c.Log.Decisions = "info"
	}, Options{Logger: log})
	jwt, _ := a.Mint(map[string]any{"iss": srv.URL, "sub": "gina", "aud": resource, "client_id": "c",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
	expired, _ := a.Mint(map[string]any{"iss": srv.URL, "sub": "gina", "aud": resource, "exp": 1}, demoas.MintOptions{})
	opaque := a.IssueOpaque("gina", "c", []string{"mcp:tools"}, resource, time.Hour)
	garbage := "garbage-token-value-0123456789"
	for _, tok := range []string{jwt, expired, opaque, garbage, jwt, opaque} {
		checkToken(t, r, tok)
	}
	revoke(t, r, url.Values{"token": {opaque}}, "admin-token")
	rs.Kill()
	checkToken(t, r, "another-opaque-token-abcdef")
	a.SetDown(true)
	checkToken(t, r, "yet-another-token-ghijkl")
	resp, err := http.Get("http://" + r.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.Shutdown(ctx) // flushes the spans
	recv.mu.Lock()
	var spans strings.Builder
	for _, sp := range recv.spans {
		spans.WriteString(sp.String())
	}
	nSpans := len(recv.spans)
	recv.mu.Unlock()
	if logs.Len() == 0 || nSpans < 8 || metrics.Len() == 0 || !strings.Contains(logs.String(), `"msg":"decision"`) {
		t.Fatalf("captured %d bytes of logs, %d spans, %d bytes of metrics: the test would prove nothing", logs.Len(), nSpans, metrics.Len())
	}
	for name, secret := range map[string]string{
		"jwt": jwt, "jwt signature": jwt[strings.LastIndexByte(jwt, '.')+1:], "expired jwt": expired,
		"opaque": opaque, "garbage": garbage, "another": "another-opaque-token-abcdef",
		"client secret": "rs-secret", "cache secret": strings.Repeat("k", 32), "admin token": "admin-token",
	} {
		for where, text := range map[string]string{"logs": logs.String(), "spans": spans.String(), "metrics": metrics.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in the %s", name, where)
			}
		}
	}
}

// /metrics counts decisions by resource, decision and reason, and cache lookups by tier.
func TestMetrics(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	r := replica(t, srv.URL, []string{rs.Addr()}, nil)
	tok := a.IssueOpaque("hank", "c", []string{"mcp:tools"}, resource, time.Hour)
	checkToken(t, r, tok)
	checkToken(t, r, tok)
	checkToken(t, r, "not-a-valid-token")
	authv3.NewAuthorizationClient(dial(t, r.GRPCAddr())).Check(context.Background(), checkReq("/mcp", nil))
	// One revocation remembered, and one forged announcement (no MAC) refused.
	other := a.IssueOpaque("hope", "c", []string{"mcp:tools"}, resource, time.Hour)
	if code := revoke(t, r, url.Values{"token": {other}}, "admin-token"); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	if err := rdb.Publish(context.Background(), "mcp-authz:v5:revoke", "forged").Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the forged announcement to be refused", func() bool { return r.cache.Stats().AnnouncementsRejected == 1 })
	resp, err := http.Get("http://" + r.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	m := body.String()
	for _, want := range []string{
		`mcp_authz_decisions_total{decision="allow",reason="allow",resource="` + resource + `"} 2`,
		`mcp_authz_decisions_total{decision="deny",reason="invalid_token",resource="` + resource + `"} 1`,
		`mcp_authz_decisions_total{decision="deny",reason="missing_token",resource="` + resource + `"} 1`,
		`mcp_authz_cache_requests_total{result="hit",tier="l1"} 1`,
		`mcp_authz_cache_requests_total{result="miss",tier="redis"} 2`,
		`mcp_authz_redis_up 1`,
		`mcp_authz_check_duration_seconds_count{decision="allow"} 2`,
		// Discovery of the introspection endpoint, then the two introspections.
		`mcp_authz_idp_requests_total{issuer="` + srv.URL + `",kind="introspection",outcome="2xx"} 3`,
		`mcp_authz_idp_request_duration_seconds_count{issuer="` + srv.URL + `",kind="introspection"} 3`,
		`mcp_authz_jwks_stale_keys_total{issuer="` + srv.URL + `"} 0`,
		`mcp_authz_jwks_refreshes_total{issuer="` + srv.URL + `",outcome="ok"} 1`,
		`mcp_authz_cache_stale_used_total 0`,
		`mcp_authz_introspection_breaker_open{issuer="` + srv.URL + `"} 0`,
		`mcp_authz_cache_revocations_remembered 1`,
		`mcp_authz_cache_revocation_announcements_rejected_total 1`,
		`mcp_authz_cache_revoked_refused_total 0`,
		`mcp_authz_cache_revocations_forgotten_total 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s\n%s", want, grepLines(m, "mcp_authz_idp"))
		}
	}
	// The Grafana dashboard queries exactly the metrics served: none it names is missing, and
	// none served is left off it.
	dash, err := os.ReadFile("../../deploy/grafana/mcp-authz-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("deploy/grafana/mcp-authz-dashboard.json is not JSON")
	}
	family := regexp.MustCompile(`mcp_authz_[a-z0-9_]+`)
	served := map[string]bool{}
	for _, line := range strings.Split(m, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok && strings.HasPrefix(f, "mcp_authz_") {
			served[strings.Fields(f)[0]] = true
		}
	}
	used := map[string]bool{}
	for _, name := range family.FindAllString(string(dash), -1) {
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suf); ok && served[base] {
				name = base
			}
		}
		used[name] = true
		if !served[name] {
			t.Errorf("the dashboard queries %s, which /metrics does not serve", name)
		}
	}
	for name := range served {
		if !used[name] {
			t.Errorf("/metrics serves %s, which the dashboard does not show", name)
		}
	}
	if strings.Contains(m, tok) || strings.Contains(m, "hank") {
		t.Error("a token or subject appears in /metrics")
	}
}

// Reload swaps the configuration atomically; an invalid one changes nothing.
func TestReload(t *testing.T) {
	a, srv := as(t)
	r := replica(t, srv.URL, nil, nil)
	tok := a.IssueOpaque("ivy", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r, tok)) {
		t.Fatal("denied before reload")
	}
	next := *r.live.Load().cfg
	next.Resources = []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:admin"}}}}
	next.ApplyDefaults()
	if err := r.Reload(&next); err != nil {
		t.Fatal(err)
	}
	resp := checkToken(t, r, tok)
	if resp.GetDeniedResponse().GetStatus().GetCode() != 403 || !strings.Contains(respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate"), `scope="mcp:admin"`) {
		t.Errorf("after reload requiring mcp:admin: %v", resp)
	}
	// The HTTP metadata follows the new configuration too.
	m, err := http.Get("http://" + r.HTTPAddr() + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(m.Body)
	m.Body.Close()
	if !strings.Contains(body.String(), "mcp:admin") {
		t.Errorf("metadata after reload: %s", body.String())
	}
	// A configuration that cannot be built is refused; the running one stays.
	bad := next
	bad.Issuers = []config.Issuer{{Issuer: srv.URL, Algorithms: []string{"HS256"}}}
	if err := r.Reload(&bad); err == nil {
		t.Error("reload accepted an HS256 issuer")
	}
	if resp := checkToken(t, r, tok); resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Errorf("a refused reload changed decisions: %v", resp)
	}
}

// One server span per Check, in the client's trace (traceparent forwarded by the proxy in
// the CheckRequest headers), with the decision's attributes and never the token.
func TestTracing(t *testing.T) {
	a, srv := as(t)
	// The AS records the traceparent it receives: the trace must continue into the IdP.
	var seenParent atomic.Value
	seenParent.Store("")
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/introspect") {
			seenParent.CompareAndSwap("", r.Header.Get("traceparent")) // the first Check's call
		}
		inner.ServeHTTP(w, r)
	})
	rd := redistest.Start(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r := replicaWith(t, srv.URL, []string{rd.Addr()}, nil, Options{TracerProvider: tp})
	tok := a.IssueOpaque("jill", "c", []string{"mcp:tools"}, resource, time.Hour)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	client := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr()))
	check := func(hdr map[string]string) {
		t.Helper()
		if _, err := client.Check(context.Background(), checkReq("/mcp", hdr)); err != nil {
			t.Fatal(err)
		}
	}
	check(map[string]string{"authorization": "Bearer " + tok, "traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	check(map[string]string{"authorization": "Bearer " + tok}) // now from L1
	check(map[string]string{"authorization": "Bearer bad-token-for-tracing",
		"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-sampled": "1"})

	var servers []sdktrace.ReadOnlySpan
	byParent := map[string][]string{}
	for _, sp := range rec.Ended() {
		if sp.SpanKind() == trace.SpanKindServer {
			servers = append(servers, sp)
		}
		byParent[sp.Parent().SpanID().String()] = append(byParent[sp.Parent().SpanID().String()], sp.Name())
		for _, kv := range sp.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, tok) || strings.Contains(v, "bad-token-for-tracing") || strings.Contains(v, "jill") {
				t.Errorf("span %s attribute %s carries a token or the subject", sp.Name(), kv.Key)
			}
		}
	}
	if len(servers) != 3 {
		t.Fatalf("%d server spans, want one per Check", len(servers))
	}
	attrs := func(sp sdktrace.ReadOnlySpan) map[string]string {
		m := map[string]string{}
		for _, kv := range sp.Attributes() {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}
	// 1: in the caller's W3C trace; children: the cache lookup, Redis commands and the
	// introspection call, whose context reached the AS.
	first := servers[0]
	if first.SpanContext().TraceID().String() != traceID || first.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span not in the caller's trace: trace %s parent %s", first.SpanContext().TraceID(), first.Parent().SpanID())
	}
	at := attrs(first)
	if at["mcp_authz.allow"] != "true" || at["mcp_authz.reason"] != "allow" || at["mcp_authz.issuer"] != srv.URL ||
		at["mcp_authz.token_source"] != "introspection" || at["mcp_authz.cache.tier"] != "idp" {
		t.Errorf("attributes %v", at)
	}
	kids := strings.Join(byParent[first.SpanContext().SpanID().String()], ",")
	for _, want := range []string{"cache.lookup", "introspection POST"} {
		if !strings.Contains(kids, want) {
			t.Errorf("children of the first Check %q lack %q", kids, want)
		}
	}
	if got := seenParent.Load().(string); !strings.Contains(got, traceID) {
		t.Errorf("the AS received traceparent %q, not in trace %s", got, traceID)
	}
	redisKids := 0
	for _, sp := range rec.Ended() {
		if sp.SpanContext().TraceID().String() == traceID && sp.SpanKind() == trace.SpanKindClient && !strings.HasPrefix(sp.Name(), "introspection") {
			redisKids++
		}
	}
	if redisKids == 0 {
		t.Error("no Redis command spans in the first Check's trace")
	}
	// 2: a root span (no trace context), answered from L1.
	if servers[1].Parent().IsValid() || attrs(servers[1])["mcp_authz.cache.tier"] != "l1" {
		t.Errorf("second Check: parent %v, attributes %v", servers[1].Parent(), attrs(servers[1]))
	}
	// 3: B3 context from a Zipkin-traced proxy.
	if got := servers[2].SpanContext().TraceID().String(); got != "80f198ee56343ba864fe8b2a57d3eff7" {
		t.Errorf("B3 trace not continued: %s", got)
	}
}

// otlpReceiver is a real OTLP/gRPC trace endpoint on loopback (the collector's wire API),
// standing in for Jaeger's OTLP port, which is not built in this test run.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	names []string
}

func (o *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				o.names = append(o.names, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// startOTLPReceiver serves a real OTLP/gRPC trace endpoint on loopback until the test ends.
func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recv := &otlpReceiver{}
	g := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(g, recv)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return recv, ln.Addr().String()
}

func TestTracingExportsOverOTLP(t *testing.T) {
	recv, otlpAddr := startOTLPReceiver(t)

	a, srv := as(t)
	cfg := &config.Config{
		Listen:    config.Listen{GRPC: "127.0.0.1:0"},
		Dev:       config.Dev{AllowHTTP: true},
		Tracing:   config.Tracing{Exporter: "otlp-grpc", Endpoint: otlpAddr, Insecure: true, ServiceName: "mcp-authz-test"},
		Issuers:   []config.Issuer{{Issuer: srv.URL}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:tools"}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	tok, _ := a.Mint(map[string]any{"iss": srv.URL, "sub": "kim", "aud": resource, "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
	checkToken(t, s, tok)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	var names []string
	for _, sp := range recv.spans {
		names = append(names, sp.GetName())
		if strings.Contains(sp.String(), tok) || strings.Contains(sp.String(), "kim") {
			t.Error("an exported span carries the token or the subject")
		}
	}
	if !slices.Contains(names, "envoy.service.auth.v3.Authorization/Check") || len(recv.names) == 0 || recv.names[0] != "mcp-authz-test" {
		t.Fatalf("received spans %v from %v", names, recv.names)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// tracing.include_subject puts the verified subject on the Check span, and only then.
func TestTracingSubjectOptIn(t *testing.T) {
	a, srv := as(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r := replicaWith(t, srv.URL, nil, func(c *config.Config) { c.Tracing.IncludeSubject = true }, Options{TracerProvider: tp})
	checkToken(t, r, a.IssueOpaque("kate", "c", []string{"mcp:tools"}, resource, time.Hour))
	for _, sp := range rec.Ended() {
		if sp.SpanKind() != trace.SpanKindServer {
			continue
		}
		for _, kv := range sp.Attributes() {
			if kv.Key == "enduser.id" && kv.Value.AsString() == "kate" {
				return
			}
		}
	}
	t.Error("no enduser.id=kate on the Check span with include_subject")
}

// A token revoked while its introspection is in flight: the answer the AS gave before the
// revocation decides that one Check, but is not cached, so the next Check asks the AS again
// and is denied. (Before, the late answer was stored for cache.max_ttl.)
func TestRevokeDuringVerification(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	// The first introspection is answered by the AS at once, then held until released.
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	h := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/introspect" || !first.CompareAndSwap(true, false) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		close(entered)
		<-release
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	r1 := replica(t, srv.URL, []string{rs.Addr()}, nil)
	tok := a.IssueOpaque("alice", "c", []string{"mcp:tools"}, resource, time.Hour)

	first1 := make(chan *authv3.CheckResponse, 1)
	go func() {
		resp, err := authv3.NewAuthorizationClient(dial(t, r1.GRPCAddr())).Check(context.Background(),
			checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok}))
		if err != nil {
			t.Error(err)
		}
		first1 <- resp
	}()
	<-entered
	a.Revoke(tok)
	if code := revoke(t, r1, url.Values{"token": {tok}}, "admin-token"); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	close(release)
	if !allowed(<-first1) {
		t.Fatal("the Check in flight should follow the AS's answer, given before the revocation")
	}
	if allowed(checkToken(t, r1, tok)) {
		t.Fatal("a revoked token is still allowed: the answer from before the revocation was cached")
	}
	if n := a.Counts().Introspect; n != 2 {
		t.Errorf("introspections = %d, want 2", n)
	}
	if st := r1.cache.Stats(); st.RevokedDrops != 1 {
		t.Errorf("RevokedDrops = %d, want 1", st.RevokedDrops)
	}
}

// Three replicas see a new opaque token at the same moment: one introspects it, the others
// wait for its result in Redis instead of asking the AS too.
func TestReplicasShareColdIntrospection(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	h := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/introspect" {
			time.Sleep(100 * time.Millisecond) // longer than it takes all three to miss
		}
		h.ServeHTTP(w, r)
	})
	var reps []*Service
	for range 3 {
		reps = append(reps, replica(t, srv.URL, []string{rs.Addr()}, nil))
	}
	tok := a.IssueOpaque("alice", "c", []string{"mcp:tools"}, resource, time.Hour)
	var wg sync.WaitGroup
	var denied atomic.Int32
	for _, r := range reps {
		for range 5 {
			wg.Go(func() {
				resp, err := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr())).Check(context.Background(),
					checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok}))
				if err != nil || !allowed(resp) {
					denied.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := denied.Load(); n != 0 {
		t.Fatalf("%d of 15 Checks denied", n)
	}
	if n := a.Counts().Introspect; n != 1 {
		t.Errorf("3 replicas made %d introspection calls for one new token, want 1", n)
	}
	var waited uint64
	for _, r := range reps {
		waited += r.cache.Stats().ClaimsWaited
	}
	if waited != 2 {
		t.Errorf("ClaimsWaited across replicas = %d, want 2", waited)
	}
}
