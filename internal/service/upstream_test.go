package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// The downstream API the upstream MCP server calls with the exchanged token.
const downstreamAPI = "https://api.example.com"

// exchangeAS is a real demo AS (httptest) that knows the MCP resource and the downstream API,
// a caller client "c", mcp-authz as client "mcp-authz" allowed to exchange tokens, and a
// service client "svc" for client credentials.
func exchangeAS(t testing.TB, ttl time.Duration) (*demoas.Server, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	a, err := demoas.New(demoas.Config{
		Issuer: srv.URL,
		Clients: []demoas.Client{
			{ID: "c", Secret: "s", Scopes: []string{"mcp:tools", "api:read"}},
			{ID: "mcp-authz", Secret: "x-secret", TokenExchange: true},
			{ID: "svc", Secret: "svc-secret", Scopes: []string{"api:read"}},
		},
		Resources:            []string{resource, downstreamAPI},
		DefaultResource:      resource,
		IntrospectionClients: map[string]string{"rs": "rs-secret"},
		TokenTTL:             ttl,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = a.Handler()
	return a, srv
}

// callerToken is a JWT for the MCP resource, as the MCP client would present it.
func callerToken(t testing.TB, a *demoas.Server, iss, sub, scope string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, err := a.Mint(map[string]any{"iss": iss, "sub": sub, "aud": resource, "client_id": "c",
		"scope": scope, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": sub + now.String()}, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func secretFile(t testing.TB, v string) config.Secret {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Secret{File: p}
}

func withExchange(t testing.TB, audience string) func(*config.Config) {
	sec := secretFile(t, "x-secret")
	return func(c *config.Config) {
		c.Resources[0].UpstreamCredentials = &config.UpstreamCredentials{TokenExchange: &config.TokenExchange{
			Audience: []string{audience}, Scopes: []string{"api:read", "api:write"}, ActHeader: "x-mcp-act",
			Client: config.TokenClient{ClientID: "mcp-authz", ClientSecret: sec},
		}}
	}
}

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// upstreamToken is the Bearer token the upstream receives, after checking the caller's token
// is nowhere in what the proxy is told to send upstream.
func upstreamToken(t *testing.T, resp *authv3.CheckResponse, caller string) string {
	t.Helper()
	if !allowed(resp) {
		t.Fatalf("denied: %v %s", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
	}
	ok := resp.GetOkResponse()
	for _, h := range ok.GetHeaders() {
		if strings.Contains(h.GetHeader().GetValue(), caller) {
			t.Fatalf("the caller's token reaches the upstream in %s", h.GetHeader().GetKey())
		}
		if h.GetAppendAction() != 2 { // OVERWRITE_IF_EXISTS_OR_ADD
			t.Errorf("%s is not set with OVERWRITE_IF_EXISTS_OR_ADD: %v", h.GetHeader().GetKey(), h.GetAppendAction())
		}
	}
	if contains(ok.GetHeadersToRemove(), "authorization") {
		t.Error("authorization is both set and removed")
	}
	v := respHeader(ok.GetHeaders(), "authorization")
	if !strings.HasPrefix(v, "Bearer ") {
		t.Fatalf("upstream authorization = %q, want the exchanged Bearer token", v)
	}
	return strings.TrimPrefix(v, "Bearer ")
}

// TestTokenExchangeEndToEnd: over real gRPC, against a real AS and a real Redis, the upstream
// gets a token for the downstream API naming the caller (sub) and mcp-authz (act), with only
// the scopes both configured and held, never the caller's token; a second Check and another
// replica reuse it; Redis holds nothing usable; revoking the caller's token stops its use.
func TestTokenExchangeEndToEnd(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := exchangeAS(t, time.Hour)
	r1 := replica(t, srv.URL, []string{rs.Addr()}, withExchange(t, downstreamAPI))
	r2 := replica(t, srv.URL, []string{rs.Addr()}, withExchange(t, downstreamAPI))
	caller := callerToken(t, a, srv.URL, "alice", "mcp:tools api:read", time.Hour)

	resp := checkToken(t, r1, caller)
	up := upstreamToken(t, resp, caller)
	c := claimsOf(t, up)
	if c["aud"] != downstreamAPI || c["sub"] != "alice" || c["scope"] != "api:read" {
		t.Errorf("exchanged token: aud %v sub %v scope %v; want %s alice api:read", c["aud"], c["sub"], c["scope"], downstreamAPI)
	}
	if act, _ := c["act"].(map[string]any); act["sub"] != "mcp-authz" {
		t.Errorf("act = %v, want sub mcp-authz", c["act"])
	}
	if got := respHeader(resp.GetOkResponse().GetHeaders(), "x-mcp-act"); got != `{"sub":"mcp-authz"}` {
		t.Errorf("x-mcp-act = %q", got)
	}
	if got := respHeader(resp.GetOkResponse().GetHeaders(), "x-auth-subject"); got != "alice" {
		t.Errorf("identity header x-auth-subject = %q, want alice (the caller)", got)
	}
	if n := a.Exchanges(); n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
	if up2 := upstreamToken(t, checkToken(t, r1, caller), caller); up2 != up || a.Exchanges() != 1 {
		t.Errorf("second Check: same token %v, exchanges %d; want the cached one", up2 == up, a.Exchanges())
	}
	if up3 := upstreamToken(t, checkToken(t, r2, caller), caller); up3 != up || a.Exchanges() != 1 {
		t.Errorf("other replica: same token %v, exchanges %d; want the one in Redis", up3 == up, a.Exchanges())
	}

	// A Redis reader learns neither token: not in keys, not in values.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), "mcp-authz:xtok:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("exchanged-token keys in Redis: %v %v", keys, err)
	}
	sig := up[strings.LastIndexByte(up, '.')+1:]
	body := strings.Split(up, ".")[1]
	for _, k := range keys {
		v, _ := rdb.Get(context.Background(), k).Result()
		for _, secret := range []string{sig, body, caller, strings.Split(caller, ".")[2]} {
			if strings.Contains(k, secret) || strings.Contains(v, secret) {
				t.Fatalf("Redis key or value %q holds a token", k)
			}
		}
	}

	// Revoking the caller's token: its exchanged token is used no more, on either replica.
	if code := revoke(t, r1, url.Values{"token": {caller}}, "admin-token"); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r2.cache.Stats().EvictionsReceived == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	up4 := upstreamToken(t, checkToken(t, r1, caller), caller) // the JWT is still good at the AS
	if up4 == up || a.Exchanges() != 2 {
		t.Fatalf("after revocation: new token %v, exchanges %d; the old exchanged token must not be used", up4 != up, a.Exchanges())
	}
	if up5 := upstreamToken(t, checkToken(t, r2, caller), caller); up5 == up {
		t.Fatal("the other replica still uses the exchanged token made before the revocation")
	}
}

// TestTokenExchangeFailures: the AS refusing → 403 with a generic description, the AS down →
// the unavailable answer, a caller without any of the scopes → 403 without asking the AS; the
// denials never carry a token or the AS's detail.
func TestTokenExchangeFailures(t *testing.T) {
	a, srv := exchangeAS(t, time.Hour)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	refused := replicaLog(t, srv.URL, nil, withExchange(t, "https://unregistered.example.com"), log)
	caller := callerToken(t, a, srv.URL, "bob", "mcp:tools api:read", time.Hour)
	resp := checkToken(t, refused, caller)
	if allowed(resp) || resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Fatalf("AS refused the exchange: got %v, want 403", resp.GetStatus())
	}
	body := resp.GetDeniedResponse().GetBody()
	if strings.Contains(body, "invalid_target") || strings.Contains(body, caller) || !strings.Contains(body, "upstream service") {
		t.Errorf("refusal body = %s", body)
	}
	if respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate") != "" {
		t.Error("a refused exchange must not send the client into a re-authorization")
	}
	// Remembered briefly: a refused caller does not cost the AS a request per Check.
	n := a.Exchanges()
	checkToken(t, refused, caller)
	if a.Exchanges() != n {
		t.Errorf("a refused exchange was asked again at once (%d → %d)", n, a.Exchanges())
	}

	ok := replicaLog(t, srv.URL, nil, withExchange(t, downstreamAPI), log)
	noScope := callerToken(t, a, srv.URL, "carol", "mcp:tools", time.Hour)
	n = a.Exchanges()
	if r := checkToken(t, ok, noScope); allowed(r) || r.GetDeniedResponse().GetStatus().GetCode() != 403 || a.Exchanges() != n {
		t.Errorf("caller without api:read: %v, exchanges %d → %d; want 403 without an exchange", r.GetStatus(), n, a.Exchanges())
	}

	// Keys and metadata are loaded; then the AS goes down.
	upstreamToken(t, checkToken(t, ok, caller), caller)
	a.SetDown(true)
	fresh := callerToken(t, a, srv.URL, "dave", "mcp:tools api:read", time.Hour)
	r := checkToken(t, ok, fresh)
	if allowed(r) || r.GetDeniedResponse().GetStatus().GetCode() != 401 ||
		!strings.Contains(respHeader(r.GetDeniedResponse().GetHeaders(), "www-authenticate"), "could not be verified right now") {
		t.Fatalf("AS down: %v %v; want the unavailable answer (401)", r.GetStatus(), r.GetDeniedResponse().GetHeaders())
	}
	// The caller whose exchange is cached is still served.
	up := upstreamToken(t, checkToken(t, ok, caller), caller)

	// Debug logs say why, never with a token or the client secret.
	out := logs.String()
	if !strings.Contains(out, "invalid_target") {
		t.Error("the debug log does not say why the AS refused")
	}
	for _, secret := range []string{caller, fresh, noScope, up, "x-secret", strings.Split(caller, ".")[2]} {
		if strings.Contains(out, secret) {
			t.Fatalf("a token or secret is in the logs")
		}
	}
}

// TestTokenExchangeCachedValueExpires: a cached exchanged token is used until shortly before
// its exp, never after; then a new exchange happens.
func TestTokenExchangeCachedValueExpires(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := exchangeAS(t, 100*time.Second)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	r := replicaWith(t, srv.URL, []string{rs.Addr()}, withExchange(t, downstreamAPI), Options{Now: now})
	caller := callerToken(t, a, srv.URL, "erin", "mcp:tools api:read", 2*time.Hour)
	up := upstreamToken(t, checkToken(t, r, caller), caller)
	skew.Store(int64(80 * time.Second))
	if upstreamToken(t, checkToken(t, r, caller), caller) != up || a.Exchanges() != 1 {
		t.Fatal("a cached exchanged token within its lifetime was not reused")
	}
	skew.Store(int64(95 * time.Second)) // inside the refresh margin (10s before exp)
	if upstreamToken(t, checkToken(t, r, caller), caller) == up || a.Exchanges() != 2 {
		t.Fatalf("a cached exchanged token past its deadline was used (exchanges %d)", a.Exchanges())
	}
}

// TestTokenExchangeCoalesces: concurrent Checks of one new caller token on two replicas
// sharing Redis make one exchange between them.
func TestTokenExchangeCoalesces(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := exchangeAS(t, time.Hour)
	// A slow AS: every replica's Checks miss while the first exchange is under way.
	h := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			time.Sleep(100 * time.Millisecond)
		}
		h.ServeHTTP(w, r)
	})
	r1 := replica(t, srv.URL, []string{rs.Addr()}, withExchange(t, downstreamAPI))
	r2 := replica(t, srv.URL, []string{rs.Addr()}, withExchange(t, downstreamAPI))
	// Keys and metadata first, so the race below is about the exchange alone.
	warm := callerToken(t, a, srv.URL, "warm", "mcp:tools api:read", time.Hour)
	upstreamToken(t, checkToken(t, r1, warm), warm)
	upstreamToken(t, checkToken(t, r2, warm), warm)
	base := a.Exchanges()

	caller := callerToken(t, a, srv.URL, "frank", "mcp:tools api:read", time.Hour)
	c1 := authv3.NewAuthorizationClient(dial(t, r1.GRPCAddr()))
	c2 := authv3.NewAuthorizationClient(dial(t, r2.GRPCAddr()))
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := c1
			if i%2 == 1 {
				c = c2
			}
			resp, err := c.Check(context.Background(), checkReq("/mcp", map[string]string{"authorization": "Bearer " + caller}))
			if err == nil && allowed(resp) {
				got[i] = respHeader(resp.GetOkResponse().GetHeaders(), "authorization")
			}
		}()
	}
	wg.Wait()
	for i, g := range got {
		if g == "" || g != got[0] {
			t.Fatalf("Check %d: no credential, or another than the first Check's (empty: %v)", i, g == "")
		}
	}
	if n := a.Exchanges() - base; n != 1 {
		t.Errorf("%d exchanges for 20 concurrent Checks on two replicas, want 1", n)
	}
}

