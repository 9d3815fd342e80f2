package introspect

import (
	"context"
	"fmt"
	"math/bits"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Shape describes what this authorization server's opaque tokens look like. A token that
// does not fit is invalid without any call: a flood of garbage costs the authorization server
// nothing, and takes no slot from genuine tokens. The zero Shape accepts every token.
type Shape struct {
	Pattern   string // a Go regexp the whole token must match; "" for none
	Prefix    string
	MinLength int // 0: no minimum
	MaxLength int // 0: no maximum beyond the 16 KiB every token is held to
}

// shape is a checked Shape.
type shape struct {
	re       *regexp.Regexp
	prefix   string
	min, max int
}

func newShape(s Shape) (shape, error) {
	sh := shape{prefix: s.Prefix, min: s.MinLength, max: s.MaxLength}
	if s.MinLength < 0 || s.MaxLength < 0 || s.MaxLength > 0 && s.MinLength > s.MaxLength {
		return sh, fmt.Errorf("token length bounds %d..%d: want 0 <= min <= max", s.MinLength, s.MaxLength)
	}
	if s.Pattern != "" {
		// Anchored here, so "[A-Za-z0-9]{40}" means the whole token, not a part of it.
		re, err := regexp.Compile(`^(?:` + s.Pattern + `)$`)
		if err != nil {
			return sh, fmt.Errorf("token pattern: %v", err)
		}
		sh.re = re
	}
	return sh, nil
}

// fits is cheap first (length, prefix), the regexp last; regexp matching is linear in the
// token (RE2), so a hostile token cannot make it slow.
func (s *shape) fits(token string) bool {
	if len(token) < s.min || s.max > 0 && len(token) > s.max {
		return false
	}
	if !strings.HasPrefix(token, s.prefix) {
		return false
	}
	return s.re == nil || s.re.MatchString(token)
}

// tokenClass is a cheap fingerprint of a token's shape: the characters it uses and its length
// to the nearest power of two. The tokens one authorization server issues share a class or
// two; a flood of garbage, unless crafted to look exactly like them, lands in other classes,
// and admission shares the slots between classes (see admission). The adapter gives no
// trustworthy client address to queue by, so the token is all there is.
func tokenClass(token string) uint32 {
	var set uint32
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c >= 'a' && c <= 'z':
			set |= 1
		case c >= 'A' && c <= 'Z':
			set |= 2
		case c >= '0' && c <= '9':
			set |= 4
		case c == '-' || c == '_':
			set |= 8
		case c == '.':
			set |= 16
		case c == '+' || c == '/' || c == '=':
			set |= 32
		default:
			set |= 64
		}
	}
	return set | uint32(bits.Len(uint(len(token))))<<8
}

// admission bounds the calls in flight to one authorization server and shares them between
// token classes. One class may hold at most perClass slots, so a class flooding the server
// always leaves slots for the others; a call that finds no slot it may take queues behind its
// own class, and freed slots go round-robin to the classes waiting. Waiting is bounded in
// time (QueueWait) and in number per class.
type admission struct {
	max, perClass int

	mu       sync.Mutex
	inflight int
	waiters  int                  // queued, all classes together; at most maxWaitersPerSlot × max
	byClass  map[uint32]int       // in flight, per class; no zero entries
	waiting  map[uint32][]*waiter // FIFO per class; no empty entries
	ring     []uint32             // classes with waiters, in round-robin order
	next     int                  // where the next round-robin scan starts
}

type waiter struct {
	ready   chan struct{}
	granted bool
}

// maxWaitersPerSlot bounds the calls queued for a slot, all classes together: tokens spread
// over many shapes must not park calls (and their timers) without limit.
const maxWaitersPerSlot = 4

func newAdmission(max int) *admission {
	// A quarter of the slots is kept from any one class.
	per := max - max/4
	return &admission{max: max, perClass: per, byClass: map[uint32]int{}, waiting: map[uint32][]*waiter{}}
}

// acquire takes a slot for a call of the given class, waiting up to wait for one. Each nil
// return must be followed by one release of the same class.
func (a *admission) acquire(ctx context.Context, class uint32, wait time.Duration) error {
	a.mu.Lock()
	if a.inflight < a.max && a.byClass[class] < a.perClass && len(a.waiting[class]) == 0 {
		a.take(class)
		a.mu.Unlock()
		return nil
	}
	if len(a.waiting[class]) >= a.max || a.waiters >= maxWaitersPerSlot*a.max {
		a.mu.Unlock() // the queue is full: waiting would only time out
		return errBusy
	}
	a.waiters++
	w := &waiter{ready: make(chan struct{})}
	if len(a.waiting[class]) == 0 {
		a.ring = append(a.ring, class)
	}
	a.waiting[class] = append(a.waiting[class], w)
	a.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-t.C:
		err = errBusy
	case <-ctx.Done():
		err = unavailable("introspect: cancelled waiting for a slot", ctx.Err())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted { // granted while giving up: keep it
		return nil
	}
	a.dequeue(class, w)
	return err
}

func (a *admission) release(class uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight--
	if n := a.byClass[class] - 1; n > 0 {
		a.byClass[class] = n
	} else {
		delete(a.byClass, class)
	}
	a.dispatch()
}

func (a *admission) take(class uint32) {
	a.inflight++
	a.byClass[class]++
}

// dispatch hands free slots to waiters, one class after another.
func (a *admission) dispatch() {
	for a.inflight < a.max && len(a.ring) > 0 {
		granted := false
		for i := range a.ring {
			idx := (a.next + i) % len(a.ring)
			c := a.ring[idx]
			if a.byClass[c] >= a.perClass {
				continue
			}
			q := a.waiting[c]
			w := q[0]
			w.granted = true
			close(w.ready)
			a.waiters--
			a.take(c)
			if len(q) == 1 {
				delete(a.waiting, c)
				a.ring = append(a.ring[:idx], a.ring[idx+1:]...)
				a.next = idx // the class after c moved to idx
			} else {
				q[0] = nil
				a.waiting[c] = q[1:]
				a.next = idx + 1
			}
			if len(a.ring) > 0 {
				a.next %= len(a.ring)
			} else {
				a.next = 0
			}
			granted = true
			break
		}
		if !granted {
			return
		}
	}
}

func (a *admission) dequeue(class uint32, w *waiter) {
	a.waiters--
	q := a.waiting[class]
	for i, x := range q {
		if x == w {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		a.waiting[class] = q
		return
	}
	delete(a.waiting, class)
	for i, c := range a.ring {
		if c == class {
			a.ring = append(a.ring[:i], a.ring[i+1:]...)
			if a.next > i {
				a.next--
			}
			break
		}
	}
	if len(a.ring) == 0 || a.next >= len(a.ring) {
		a.next = 0
	}
}
