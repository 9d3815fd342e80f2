package introspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

const secret = "s3cr:t%with&specials"

// as is a real introspection endpoint: it checks client authentication and answers what the
// test scripts for each token.
type as struct {
	*httptest.Server
	calls   atomic.Int64
	answers map[string]string // token → raw answer
	block   chan struct{}
}

func newAS(t *testing.T) *as {
	t.Helper()
	a := &as{answers: map[string]string{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/oauth-authorization-server" {
			fmt.Fprintf(w, `{"issuer":%q,"introspection_endpoint":%q}`, a.URL, a.URL+"/introspect")
			return
		}
		a.calls.Add(1)
		if a.block != nil {
			<-a.block
		}
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request shape", 400)
			return
		}
		r.ParseForm()
		id, pw := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok {
			id, _ = url.QueryUnescape(u)
			pw, _ = url.QueryUnescape(p)
		}
		if id != "rs" || pw != secret {
			http.Error(w, "unauthorized", 401)
			return
		}
		if r.PostForm.Get("token_type_hint") != "access_token" {
			http.Error(w, "no hint", 400)
			return
		}
		ans, ok := a.answers[r.PostForm.Get("token")]
		if !ok {
			ans = `{"active":false}`
		}
		if strings.HasPrefix(ans, "STATUS ") {
			code := 0
			fmt.Sscanf(ans, "STATUS %d", &code)
			w.WriteHeader(code)
			return
		}
		if strings.HasPrefix(ans, "SLEEP") {
			time.Sleep(500 * time.Millisecond)
			ans = `{"active":true}`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, ans)
	}))
	t.Cleanup(a.Close)
	return a
}

func newV(t *testing.T, a *as, mod func(*Config)) (*Verifier, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	c := Config{Issuer: a.URL, Endpoint: a.URL + "/introspect", ClientID: "rs", ClientSecret: secret,
		Claims: []string{"username"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if mod != nil {
		mod(&c)
	}
	v, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return v, &logs
}

func TestAnswers(t *testing.T) {
	a := newAS(t)
	exp := time.Now().Add(time.Hour).Unix()
	a.answers = map[string]string{
		"good":    fmt.Sprintf(`{"active":true,"iss":%q,"sub":"alice","client_id":"c","aud":"https://mcp/mcp","scope":"a b","exp":%d,"username":"al","token_type":"Bearer"}`, a.URL, exp),
		"auds":    fmt.Sprintf(`{"active":true,"aud":["x","https://mcp/mcp"],"exp":%d}`, exp),
		"noaud":   `{"active":true}`,
		"inact":   `{"active":false}`,
		"noact":   `{"sub":"x"}`,
		"stract":  `{"active":"true"}`,
		"iss":     `{"active":true,"iss":"https://other"}`,
		"expired": `{"active":true,"exp":1}`,
		"nbf":     fmt.Sprintf(`{"active":true,"nbf":%d}`, exp),
		"dpop":    `{"active":true,"token_type":"DPoP"}`,
		"html":    `<html>oops</html>`,
		"huge":    `{"active":true,"x":"` + strings.Repeat("a", 100<<10) + `"}`,
		"500":     "STATUS 500",
		"badaud":  `{"active":true,"aud":{"x":1}}`,
	}
	v, logs := newV(t, a, nil)
	id, err := v.Verify(context.Background(), "good")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice" || id.ClientID != "c" || len(id.Scopes) != 2 || id.Audience[0] != "https://mcp/mcp" ||
		id.Issuer != a.URL || id.Expiry.Unix() != exp || id.Claims["username"] != "al" || id.Source != identity.SourceIntrospection {
		t.Errorf("identity %+v", id)
	}
	if id, err := v.Verify(context.Background(), "auds"); err != nil || len(id.Audience) != 2 {
		t.Errorf("aud array: %+v %v", id, err)
	}
	if id, err := v.Verify(context.Background(), "noaud"); err != nil || len(id.Audience) != 0 {
		t.Errorf("no aud: %+v %v", id, err)
	}
	for tok, want := range map[string]error{
		"inact": identity.ErrInvalid, "unknown": identity.ErrInvalid, "iss": identity.ErrInvalid,
		"expired": identity.ErrInvalid, "nbf": identity.ErrInvalid, "dpop": identity.ErrInvalid,
		"noact": identity.ErrUnavailable, "stract": identity.ErrUnavailable, "html": identity.ErrUnavailable,
		"huge": identity.ErrUnavailable, "500": identity.ErrUnavailable, "badaud": identity.ErrUnavailable,
	} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", tok, err, want)
		}
	}
	// Wrong client secret: the AS answers 401 → unavailable (our problem, not the token's).
	bad, logs2 := newV(t, a, func(c *Config) { c.ClientSecret = "wrong-secret" })
	if _, err := bad.Verify(context.Background(), "good"); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("wrong credentials: %v", err)
	}
	for _, l := range []string{logs.String(), logs2.String()} {
		if strings.Contains(l, secret) || strings.Contains(l, "wrong-secret") || strings.Contains(l, "good") && strings.Contains(l, "token=good") {
			t.Errorf("a secret reached the logs: %s", l)
		}
	}
}

func TestClientSecretPost(t *testing.T) {
	a := newAS(t)
	a.answers["t"] = `{"active":true}`
	v, _ := newV(t, a, func(c *Config) { c.AuthMethod = "client_secret_post" })
	if _, err := v.Verify(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveredEndpoint(t *testing.T) {
	a := newAS(t)
	a.answers["t"] = `{"active":true}`
	v, _ := newV(t, a, func(c *Config) { c.Endpoint = "" })
	if _, err := v.Verify(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutBounded(t *testing.T) {
	a := newAS(t)
	a.answers["slow"] = "SLEEP"
	v, _ := newV(t, a, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if _, err := v.Verify(ctx, "slow"); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("slow AS: %v", err)
	}
	if ctx.Err() != nil {
		t.Error("the call outlived its 50ms timeout by far")
	}
}

func TestConcurrencyLimit(t *testing.T) {
	a := newAS(t)
	a.block = make(chan struct{})
	v, _ := newV(t, a, func(c *Config) { c.MaxConcurrent = 2; c.QueueWait = 20 * time.Millisecond; c.Timeout = 5 * time.Second })
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := v.Verify(context.Background(), "x"); done <- err }()
	}
	for a.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := v.Verify(context.Background(), "x"); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("third call: %v", err)
	}
	close(a.block)
	<-done
	<-done
	if a.calls.Load() != 2 {
		t.Errorf("%d calls reached the AS", a.calls.Load())
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []Config{
		{Issuer: "x", ClientID: "a", ClientSecret: "zz-secret-zz"},
		{Issuer: "https://as", ClientSecret: "zz-secret-zz"},
		{Issuer: "https://as", ClientID: "a", ClientSecret: "zz-secret-zz", AuthMethod: "private_key_jwt"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("accepted %+v", c)
		} else if strings.Contains(err.Error(), c.ClientSecret) && c.ClientSecret != "" {
			t.Errorf("secret in error: %v", err)
		}
	}
}

func BenchmarkIntrospect(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"active":true,"sub":"s","aud":"https://mcp/mcp","scope":"a b","exp":4102444800}`)
	}))
	defer srv.Close()
	v, _ := New(Config{Issuer: srv.URL, Endpoint: srv.URL, ClientID: "rs", ClientSecret: "x"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), "t"); err != nil {
			b.Fatal(err)
		}
	}
}