// TestClientCredentialsUpstream: every caller's request carries the resource's one service
// token, fetched once and refreshed before it expires.
func TestClientCredentialsUpstream(t *testing.T) {
	a, srv := exchangeAS(t, time.Hour)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	sec := secretFile(t, "svc-secret")
	r := replicaWith(t, srv.URL, nil, func(c *config.Config) {
		c.Resources[0].UpstreamCredentials = &config.UpstreamCredentials{ClientCredentials: &config.ClientCredentials{
			Issuer: srv.URL, Scopes: []string{"api:read"}, Resource: []string{downstreamAPI},
			Client: config.TokenClient{ClientID: "svc", ClientSecret: sec, AuthMethod: "client_secret_post"},
		}}
	}, Options{Now: now})
	alice := callerToken(t, a, srv.URL, "alice", "mcp:tools", 3*time.Hour)
	bob := callerToken(t, a, srv.URL, "bob", "mcp:tools", 3*time.Hour)
	before := a.Counts().Token
	up := upstreamToken(t, checkToken(t, r, alice), alice)
	if c := claimsOf(t, up); c["sub"] != "svc" || c["aud"] != downstreamAPI {
		t.Errorf("service token sub %v aud %v", c["sub"], c["aud"])
	}
	if upstreamToken(t, checkToken(t, r, bob), bob) != up || a.Counts().Token-before != 1 {
		t.Fatalf("the service token was not shared (token requests %d)", a.Counts().Token-before)
	}
	// Past the refresh point (a fifth of the lifetime, at most a minute, before exp): the
	// current token still serves while a new one is fetched.
	skew.Store(int64(time.Hour - 30*time.Second))
	if upstreamToken(t, checkToken(t, r, alice), alice) != up {
		t.Error("a still-valid service token was not used during its refresh")
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Counts().Token-before < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if upstreamToken(t, checkToken(t, r, alice), alice) == up {
		t.Error("the service token was not refreshed before expiry")
	}
}

// TestStaticUpstream: a static secret in a configured header replaces a client's forged copy,
// which is also removed on public paths; forward-auth hands it over in its answer.
func TestStaticUpstream(t *testing.T) {
	a, srv := exchangeAS(t, time.Hour)
	sec := secretFile(t, "legacy-api-token")
	empty := ""
	r := replica(t, srv.URL, nil, func(c *config.Config) {
		c.Resources[0].PublicPaths = []string{"/mcp/public"}
		c.Resources[0].UpstreamCredentials = &config.UpstreamCredentials{Header: "x-api-key", Prefix: &empty,
			Static: &config.StaticCredential{Value: sec}}
	})
	caller := callerToken(t, a, srv.URL, "alice", "mcp:tools", time.Hour)
	cl := authv3.NewAuthorizationClient(dial(t, r.GRPCAddr()))
	resp, err := cl.Check(context.Background(), checkReq("/mcp", map[string]string{"authorization": "Bearer " + caller, "x-api-key": "forged"}))
	if err != nil || !allowed(resp) {
		t.Fatalf("%v %v", resp.GetStatus(), err)
	}
	ok := resp.GetOkResponse()
	if got := respHeader(ok.GetHeaders(), "x-api-key"); got != "legacy-api-token" {
		t.Errorf("x-api-key = %q", got)
	}
	if !contains(ok.GetHeadersToRemove(), "authorization") {
		t.Error("the caller's token is not removed")
	}
	resp, err = cl.Check(context.Background(), checkReq("/mcp/public/x", map[string]string{"x-api-key": "forged"}))
	if err != nil || !allowed(resp) || !contains(resp.GetOkResponse().GetHeadersToRemove(), "x-api-key") {
		t.Errorf("public path: a client's x-api-key is not removed: %v", resp.GetOkResponse().GetHeadersToRemove())
	}

	req, _ := http.NewRequest("GET", "http://"+r.HTTPAddr()+"/forward-auth", nil)
	req.Header.Set("X-Forwarded-Host", "localhost:8080")
	req.Header.Set("X-Forwarded-Uri", "/mcp")
	req.Header.Set("X-Forwarded-Method", "POST")
	req.Header.Set("Authorization", "Bearer "+caller)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != 200 || hr.Header.Get("X-Api-Key") != "legacy-api-token" || hr.Header.Get("Authorization") != "" {
		t.Errorf("forward-auth: %d, x-api-key %q, authorization %q", hr.StatusCode, hr.Header.Get("X-Api-Key"), hr.Header.Get("Authorization"))
	}
}

// TestTokenExchangeTraced: the exchange is a span under the Check's, with its token-endpoint
// call (kind token_exchange) under it, and no span attribute carries a token.
func TestTokenExchangeTraced(t *testing.T) {
	a, srv := exchangeAS(t, time.Hour)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r := replicaWith(t, srv.URL, nil, withExchange(t, downstreamAPI), Options{TracerProvider: tp})
	caller := callerToken(t, a, srv.URL, "gina", "mcp:tools api:read", time.Hour)
	up := upstreamToken(t, checkToken(t, r, caller), caller)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		byName[sp.Name()] = sp
		for _, kv := range sp.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, up) || strings.Contains(v, caller) {
				t.Fatalf("span %s attribute %s carries a token", sp.Name(), kv.Key)
			}
		}
	}
	x, ok := byName["token_exchange"]
	if !ok {
		t.Fatalf("no token_exchange span among %v", maps.Keys(byName))
	}
	post, ok := byName["token_exchange POST"]
	if !ok || post.Parent().SpanID() != x.SpanContext().SpanID() {
		t.Errorf("the token endpoint call is not a child of the exchange span")
	}
	if x.Parent().TraceID() != x.SpanContext().TraceID() || !x.Parent().IsValid() {
		t.Errorf("the exchange span has no parent (the Check's)")
	}
}

