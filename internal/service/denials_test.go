package service

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// syncBuffer is a log sink several goroutines may write.
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

// A denial's class is logged at info with its fix, once per issuer and class however often
// it recurs, never with the token, and counted by class in /metrics; the client still gets
// the generic challenge.
func TestDenialsAnOperatorCanRead(t *testing.T) {
	a, srv := as(t)
	var logs syncBuffer
	var skip atomic.Int64 // how far the service's clock is ahead of the real one
	clock := func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	r := replicaWith(t, srv.URL, nil, func(c *config.Config) {
		c.Log.Decisions = "off" // the denial line must not depend on the decision log
	}, Options{Now: clock, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	now := time.Now()
	claims := map[string]any{"iss": srv.URL, "sub": "erin", "client_id": "c", "aud": resource, "scope": "mcp:tools",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	var toks []string
	for i := range 4 {
		claims["jti"] = i // three tokens, so the negative cache does not answer the repeats
		tok, err := a.Mint(claims, demoas.MintOptions{Typ: "JWT"})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	for _, tok := range toks[:3] {
		resp := checkToken(t, r, tok)
		if allowed(resp) {
			t.Fatal("typ JWT allowed without profile or allow_typ")
		}
		h := resp.GetDeniedResponse().GetHeaders()
		for _, hv := range h {
			if strings.EqualFold(hv.GetHeader().GetKey(), "www-authenticate") && strings.Contains(hv.GetHeader().GetValue(), "typ") {
				t.Errorf("the challenge names the reason: %s", hv.GetHeader().GetValue())
			}
		}
	}
	noAud := map[string]any{"iss": srv.URL, "sub": "erin", "client_id": "c", "scope": "mcp:tools", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	tokNoAud, err := a.Mint(noAud, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, r, tokNoAud)
	// The keys are loaded by now: a kid they lack is not an outage, whatever it falls back to.
	tokKid, err := a.Mint(claims, demoas.MintOptions{KID: "made-up"})
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, r, tokKid)
	if kidLine := grepLines(logs.String(), "class=unknown_key"); !strings.Contains(kidLine, "jwks_refresh_interval") {
		t.Errorf("the unknown kid line does not say what happens:\n%s", logs.String())
	}

	out := logs.String()
	for _, tok := range append(toks, tokNoAud, tokKid) {
		if strings.Contains(out, tok) || strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Fatal("a token reached the log")
		}
	}
	typLines := grepLines(out, "class=typ")
	if n := strings.Count(typLines, "\n") + 1; typLines == "" || n != 1 {
		t.Errorf("want exactly one line for class typ (rate-limited), got:\n%s", out)
	}
	for _, want := range []string{"level=INFO", `msg="token refused"`, "issuer=" + srv.URL, "set issuers[].profile", "allow_typ"} {
		if !strings.Contains(typLines, want) {
			t.Errorf("the typ line lacks %q:\n%s", want, typLines)
		}
	}
	audLine := grepLines(out, "class=audience")
	if !strings.Contains(audLine, "no aud") || !strings.Contains(audLine, "audience= for Hydra") {
		t.Errorf("the audience line does not say what to do:\n%s", out)
	}

	// A minute on, the next one is logged again, saying how many were held back.
	skip.Store(int64(denialEvery + time.Second))
	checkToken(t, r, toks[3])
	typLines = grepLines(logs.String(), "class=typ")
	if n := strings.Count(typLines, "\n") + 1; n != 2 || !strings.Contains(typLines, "similar_not_logged=2") {
		t.Errorf("a minute later: want a second typ line with similar_not_logged=2, got:\n%s", typLines)
	}

	resp, err := http.Get("http://" + r.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mcp_authz_denials_total{class="typ",issuer="` + srv.URL + `"} 4`,
		`mcp_authz_denials_total{class="audience",issuer="` + srv.URL + `"} 1`,
		`mcp_authz_denials_total{class="unknown_key",issuer="` + srv.URL + `"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "denials"))
		}
	}
}
