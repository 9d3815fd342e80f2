package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Durations in JSON logs read as Go durations ("1s"), not nanoseconds, at any depth.
func TestJSONLogDurations(t *testing.T) {
	var b bytes.Buffer
	log := newLeveledLogger("json", slog.LevelInfo, &b)
	log.Warn("jwt: loading keys failed", "retry_in", time.Second, slog.Group("g", "took", 1500*time.Millisecond))
	got := b.String()
	for _, want := range []string{`"retry_in":"1s"`, `"took":"1.5s"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log line lacks %s: %s", want, got)
		}
	}
}
