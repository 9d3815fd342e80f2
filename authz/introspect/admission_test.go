package introspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// floodAS answers active:true at once for every token except those starting with "garbage",
// which it holds until release is closed, then answers inactive.
type floodAS struct {
	*httptest.Server
	release chan struct{}
	garbage atomic.Int64 // garbage calls received
	genuine atomic.Int64
}

func newFloodAS(t *testing.T) *floodAS {
	f := &floodAS{release: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.PostForm.Get("token"), "garbage") {
			f.garbage.Add(1)
			select {
			case <-f.release:
			case <-r.Context().Done():
			}
			fmt.Fprint(w, `{"active":false}`)
			return
		}
		f.genuine.Add(1)
		fmt.Fprintf(w, `{"active":true,"sub":"s","exp":%d}`, at(time.Hour))
	}))
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		f.Close()
	})
	return f
}

func floodVerifier(t *testing.T, f *floodAS, mod func(*Config)) *Verifier {
	t.Helper()
	c := Config{Issuer: f.URL, Endpoint: f.URL + "/introspect", ClientID: "rs", ClientSecret: "x",
		MaxConcurrent: 8, QueueWait: 50 * time.Millisecond, Timeout: time.Minute, Now: fixedNow}
	if mod != nil {
		mod(&c)
	}
	v, err := New(required(c))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A token that does not fit the configured shape is invalid at once and never sent.
func TestShapeRefusedWithoutCall(t *testing.T) {
	f := newFloodAS(t)
	v := floodVerifier(t, f, func(c *Config) {
		c.Shape = Shape{Pattern: `[A-Za-z0-9_-]+`, Prefix: "at_", MinLength: 20, MaxLength: 40}
	})
	for _, tok := range []string{"garbage-1", "at_short", "xx_0123456789abcdefghij", "at_0123456789abcdefghij!",
		"at_" + strings.Repeat("a", 40), "at_0123456789abcdefghij\n"} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrInvalid) || !errors.Is(err, errShape) {
			t.Errorf("%q: %v, want the shape refusal", tok, err)
		}
	}
	if n := f.garbage.Load() + f.genuine.Load(); n != 0 {
		t.Errorf("%d calls for tokens of the wrong shape", n)
	}
	if _, err := v.Verify(context.Background(), "at_0123456789abcdefghij"); err != nil {
		t.Errorf("a token of the right shape: %v", err)
	}
}

func TestShapeConfigErrors(t *testing.T) {
	for _, s := range []Shape{{Pattern: "("}, {MinLength: 10, MaxLength: 5}, {MinLength: -1}} {
		if _, err := New(required(Config{Issuer: "https://as", ClientID: "a", ClientSecret: "b", Shape: s})); err == nil {
			t.Errorf("New accepted %+v", s)
		}
	}
}

// A flood of one class of token cannot take every slot: another class still gets one at
// once, while the flood's excess is refused after QueueWait.
func TestFairAdmission(t *testing.T) {
	f := newFloodAS(t)
	v := floodVerifier(t, f, nil) // 8 slots: at most 6 for one class
	var wg sync.WaitGroup
	var busy atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), fmt.Sprintf("garbage-%04d", i)); errors.Is(err, errBusy) {
				busy.Add(1)
			}
		}()
	}
	for busy.Load() < 50-6 || f.garbage.Load() < 6 { // all but its share gave up
		time.Sleep(time.Millisecond)
	}
	if n := f.garbage.Load(); n != 6 {
		t.Errorf("%d garbage calls in flight; one class may hold 6 of 8 slots", n)
	}
	for i := range 5 {
		if _, err := v.Verify(context.Background(), fmt.Sprintf("Genuine%dTokenABCDEFGHIJKLMNOP", i)); err != nil {
			t.Errorf("a genuine token during the flood: %v", err)
		}
	}
	close(f.release)
	wg.Wait()
}

