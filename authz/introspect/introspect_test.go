package introspect

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// The client id is a URL (as with client ID metadata documents) and the secret holds every
// character that breaks a Basic header or a form when not form-urlencoded first.
const (
	clientID = "https://rs.example:8443/client"
	secret   = "s3cr:t%25+with&specials =é"
)

// t0 is the clock of every test: answers' exp and nbf are relative to it.
var t0 = time.Unix(1_800_000_000, 0)

func fixedNow() time.Time { return t0 }

// as is a real introspection endpoint. It enforces RFC 7662 §2.1 and RFC 6749 §2.3 on every
// request (a violation is reported as a test failure and answered 400), authenticates the
// client by exactly one method, and answers what the test scripted for each token:
//
//	"STATUS n"      status n, empty body
//	"HTML"          a 200 HTML page
//	"HANG"          nothing until the client gives up
//	"REDIRECT url"  307 to url
//	anything else   that body, as application/json
type as struct {
	*httptest.Server
	t       *testing.T
	answers map[string]string // set before the first request
	block   chan struct{}     // when set, introspection calls wait for it to close
	calls   atomic.Int64      // introspection calls that reached the handler
	meta    atomic.Int64      // metadata fetches
	method  atomic.Value      // "basic" or "post": how the last call authenticated
	// metadata is the document served at the RFC 8414 URL; "" means 404.
	metadata atomic.Value
	// open: calls without client authentication are answered too (Ory Hydra's admin API).
	open atomic.Bool
}

func newAS(t *testing.T) *as {
	t.Helper()
	a := &as{t: t, answers: map[string]string{}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	a.metadata.Store(fmt.Sprintf(`{"issuer":%q,"introspection_endpoint":%q}`, a.URL, a.URL+"/introspect"))
	t.Cleanup(a.Close)
	return a
}

func (a *as) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/.well-known/oauth-authorization-server" {
		a.meta.Add(1)
		doc := a.metadata.Load().(string)
		if strings.HasPrefix(doc, "STATUS ") {
			var code int
			fmt.Sscanf(doc, "STATUS %d", &code)
			w.WriteHeader(code)
			return
		}
		fmt.Fprint(w, doc)
		return
	}
	if r.URL.Path != "/introspect" {
		http.NotFound(w, r)
		return
	}
	a.calls.Add(1)
	if a.block != nil {
		select {
		case <-a.block:
		case <-r.Context().Done():
			return
		}
	}
	violation := func(msg string) {
		a.t.Errorf("protocol violation: %s", msg)
		http.Error(w, msg, http.StatusBadRequest)
	}
	switch {
	case r.Method != http.MethodPost:
		violation("method " + r.Method)
		return
	case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
		violation("content type " + r.Header.Get("Content-Type"))
		return
	case r.Header.Get("Accept") != "application/json":
		violation("accept " + r.Header.Get("Accept"))
		return
	}
	if err := r.ParseForm(); err != nil {
		violation("form: " + err.Error())
		return
	}
	if len(r.URL.Query()) > 0 {
		violation("parameters in the query string")
		return
	}
	if h := r.PostForm.Get("token_type_hint"); h != "access_token" {
		violation("token_type_hint " + h)
		return
	}
	// RFC 6749 §2.3.1: the Basic user-id and password are form-urlencoded; a raw ':' in the
	// client id would split it in the wrong place, a raw '%' would not unescape.
	var id, pw, method string
	if auth := r.Header.Get("Authorization"); auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
		u, p, ok := strings.Cut(string(raw), ":")
		if !strings.HasPrefix(auth, "Basic ") || err != nil || !ok {
			violation("malformed Basic header")
			return
		}
		id, err = url.QueryUnescape(u)
		if err == nil {
			pw, err = url.QueryUnescape(p)
		}
		if err != nil {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		method = "basic"
	}
	if r.PostForm.Has("client_id") || r.PostForm.Has("client_secret") {
		if method != "" {
			violation("two client authentication methods (RFC 6749 §2.3)")
			return
		}
		id, pw, method = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), "post"
	}
	if a.open.Load() && method == "" {
		method = "none"
	} else if id != clientID || pw != secret {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	a.method.Store(method)

	ans, ok := a.answers[r.PostForm.Get("token")]
	if !ok {
		ans = `{"active":false}`
	}
	switch {
	case strings.HasPrefix(ans, "STATUS "):
		var code int
		fmt.Sscanf(ans, "STATUS %d", &code)
		w.WriteHeader(code)
	case ans == "HTML":
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Sign in</body></html>")
	case ans == "HANG":
		<-r.Context().Done()
	case strings.HasPrefix(ans, "CT "): // "CT <content type> <body>"
		ct, body, _ := strings.Cut(strings.TrimPrefix(ans, "CT "), " {")
		w.Header()["Content-Type"] = []string{ct}
		fmt.Fprint(w, "{"+body)
	case strings.HasPrefix(ans, "REDIRECT "):
		http.Redirect(w, r, strings.TrimPrefix(ans, "REDIRECT "), http.StatusTemporaryRedirect)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, ans)
	}
}

