// Package heapfloor keeps the garbage collector's heap goal at least a fixed number of bytes
// above the live heap.
//
// mcp-authz keeps little alive (1-3 MB without a full L1) and allocates a few KB per Check,
// most of it in gRPC. With GOGC=100 the goal of such a heap is the runtime's 4 MB minimum,
// so under load a collection starts every few hundred Checks, and each one pays fixed costs
// (roots, goroutine stacks) that do not shrink with the heap: a sixth of a cached Check's CPU
// in profiles (bench/README.md). Raising GOGC alone would multiply a large heap (a full L1) as
// well; a floor costs at most Floor extra bytes whatever the live heap, and leaves GOGC at 100
// once the live heap is larger than the floor.
//
// The runtime's goal is the larger of live + (live + stacks + globals)·GOGC/100 (GOGC scales
// the scannable roots as well as the heap) and a minimum heap of 4 MiB·GOGC/100. After every
// collection, GOGC is set so that neither term exceeds roots + floor, roots = live + stacks +
// globals, and never below 100. A goal is computed from the previous cycle, so a heap that
// grows between two collections overshoots by at most one floor.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// What the goal scales, as the runtime counts it (runtime/metrics, Go 1.21 and later).
var rootMetrics = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// heapMinimum is the runtime's minimum goal at GOGC=100 (runtime/mgcpacer.go
// defaultHeapMinimum); it scales with GOGC like the rest of the goal.
const heapMinimum = 4 << 20

// Floor is a running tuner; Stop restores the GOGC it found.
type Floor struct {
	floor   uint64
	orig    int
	mu      sync.Mutex // orders a last adjust against Stop's restore
	stopped atomic.Bool
	sample  []metrics.Sample
	percent atomic.Int64 // last value set, for tests and logs
}

// Start keeps the heap goal at least floor bytes above the live heap until Stop. It changes
// process-wide state, so a process starts at most one.
func Start(floor uint64) *Floor {
	f := &Floor{floor: floor}
	for _, m := range rootMetrics {
		f.sample = append(f.sample, metrics.Sample{Name: m})
	}
	f.orig = debug.SetGCPercent(100)
	debug.SetGCPercent(f.orig)
	f.adjust()
	f.arm()
	return f
}

// Percent is the GOGC the tuner last set.
func (f *Floor) Percent() int { return int(f.percent.Load()) }

// Stop ends the tuning and restores the GOGC found at Start.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.CompareAndSwap(false, true) {
		debug.SetGCPercent(f.orig)
	}
}

// arm hooks the end of the next collection: a cleanup on an unreachable object runs after
// the cycle that found it dead. Each run re-arms, so the tuner follows every cycle without a
// goroutine or a timer of its own.
func (f *Floor) arm() {
	sentinel := new([2]*byte) // with pointers, so never a tiny allocation shared with others
	runtime.AddCleanup(sentinel, func(f *Floor) {
		if f.stopped.Load() {
			return
		}
		f.adjust()
		f.arm()
	}, f)
}

// adjust runs on the cleanup goroutine, one call at a time (and once in Start).
func (f *Floor) adjust() {
	metrics.Read(f.sample)
	var roots uint64
	for _, s := range f.sample {
		if s.Value.Kind() != metrics.KindUint64 {
			return // a metric is gone from this Go version: leave GOGC alone
		}
		roots += s.Value.Uint64()
	}
	p := Percent(roots, f.floor)
	f.mu.Lock()
	defer f.mu.Unlock()
	if p != int(f.percent.Load()) && !f.stopped.Load() {
		debug.SetGCPercent(p)
		f.percent.Store(int64(p))
	}
}

// Percent is the GOGC whose goal is at most roots + floor, and at least 100.
func Percent(roots, floor uint64) int {
	p := (roots + floor) * 100 / heapMinimum
	if roots > 0 {
		p = min(p, floor*100/roots)
	}
	if p < 100 {
		return 100
	}
	// Rounded down to a multiple of 25 so that a live heap wobbling by a few KB does not call into
	// the runtime after every cycle.
	return int(p / 25 * 25)
}
