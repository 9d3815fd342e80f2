package cache

import (
	"strconv"
	"testing"
	"time"
)

func revKey(i int) [32]byte {
	var k [32]byte
	copy(k[:], strconv.Itoa(i))
	return k
}

// The memory of revocations is bounded by its limit whatever is revoked, however often.
func TestRevocationsBounded(t *testing.T) {
	const limit = 100
	r := newRevocations(limit, time.Hour)
	now := int64(1)
	for i := range 100_000 {
		r.note(revKey(i), now)
		now++
	}
	if len(r.at) != limit || len(r.order) > 2*limit {
		t.Fatalf("%d distinct revocations: %d remembered, %d records; bound %d", 100_000, len(r.at), len(r.order), limit)
	}
	// The same few keys revoked again and again: superseded records do not pile up.
	for i := range 100_000 {
		r.note(revKey(i%10), now)
		now++
	}
	if len(r.at) > limit || len(r.order) > 2*limit {
		t.Fatalf("repeated revocations: %d remembered, %d records", len(r.at), len(r.order))
	}
	// Forgotten ones make every value that could predate them refused, and any verification
	// that started before them dropped.
	// (Key 5,000 was revoked at 5,001.)
	if !r.refuses(revKey(5_000), 5_001+int64(time.Hour), now) || !r.since(revKey(5_000), 5_001) {
		t.Fatal("a forgotten revocation is not failed safe")
	}
	if r.refuses(revKey(5_000), r.forgottenUntil+1, now) {
		t.Fatal("a value whose deadline is after every forgotten revocation's memory is refused")
	}
}

// Revocations are remembered for their memory, not longer.
func TestRevocationsExpire(t *testing.T) {
	mem := time.Minute
	r := newRevocations(10, mem)
	k := revKey(1)
	r.note(k, 0)
	if !r.refuses(k, int64(mem), int64(mem)-1) || !r.since(k, 0) || r.since(k, 1) {
		t.Fatal("a revocation within its memory")
	}
	if r.refuses(k, 2*int64(mem), int64(mem)) {
		t.Fatal("a revocation refused values past its memory")
	}
	r.note(revKey(2), int64(mem))
	if n, forgotten := r.count(); n != 1 || forgotten != 0 {
		t.Fatalf("after its memory: %d remembered, %d forgotten; want 1 and 0", n, forgotten)
	}
}