// TestTokenExchangeMetrics: exchanges count as IdP calls of kind token_exchange, and the
// exchanged-token cache reports its lookups by result (the hit ratio).
func TestTokenExchangeMetrics(t *testing.T) {
	a, srv := exchangeAS(t, time.Hour)
	r := replica(t, srv.URL, nil, withExchange(t, downstreamAPI))
	caller := callerToken(t, a, srv.URL, "hank", "mcp:tools api:read", time.Hour)
	for range 3 {
		upstreamToken(t, checkToken(t, r, caller), caller)
	}
	resp, err := http.Get("http://" + r.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		// The token endpoint's discovery (once) and the exchange (once: then cached).
		`mcp_authz_idp_requests_total{issuer="` + srv.URL + `",kind="token_exchange",outcome="2xx"} 2`,
		`mcp_authz_exchanged_token_cache_requests_total{result="l1"} 2`,
		`mcp_authz_exchanged_token_cache_requests_total{result="miss"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s\n%s", want, grepLines(string(b), "token_exchange"))
		}
	}
}

// TestTokenExchangeRedisDownAndReload: with Redis killed, exchanges still happen and are
// cached in process (Redis is never a reason to deny); a reload that removes
// upstream_credentials applies to the next Check, whose upstream then gets no credential.
func TestTokenExchangeRedisDownAndReload(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := exchangeAS(t, time.Hour)
	r := replica(t, srv.URL, []string{rs.Addr()}, withExchange(t, downstreamAPI))
	caller := callerToken(t, a, srv.URL, "ivy", "mcp:tools api:read", time.Hour)
	up := upstreamToken(t, checkToken(t, r, caller), caller)
	rs.Kill()
	if upstreamToken(t, checkToken(t, r, caller), caller) != up {
		t.Error("with Redis down, the in-process exchanged token was not used")
	}
	other := callerToken(t, a, srv.URL, "jack", "mcp:tools api:read", time.Hour)
	n := a.Exchanges()
	up2 := upstreamToken(t, checkToken(t, r, other), other)
	if up2 == up || a.Exchanges() != n+1 {
		t.Errorf("with Redis down a new caller was not exchanged (exchanges %d → %d)", n, a.Exchanges())
	}
	if upstreamToken(t, checkToken(t, r, other), other) != up2 || a.Exchanges() != n+1 {
		t.Error("with Redis down the exchange was not cached in process")
	}

	cfg := *r.live.Load().cfg
	cfg.Resources = append([]config.Resource(nil), cfg.Resources...)
	cfg.Resources[0].UpstreamCredentials = nil
	if err := r.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	resp := checkToken(t, r, caller)
	if !allowed(resp) || respHeader(resp.GetOkResponse().GetHeaders(), "authorization") != "" ||
		!contains(resp.GetOkResponse().GetHeadersToRemove(), "authorization") {
		t.Errorf("after removing upstream_credentials: headers %v, removed %v", resp.GetOkResponse().GetHeaders(), resp.GetOkResponse().GetHeadersToRemove())
	}
}
