package introspect

import (
	"log/slog"
	"sync"
	"time"
)

// Breaker sets when a Verifier stops calling an authorization server that keeps failing. A
// server that accepts connections and never answers costs every call the full Timeout; once
// it is known to be failing, an open breaker answers "unavailable" at once, and the decision
// core serves what it verified before.
type Breaker struct {
	Failures int           // consecutive failures or timeouts that open it; default 5
	OpenFor  time.Duration // how long it stays open before one probe is let through; default 5s
}

// BreakerState is what a breaker is doing, for metrics and health.
type BreakerState uint8

const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	}
	return "half-open"
}

// breaker is a consecutive-failure circuit breaker on the Verifier's clock, so tests move it
// through open and half-open without sleeping. A mutex is fine: every caller is about to make
// a network round trip, or to skip one.
type breaker struct {
	cfg    Breaker
	now    func() time.Time
	log    *slog.Logger
	issuer string

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  bool // half-open: the one probe is in flight
}

// allow reports whether a call may go to the authorization server now. Each true must be
// followed by exactly one of success, failure or abandon.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.now().Sub(b.openedAt) < b.cfg.OpenFor {
			return false
		}
		b.state = BreakerHalfOpen
	}
	if b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != BreakerClosed {
		b.log.Info("introspect: authorization server answering again, breaker closed", "issuer", b.issuer)
	}
	b.state, b.failures, b.probing = BreakerClosed, 0, false
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	switch {
	case b.state == BreakerHalfOpen:
		// Still failing: open again quietly; the outage was reported when it began.
		b.state, b.openedAt, b.probing = BreakerOpen, b.now(), false
	case b.state == BreakerClosed && b.failures >= b.cfg.Failures:
		b.state, b.openedAt = BreakerOpen, b.now()
		b.log.Warn("introspect: authorization server failing, breaker open: its tokens are unavailable except those verified before",
			"issuer", b.issuer, "failures", b.failures, "open_for", b.cfg.OpenFor)
	}
}

// abandon ends a call that says nothing about the server (our caller gave up first, or no
// slot was free).
func (b *breaker) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

func (b *breaker) snapshot() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// logLimit bounds the lines one reason may log: the first at once, then at most one per
// interval, carrying how many were suppressed meanwhile. Reasons are the fixed strings of
// verifyError, so the map stays as small as that list.
type logLimit struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[string]logWindow
}

type logWindow struct {
	at         time.Time
	suppressed int
}

// allow says whether to log reason now, and how many lines were suppressed since the last.
func (l *logLimit) allow(reason string) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, seen := l.last[reason]
	if seen && now.Sub(w.at) < l.every {
		w.suppressed++
		l.last[reason] = w
		return false, 0
	}
	if l.last == nil {
		l.last = map[string]logWindow{}
	}
	l.last[reason] = logWindow{at: now}
	return true, w.suppressed
}
