package heapfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 32 * mb, 800},       // the minimum heap, 4 MiB·8, is the floor
		{2 * mb, 32 * mb, 850},  // 34 MiB: the minimum heap bounds it
		{8 * mb, 32 * mb, 400},  // 8 + 8·4 = 40 MiB: the roots bound it
		{30 * mb, 32 * mb, 100}, // 106 rounded down
		{32 * mb, 32 * mb, 100},
		{500 * mb, 32 * mb, 100},
		{2 * mb, 0, 100},
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// waitPercent collects until the tuner, which runs after collections, has set want.
func waitPercent(t *testing.T, f *Floor, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		if p := f.Percent(); ok(p) {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("GOGC stuck at %d", f.Percent())
	return 0
}

// The tuner follows the live heap through real collections: a small heap gets a high GOGC, a
// heap above the floor gets 100 back, and Stop restores what was there before.
func TestFollowsLiveHeap(t *testing.T) {
	before := debug.SetGCPercent(70)
	defer debug.SetGCPercent(before)

	const floor = 64 << 20
	f := Start(floor)
	small := waitPercent(t, f, func(p int) bool { return p > 100 })
	if small < 500 {
		t.Fatalf("a test binary's small heap got GOGC %d, want well above 100", small)
	}

	big := make([][]byte, 0, 128)
	for range 128 {
		big = append(big, make([]byte, 1<<20)) // 128 MB live, twice the floor
	}
	waitPercent(t, f, func(p int) bool { return p == 100 })
	runtime.KeepAlive(big)
	big = nil
	waitPercent(t, f, func(p int) bool { return p > 100 })

	f.Stop()
	if got := debug.SetGCPercent(before); got != 70 {
		t.Fatalf("after Stop GOGC = %d, want the 70 found at Start", got)
	}
	// Stopped: later collections leave GOGC alone.
	debug.SetGCPercent(55)
	runtime.GC()
	runtime.GC()
	if got := debug.SetGCPercent(before); got != 55 {
		t.Fatalf("a stopped tuner changed GOGC to %d", got)
	}
}