// syncBuffer collects log output from concurrent calls.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newV(t *testing.T, a *as, mod func(*Config)) (*Verifier, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	c := Config{
		Issuer: a.URL, Endpoint: a.URL + "/introspect", ClientID: clientID, ClientSecret: secret,
		Claims: []string{"username", "tenant", "groups", "obj", "mixed"}, Now: fixedNow,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&c)
	}
	v, err := New(required(c))
	if err != nil {
		t.Fatal(err)
	}
	return v, logs
}

func at(d time.Duration) int64 { return t0.Add(d).Unix() }

func TestActiveAnswer(t *testing.T) {
	a := newAS(t)
	a.answers["tok-good"] = fmt.Sprintf(`{"active":true,"iss":%q,"sub":"alice","client_id":"c1",
		"aud":"https://mcp.example/mcp","scope":"mcp:tools  mcp:read","exp":%d,"nbf":%d,"iat":%d,
		"token_type":"bearer","username":"al","tenant":42,"groups":["a","b"],"obj":{"x":1},
		"mixed":["a",1]}`, a.URL, at(time.Hour), at(-time.Minute), at(-time.Minute))
	v, _ := newV(t, a, nil)
	id, err := v.Verify(context.Background(), "tok-good")
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Identity{
		Issuer: a.URL, Subject: "alice", ClientID: "c1", Audience: []string{"https://mcp.example/mcp"},
		Scopes: []string{"mcp:tools", "mcp:read"}, Expiry: t0.Add(time.Hour), NotBefore: t0.Add(-time.Minute),
		Claims: map[string]string{"username": `"al"`, "tenant": "42", "groups": `["a","b"]`, "obj": `{"x":1}`, "mixed": `["a",1]`},
		Source: identity.SourceIntrospection,
	}
	if fmt.Sprint(id) != fmt.Sprint(want) {
		t.Errorf("identity\n got %+v\nwant %+v", id, want)
	}
	if m := a.method.Load(); m != "basic" {
		t.Errorf("authenticated by %v, want client_secret_basic by default", m)
	}
}

func TestAudienceAndScopeForms(t *testing.T) {
	a := newAS(t)
	a.answers = map[string]string{
		"tok-aud-string": `{"active":true,"aud":"r1"}`,
		"tok-aud-array":  `{"active":true,"aud":["r1","r2"],"scope":["s1","s2"]}`,
		"tok-aud-none":   `{"active":true,"scope":""}`,
		"tok-aud-null":   `{"active":true,"aud":null}`,
		"tok-aud-empty":  `{"active":true,"aud":[]}`,
	}
	v, _ := newV(t, a, nil)
	for tok, want := range map[string][]string{
		"tok-aud-string": {"r1"}, "tok-aud-array": {"r1", "r2"},
		"tok-aud-none": nil, "tok-aud-null": nil, "tok-aud-empty": nil,
	} {
		id, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Errorf("%s: %v", tok, err)
			continue
		}
		// nil, not merely empty: the decision core refuses a token that names no audience.
		if !slices.Equal(id.Audience, want) || (want == nil) != (id.Audience == nil) {
			t.Errorf("%s: audience %#v, want %#v", tok, id.Audience, want)
		}
		if !id.Expiry.IsZero() {
			t.Errorf("%s: expiry %v from an answer without exp", tok, id.Expiry)
		}
	}
	if id, _ := v.Verify(context.Background(), "tok-aud-array"); !slices.Equal(id.Scopes, []string{"s1", "s2"}) {
		t.Errorf("scope array: %q", id.Scopes)
	}
	if id, _ := v.Verify(context.Background(), "tok-aud-none"); id.Scopes != nil {
		t.Errorf("empty scope: %#v", id.Scopes)
	}
}

