package dpop

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Store is a replay store shared by every replica (cache.DPoPReplay: Redis SET NX with expiry).
type Store interface {
	// FirstUse records id for ttl and reports whether it was new.
	FirstUse(ctx context.Context, id [32]byte, ttl time.Duration) (bool, error)
}

// Replay remembers proofs' jti values (keyed by Checker.replayID) for as long as their iat
// window could accept them again.
//
// With a shared store, a proof used at one replica is refused at every other. Without one
// (no Redis configured), each replica remembers only its own proofs: a proof captured in
// transit can then be replayed once at each other replica within its iat window.
//
// One Replay serves a process for its lifetime: a configuration reload keeps what it
// remembers.
type Replay struct {
	shared Store
	local  *memory
	down   atomic.Bool
	log    *slog.Logger
	now    func() time.Time
}

// DefaultMemory is how many proofs one replica remembers by default.
const DefaultMemory = 65536

// NewReplay: shared may be nil; memory bounds this replica's own record (entries, > 0).
func NewReplay(shared Store, memory int, log *slog.Logger, now func() time.Time) *Replay {
	if memory <= 0 {
		memory = DefaultMemory
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Replay{shared: shared, local: newMemory(memory), log: log, now: now}
}

// FirstUse records id and reports whether it was new. denyWhenDown: when the shared store
// fails, refuse (ErrReplayUnavailable) rather than rely on the iat window and this replica's
// memory.
func (r *Replay) FirstUse(ctx context.Context, id [32]byte, ttl time.Duration, denyWhenDown bool) (bool, error) {
	if r.shared != nil {
		first, err := r.shared.FirstUse(ctx, id, ttl)
		if err == nil {
			if r.down.CompareAndSwap(true, false) {
				r.log.Info("DPoP replay store reachable again")
			}
			return first, nil
		}
		if r.down.CompareAndSwap(false, true) {
			if denyWhenDown {
				r.log.Error("DPoP replay store unavailable: refusing DPoP proofs until it is back (dpop.on_replay_store_unavailable: deny)", "error", err)
			} else {
				r.log.Warn("DPoP replay store unavailable: accepting proofs within their iat window, checked against this replica's memory only (dpop.on_replay_store_unavailable: iat_window)", "error", err)
			}
		}
		if denyWhenDown {
			return false, fmt.Errorf("%w: %v", ErrReplayUnavailable, err)
		}
	}
	return r.local.firstUse(id, r.now().Add(ttl), r.now()), nil
}

// Evicted counts proofs this replica forgot before their window closed, because its memory
// was full. Each is a proof that could be replayed here (without a shared store).
func (r *Replay) Evicted() uint64 { return r.local.evicted.Load() }

// memory is a bounded record of ids: when full, the oldest insertion goes first (with one TTL
// for every proof, the one closest to its expiry).
type memory struct {
	mu      sync.Mutex
	max     int
	m       map[[32]byte]time.Time
	ring    [][32]byte
	head    int
	evicted atomic.Uint64
}

func newMemory(max int) *memory {
	return &memory{max: max, m: make(map[[32]byte]time.Time)}
}

func (m *memory) firstUse(id [32]byte, expiry, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.m[id]; ok {
		if now.Before(exp) {
			return false
		}
		m.m[id] = expiry // its old place in the ring stays: it may go a little early
		return true
	}
	if len(m.ring) < m.max {
		m.ring = append(m.ring, id)
	} else {
		old := m.ring[m.head]
		if exp, ok := m.m[old]; ok && now.Before(exp) {
			m.evicted.Add(1)
		}
		delete(m.m, old)
		m.ring[m.head] = id
		m.head = (m.head + 1) % m.max
	}
	m.m[id] = expiry
	return true
}
