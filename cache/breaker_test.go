package cache

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &breaker{cfg: BreakerConfig{Failures: 3, OpenFor: 5 * time.Second}, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	down := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")

	for i := range 2 {
		if !b.allow() {
			t.Fatalf("closed breaker refused call %d", i)
		}
		b.failure(down)
	}
	if !b.allow() {
		t.Fatal("opened before the threshold")
	}
	b.success() // a success resets the count
	for range 3 {
		b.allow()
		b.failure(down)
	}
	if st, _, last := b.snapshot(); st != stateOpen || last != down.Error() {
		t.Fatalf("after 3 failures: %v %q", st, last)
	}
	if b.allow() {
		t.Fatal("open breaker let a call through")
	}
	now = now.Add(5 * time.Second)
	if !b.allow() {
		t.Fatal("no probe after the open period")
	}
	if b.allow() {
		t.Fatal("second call while the probe is in flight")
	}
	b.failure(down)
	if st, _, _ := b.snapshot(); st != stateOpen || b.allow() {
		t.Fatal("failed probe did not reopen")
	}
	now = now.Add(5 * time.Second)
	if !b.allow() {
		t.Fatal("no second probe")
	}
	b.abandon() // the caller gave up: says nothing, next call probes again
	if !b.allow() {
		t.Fatal("abandoned probe blocked the next one")
	}
	b.success()
	if st, f, _ := b.snapshot(); st != stateClosed || f != 0 || !b.allow() {
		t.Fatalf("probe success did not close: %v %d", st, f)
	}
}