func TestInvalid(t *testing.T) {
	a := newAS(t)
	a.answers = map[string]string{
		"tok-inactive":      `{"active":false}`,
		"tok-inactive-more": `{"active":false,"sub":"alice","exp":4102444800}`,
		"tok-iss":           `{"active":true,"iss":"https://other.example"}`,
		"tok-iss-empty":     `{"active":true,"iss":""}`,
		"tok-expired":       fmt.Sprintf(`{"active":true,"exp":%d}`, at(-time.Second)),
		"tok-exp-now":       fmt.Sprintf(`{"active":true,"exp":%d}`, at(0)),
		"tok-nbf":           fmt.Sprintf(`{"active":true,"nbf":%d}`, at(time.Minute)),
		"tok-dpop":          `{"active":true,"token_type":"DPoP"}`,
		"tok-other-type":    `{"active":true,"token_type":"N_A"}`,
	}
	v, _ := newV(t, a, nil)
	for tok := range a.answers {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrInvalid) || errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("%s: %v, want only invalid", tok, err)
		}
	}
	if _, err := v.Verify(context.Background(), "tok-unknown-to-the-as"); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("unknown token: %v", err)
	}
	// Within the leeway, the edges pass.
	skewed, _ := newV(t, a, func(c *Config) { c.ClockSkew = 2 * time.Minute })
	for _, tok := range []string{"tok-expired", "tok-exp-now", "tok-nbf"} {
		if _, err := skewed.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s with 2m leeway: %v", tok, err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	a := newAS(t)
	a.answers = map[string]string{
		"tok-no-active":    `{"sub":"x","exp":4102444800}`,
		"tok-str-active":   `{"active":"true"}`,
		"tok-null-active":  `{"active":null}`,
		"tok-html":         "HTML",
		"tok-null":         `null`,
		"tok-array":        `[{"active":true}]`,
		"tok-empty":        ``,
		"tok-trailing":     `{"active":true} {"active":false}`,
		"tok-huge":         `{"active":true,"x":"` + strings.Repeat("a", 100<<10) + `"}`,
		"tok-aud-object":   `{"active":true,"aud":{"x":1}}`,
		"tok-sub-number":   `{"active":true,"sub":7}`,
		"tok-exp-string":   `{"active":true,"exp":"4102444800"}`,
		"tok-exp-negative": `{"active":true,"exp":-1}`,
		"tok-exp-huge":     `{"active":true,"exp":1e300}`,
		"tok-401":          "STATUS 401",
		"tok-403":          "STATUS 403",
		"tok-500":          "STATUS 500",
		"tok-503":          "STATUS 503",
		"tok-204":          "STATUS 204",
		"tok-text-plain":   `CT text/plain {"active":true}`,
		"tok-no-type":      `CT  {"active":true}`,
		"tok-bad-type":     `CT application/json; charset {"active":true}`,
	}
	// The breaker would stop the calls after five of these (TestBreaker).
	v, logs := newV(t, a, func(c *Config) { c.Breaker.Failures = 1 << 20 })
	for tok := range a.answers {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrUnavailable) || errors.Is(err, identity.ErrInvalid) {
			t.Errorf("%s: %v, want only unavailable", tok, err)
		}
	}
	// One line per reason at most (TestLogsRateLimited).
	if n := strings.Count(logs.String(), "level=WARN"); n == 0 || n > len(a.answers) {
		t.Errorf("%d warnings for %d unusable answers:\n%s", n, len(a.answers), logs)
	}
	if strings.Contains(logs.String(), "Sign in") || strings.Contains(logs.String(), "aaaa") {
		t.Errorf("an answer's body reached the logs:\n%s", logs)
	}

	// Our own credentials refused: the AS's 401 says nothing about the token.
	a.answers["tok-good"] = `{"active":true}`
	wrong, _ := newV(t, a, func(c *Config) { c.ClientSecret = "wrong" })
	if _, err := wrong.Verify(context.Background(), "tok-good"); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("wrong client secret: %v", err)
	}
	if _, err := v.Verify(context.Background(), "tok-good"); err != nil {
		t.Errorf("the right secret: %v", err)
	}
}

