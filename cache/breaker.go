package cache

import (
	"log/slog"
	"sync"
	"time"
)

// BreakerConfig sets when the cache stops calling Redis. A request that would wait on a Redis
// that is down costs a timeout every time; an open breaker turns that into an immediate miss.
type BreakerConfig struct {
	Failures int           // consecutive failures that open the breaker; default 5
	OpenFor  time.Duration // how long it stays open before one probe is let through; default 5s
}

type breakerState uint8

const (
	stateClosed breakerState = iota
	stateOpen
	stateHalfOpen
)

func (s breakerState) String() string {
	switch s {
	case stateClosed:
		return "closed"
	case stateOpen:
		return "open"
	}
	return "half-open"
}

// breaker is a consecutive-failure circuit breaker. Its clock is the cache's Now, so tests move
// it through open and half-open without sleeping. A mutex is fine here: every caller is about to
// make a network round trip.
type breaker struct {
	cfg BreakerConfig
	now func() time.Time
	log *slog.Logger

	mu       sync.Mutex
	state    breakerState
	failures int
	openedAt time.Time
	probing  bool // half-open: the one probe is in flight
	lastErr  string
}

// allow reports whether a call may go to Redis now. Each true must be followed by exactly one
// of success, failure or abandon.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateClosed:
		return true
	case stateOpen:
		if b.now().Sub(b.openedAt) < b.cfg.OpenFor {
			return false
		}
		b.state = stateHalfOpen
		b.probing = true
		b.log.Debug("cache: redis breaker half-open, probing")
		return true
	default:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != stateClosed {
		b.log.Info("cache: redis reachable again, breaker closed")
	}
	b.state, b.failures, b.probing = stateClosed, 0, false
}

func (b *breaker) failure(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	b.lastErr = errText(err)
	switch {
	case b.state == stateHalfOpen:
		// Still down: back to open quietly; the outage was already reported.
		b.state, b.openedAt, b.probing = stateOpen, b.now(), false
		b.log.Debug("cache: redis probe failed, breaker open again", "error", b.lastErr)
	case b.state == stateClosed && b.failures >= b.cfg.Failures:
		b.state, b.openedAt = stateOpen, b.now()
		b.log.Warn("cache: redis unreachable, breaker open: answering from the in-process cache only",
			"failures", b.failures, "open_for", b.cfg.OpenFor, "error", b.lastErr)
	}
}

// abandon ends a call that says nothing about Redis (the caller's context ended first).
func (b *breaker) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

func (b *breaker) snapshot() (state breakerState, failures int, lastErr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.failures, b.lastErr
}

// errText keeps a Redis error short for health output; go-redis errors name addresses and
// commands, never keys or values (keys are HMACs anyway).
func errText(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