// Queued calls get freed slots class by class, not in arrival order.
func TestAdmissionRoundRobin(t *testing.T) {
	a := newAdmission(4) // 3 per class
	ctx := context.Background()
	for range 3 {
		if err := a.acquire(ctx, 1, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.acquire(ctx, 2, time.Second); err != nil {
		t.Fatal(err)
	}
	// Full. Class 1 queues three, then class 3 one.
	got := make(chan uint32, 4)
	var wg sync.WaitGroup
	enqueue := func(c uint32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.acquire(ctx, c, time.Minute) == nil {
				got <- c
			}
		}()
		for { // wait until it is queued, so the order is known
			a.mu.Lock()
			n := len(a.waiting[c])
			a.mu.Unlock()
			if n > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	enqueue(1)
	enqueue(3)
	a.release(2) // class 1 is at its share: the slot goes to class 3
	if c := <-got; c != 3 {
		t.Errorf("freed slot went to class %d, want 3", c)
	}
	a.release(1)
	if c := <-got; c != 1 {
		t.Errorf("freed slot went to class %d, want 1", c)
	}
	wg.Wait()
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// After Failures consecutive failures the server is not called until OpenFor has passed;
// then one probe goes through, and its success closes the breaker.
func TestBreaker(t *testing.T) {
	var calls atomic.Int64
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":false}`)
	}))
	defer srv.Close()
	clk := &clock{t: t0}
	v, err := New(required(Config{Issuer: srv.URL, Endpoint: srv.URL, ClientID: "a", ClientSecret: "b", Now: clk.now,
		Breaker: Breaker{Failures: 3, OpenFor: 10 * time.Second}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 10 {
		if _, err := v.Verify(ctx, "tok"); !errors.Is(err, identity.ErrUnavailable) {
			t.Fatalf("server down: %v", err)
		}
	}
	if n := calls.Load(); n != 3 || v.BreakerState() != BreakerOpen {
		t.Errorf("%d calls, breaker %s; want 3, open", n, v.BreakerState())
	}
	clk.add(10 * time.Second) // half-open: one probe, which fails
	v.Verify(ctx, "tok")
	v.Verify(ctx, "tok")
	if n := calls.Load(); n != 4 || v.BreakerState() != BreakerOpen {
		t.Errorf("%d calls, breaker %s after a failed probe; want 4, open", n, v.BreakerState())
	}
	down.Store(false)
	clk.add(10 * time.Second)
	// active:false is an answer: the server works, the breaker closes, the token is invalid.
	if _, err := v.Verify(ctx, "tok"); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("probe answered inactive: %v", err)
	}
	if v.BreakerState() != BreakerClosed {
		t.Errorf("breaker %s after a good probe", v.BreakerState())
	}
	v.Verify(ctx, "tok")
	if n := calls.Load(); n != 6 {
		t.Errorf("%d calls; want 6", n)
	}
}

// A server failing every call logs one line per reason per interval, whatever the rate.
func TestLogsRateLimited(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var buf bytes.Buffer
	clk := &clock{t: t0}
	v, err := New(required(Config{Issuer: srv.URL, Endpoint: srv.URL, ClientID: "a", ClientSecret: "b", Now: clk.now,
		Logger: slog.New(slog.NewTextHandler(&buf, nil)), Breaker: Breaker{Failures: 1 << 20}}))
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		v.Verify(context.Background(), "tok")
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Errorf("%d lines for 1000 failures:\n%s", n, buf.String())
	}
	clk.add(logEvery)
	v.Verify(context.Background(), "tok")
	if !strings.Contains(buf.String(), "suppressed_since_last=999") {
		t.Errorf("the second line does not count the suppressed ones:\n%s", buf.String())
	}
}

// An issuer's JWTs that fall back to its introspection are not held to its opaque-token shape.
func TestJWTFallbackSkipsShape(t *testing.T) {
	f := newFloodAS(t)
	v := floodVerifier(t, f, func(c *Config) { c.Shape = Shape{Prefix: "at_"} })
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"
	if _, err := v.Verify(context.Background(), jwt); !errors.Is(err, errShape) {
		t.Errorf("as an opaque token: %v, want the shape refusal", err)
	}
	if _, err := v.ForJWTs().Verify(context.Background(), jwt); err != nil {
		t.Errorf("as a fallback JWT: %v", err)
	}
}

// The waiters of all classes together are bounded, so a flood spread over many token shapes
// cannot park calls without limit.
func TestAdmissionBounds(t *testing.T) {
	for max, per := range map[int]int{1: 1, 4: 3, 8: 6, 64: 48} {
		if got := newAdmission(max).perClass; got != per {
			t.Errorf("newAdmission(%d).perClass = %d, want %d", max, got, per)
		}
	}
	a := newAdmission(2)
	ctx := context.Background()
	if err := a.acquire(ctx, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.acquire(ctx, 2, time.Second); err != nil {
		t.Fatal(err)
	}
	// Both slots taken: classes 3, 4, ... queue until the total cap, then are refused at once.
	var wg sync.WaitGroup
	for c := uint32(3); c < 3+maxWaitersPerSlot*2; c++ {
		wg.Add(1)
		go func() { defer wg.Done(); a.acquire(ctx, c, time.Minute) }()
	}
	for {
		a.mu.Lock()
		n := a.waiters
		a.mu.Unlock()
		if n == maxWaitersPerSlot*2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// A cancelled context tells refusing (errBusy, before any wait) from queueing (cancelled).
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.acquire(cancelled, 1000, time.Minute); err != errBusy {
		t.Errorf("a waiter past the total cap: %v, want errBusy at once", err)
	}
	for range maxWaitersPerSlot*2 + 2 {
		a.mu.Lock()
		cls := uint32(0)
		for c := range a.byClass {
			cls = c
			break
		}
		a.mu.Unlock()
		a.release(cls)
	}
	wg.Wait()
}