func TestClientSecretPost(t *testing.T) {
	a := newAS(t)
	a.answers["tok-good"] = `{"active":true,"sub":"s"}`
	v, _ := newV(t, a, func(c *Config) { c.AuthMethod = "client_secret_post" })
	if id, err := v.Verify(context.Background(), "tok-good"); err != nil || id.Subject != "s" {
		t.Fatalf("%+v %v", id, err)
	}
	if m := a.method.Load(); m != "post" {
		t.Errorf("authenticated by %v", m)
	}
}

// auth_method none sends neither a Basic header nor client_id/client_secret (Hydra's admin
// endpoint takes none); an endpoint that wants credentials then refuses with the class that
// says so; and none with credentials configured is refused at New.
func TestAuthMethodNone(t *testing.T) {
	a := newAS(t)
	a.open.Store(true)
	a.answers["tok-good"] = `{"active":true,"sub":"s"}`
	v, _ := newV(t, a, func(c *Config) { c.AuthMethod, c.ClientID, c.ClientSecret = "none", "", "" })
	if id, err := v.Verify(context.Background(), "tok-good"); err != nil || id.Subject != "s" {
		t.Fatalf("%+v %v", id, err)
	}
	if m := a.method.Load(); m != "none" {
		t.Errorf("authenticated by %v, want no client authentication", m)
	}
	a.open.Store(false)
	_, err := v.Verify(context.Background(), "tok-other")
	var c identity.Classed
	if !errors.As(err, &c) || c.DenialClass() != identity.ClassCredentials {
		t.Errorf("an endpoint refusing us: %v, want class credentials", err)
	}
	if _, err := New(required(Config{Issuer: a.URL, AuthMethod: "none", ClientID: "rs", ClientSecret: "x"})); err == nil {
		t.Error("none with client credentials accepted")
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"active":true}`)
	}))
	defer elsewhere.Close()
	a := newAS(t)
	a.answers["tok-redirected"] = "REDIRECT " + elsewhere.URL + "/introspect"
	for _, client := range []*http.Client{nil, {}} {
		v, _ := newV(t, a, func(c *Config) { c.HTTPClient = client })
		if _, err := v.Verify(context.Background(), "tok-redirected"); !errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("redirect: %v", err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the token followed a redirect %d times", n)
	}
}

func TestDiscovery(t *testing.T) {
	a := newAS(t)
	a.answers["tok-good"] = `{"active":true,"sub":"s"}`
	v, _ := newV(t, a, func(c *Config) { c.Endpoint = "" })
	if a.meta.Load() != 0 {
		t.Fatal("New did network I/O")
	}
	for range 3 {
		if id, err := v.Verify(context.Background(), "tok-good"); err != nil || id.Subject != "s" {
			t.Fatalf("%+v %v", id, err)
		}
	}
	if n := a.meta.Load(); n != 1 {
		t.Errorf("%d metadata fetches, want 1", n)
	}
}

func TestDiscoveryBackoff(t *testing.T) {
	a := newAS(t)
	a.answers["tok-good"] = `{"active":true}`
	a.metadata.Store("STATUS 503")
	var now atomic.Int64
	now.Store(t0.UnixNano())
	v, logs := newV(t, a, func(c *Config) {
		c.Endpoint = ""
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	verify := func(step string, wantOK bool, wantFetches int64) {
		t.Helper()
		_, err := v.Verify(context.Background(), "tok-good")
		if wantOK != (err == nil) || err != nil && !errors.Is(err, identity.ErrUnavailable) {
			t.Fatalf("%s: %v", step, err)
		}
		if n := a.meta.Load(); n != wantFetches {
			t.Fatalf("%s: %d metadata fetches, want %d", step, n, wantFetches)
		}
	}
	// Each attempt fetches the RFC 8414 document once (the OIDC URL, tried second, 404s).
	verify("first attempt", false, 1)
	verify("during the 1s backoff", false, 1)
	now.Add(int64(1100 * time.Millisecond))
	verify("after 1s", false, 2)
	now.Add(int64(1100 * time.Millisecond))
	verify("during the 2s backoff", false, 2)
	a.metadata.Store(fmt.Sprintf(`{"issuer":%q}`, a.URL)) // no introspection_endpoint
	now.Add(int64(time.Second))
	verify("after 2s, no endpoint in the metadata", false, 3)
	a.metadata.Store(fmt.Sprintf(`{"issuer":%q,"introspection_endpoint":%q}`, a.URL, a.URL+"/introspect"))
	now.Add(int64(4100 * time.Millisecond))
	verify("after 4s", true, 4)
	if n := strings.Count(logs.String(), "discovering the endpoint failed"); n != 3 {
		t.Errorf("%d discovery failures logged, want 3 (one per attempt):\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 3 {
		t.Errorf("%d warnings, want 3:\n%s", n, logs)
	}
}

func TestDiscoveryRefusesDowngrade(t *testing.T) {
	var endpoint atomic.Value
	srv := httptest.NewTLSServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/oauth-authorization-server" {
			fmt.Fprintf(w, `{"issuer":%q,"introspection_endpoint":%q}`, srv.URL, endpoint.Load())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":true}`)
	})
	defer srv.Close()
	for _, c := range []struct {
		endpoint string
		ok       bool
	}{
		{"http" + strings.TrimPrefix(srv.URL, "https") + "/introspect", false},
		{"/introspect", false},
		{srv.URL + "/introspect", true},
	} {
		endpoint.Store(c.endpoint)
		v, err := New(required(Config{Issuer: srv.URL, ClientID: clientID, ClientSecret: secret, HTTPClient: srv.Client()}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), "tok-good")
		if c.ok != (err == nil) || err != nil && !errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("discovered %s: %v", c.endpoint, err)
		}
	}
}

func TestTimeout(t *testing.T) {
	a := newAS(t)
	a.answers["tok-slow"] = "HANG"
	v, _ := newV(t, a, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	// The generous deadline is what a Verify ignoring Timeout would run into.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := v.Verify(ctx, "tok-slow")
	if !errors.Is(err, identity.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow AS: %v", err)
	}
	if ctx.Err() != nil {
		t.Error("Verify ran to the caller's deadline: Timeout did not bound the call")
	}
	// The caller's own context bounds it too.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	long, _ := newV(t, a, func(c *Config) { c.Timeout = 10 * time.Second })
	if _, err := long.Verify(short, "tok-slow"); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("cancelled caller: %v", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	a := newAS(t)
	a.answers["tok-good"] = `{"active":true}`
	a.block = make(chan struct{})
	v, _ := newV(t, a, func(c *Config) {
		c.MaxConcurrent = 2
		c.QueueWait = 20 * time.Millisecond
		c.Timeout = 10 * time.Second
	})
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := v.Verify(context.Background(), "tok-good"); done <- err }()
	}
	for a.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := v.Verify(context.Background(), "tok-good"); !errors.Is(err, errBusy) || !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("third call: %v, want %v", err, errBusy)
	}
	// Waiting for a slot also ends with the caller's context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow, _ := newV(t, a, func(c *Config) { c.MaxConcurrent = 2; c.QueueWait = time.Hour })
	for range 2 {
		slow.adm.take(tokenClass("tok-good"))
	}
	if _, err := slow.Verify(ctx, "tok-good"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while queued: %v", err)
	}
	close(a.block)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("a call holding a slot: %v", err)
		}
	}
	if n := a.calls.Load(); n != 2 {
		t.Errorf("%d calls reached the AS, want 2", n)
	}
	// Slots were given back.
	for range 3 {
		if _, err := v.Verify(context.Background(), "tok-good"); err != nil {
			t.Errorf("after release: %v", err)
		}
	}
}

func TestNoCallForEmptyOrHugeTokens(t *testing.T) {
	a := newAS(t)
	v, _ := newV(t, a, nil)
	for _, tok := range []string{"", strings.Repeat("a", 17<<10)} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrInvalid) {
			t.Errorf("token of %d bytes: %v", len(tok), err)
		}
	}
	if n := a.calls.Load(); n != 0 {
		t.Errorf("%d calls", n)
	}
}

// TestNothingLeaks drives every failure path with the logger at debug and checks that no
// error, log line or printed Verifier carries the token or the client secret in any encoding.
func TestNothingLeaks(t *testing.T) {
	a := newAS(t)
	const tok = "tok-SENSITIVE"
	srvs := map[string]string{
		"active":   `{"active":true}`,
		"inactive": `{"active":false}`,
		"html":     "HTML",
		"500":      "STATUS 500",
		"slow":     "HANG",
		"redirect": "REDIRECT " + a.URL + "/elsewhere?token=" + tok,
	}
	secrets := []string{secret, url.QueryEscape(secret), tok,
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)))}
	var seen []string
	for name, ans := range srvs {
		a.answers[tok] = ans
		for _, method := range []string{"client_secret_basic", "client_secret_post"} {
			for _, s := range []string{secret, "wrong-" + secret} {
				v, logs := newV(t, a, func(c *Config) {
					c.AuthMethod, c.ClientSecret, c.Timeout = method, s, 50*time.Millisecond
				})
				_, err := v.Verify(context.Background(), tok)
				if err != nil {
					seen = append(seen, name+": "+err.Error())
				}
				seen = append(seen, logs.String(), fmt.Sprintf("%v %+v %#v", v, v, v))
			}
		}
	}
	// Unreachable endpoint and failed discovery.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	for _, ep := range []string{dead.URL + "/introspect", ""} {
		logs := &syncBuffer{}
		v, err := New(required(Config{Issuer: dead.URL, Endpoint: ep, ClientID: clientID, ClientSecret: secret,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), tok)
		if !errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("dead endpoint %q: %v", ep, err)
		}
		seen = append(seen, err.Error(), logs.String())
	}
	if len(seen) < 20 {
		t.Fatalf("only %d outputs checked", len(seen))
	}
	for _, out := range seen {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%q leaked into: %s", s, out)
			}
		}
	}
}

func TestNewRejects(t *testing.T) {
	good := Config{Issuer: "https://as.example", ClientID: "rs", ClientSecret: "zz-secret-zz"}
	if _, err := New(required(good)); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"relative issuer": func(c *Config) { c.Issuer = "as.example" },
		"ftp issuer":      func(c *Config) { c.Issuer = "ftp://as.example" },
		"bad endpoint":    func(c *Config) { c.Endpoint = "/introspect" },
		"no client id":    func(c *Config) { c.ClientID = "" },
		"no secret":       func(c *Config) { c.ClientSecret = "" },
		"auth method":     func(c *Config) { c.AuthMethod = "private_key_jwt" },
		"neg timeout":     func(c *Config) { c.Timeout = -time.Second },
		"neg concurrency": func(c *Config) { c.MaxConcurrent = -1 },
		"neg skew":        func(c *Config) { c.ClockSkew = -time.Second },
	} {
		c := good
		mod(&c)
		_, err := New(required(c))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "zz-secret-zz") {
			t.Errorf("%s: secret in error: %v", name, err)
		}
	}
}

func BenchmarkIntrospect(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok || r.PostFormValue("token") != "tok-bench" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":true,"iss":"`+"http://"+r.Host+`","sub":"s","client_id":"c","aud":"https://mcp.example/mcp","scope":"mcp:tools mcp:read","exp":4102444800,"token_type":"Bearer"}`)
	}))
	defer srv.Close()
	v, err := New(required(Config{Issuer: srv.URL, Endpoint: srv.URL + "/introspect", ClientID: clientID, ClientSecret: secret}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		id, err := v.Verify(ctx, "tok-bench")
		if err != nil || id.Subject != "s" || len(id.Scopes) != 2 {
			b.Fatal(id, err)
		}
	}
}

// Any JSON media type is an answer; parameters and case do not matter (RFC 9110 §8.3.1).
func TestJSONMediaTypes(t *testing.T) {
	a := newAS(t)
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/token-introspection+json"} {
		a.answers[fmt.Sprintf("tok-%d", i)] = "CT " + ct + fmt.Sprintf(` {"active":true,"sub":"s","exp":%d}`, at(time.Hour))
	}
	v, _ := newV(t, a, nil)
	for tok := range a.answers {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s (%s): %v", tok, a.answers[tok], err)
		}
	}
}
