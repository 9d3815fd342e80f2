package cache

import (
	"crypto/hmac"
	"encoding/binary"
	"sync"
	"time"
)

// revocations remembers which keys were revoked and when, for as long as an entry stored
// before the revocation could still be alive somewhere (memory: the longest entry lifetime plus
// slack), so that such an entry put back into Redis by whoever can write there is refused.
//
// It holds at most limit keys. Past the bound it forgets the oldest revocation, and from then
// on fails safe instead of open: a positive Redis value whose deadline is not after the
// forgotten revocation's end of memory might be that token's saved value, so every such value
// is refused (a miss; the token is verified again), and a verification that started before the
// forgotten revocation is not stored. Both last at most memory; L1 entries are not affected.
type revocations struct {
	mu    sync.Mutex
	at    map[[32]byte]int64 // key → when it was last revoked, unix nanos on the Now clock
	order []revocation       // oldest first; a record superseded by a later one for its key stays until reached
	limit int
	// memory is how long a revocation is remembered, in nanoseconds.
	memory int64
	// forgottenUntil: positive Redis values with deadlines up to this may belong to a forgotten
	// revocation. forgottenAt: the latest moment a forgotten revocation was made.
	forgottenUntil, forgottenAt int64
	forgotten                   uint64 // revocations forgotten to stay within limit
}

type revocation struct {
	key [32]byte
	at  int64
}

func newRevocations(limit int, memory time.Duration) *revocations {
	return &revocations{at: map[[32]byte]int64{}, limit: limit, memory: int64(memory)}
}

// note remembers that key was revoked at now. It reports whether it had to forget an older
// revocation to stay within the bound.
func (r *revocations) note(key [32]byte, now int64) (forgot bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Expired records leave from the front: order is by time noted.
	for len(r.order) > 0 && now-r.order[0].at >= r.memory {
		r.drop(r.order[0])
		r.order = r.order[1:]
	}
	if _, ok := r.at[key]; !ok {
		for len(r.at) >= r.limit && len(r.order) > 0 {
			old := r.order[0]
			r.order = r.order[1:]
			if r.drop(old) {
				r.forgottenUntil = max(r.forgottenUntil, old.at+r.memory)
				r.forgottenAt = max(r.forgottenAt, old.at)
				r.forgotten++
				forgot = true
			}
		}
	}
	r.at[key] = now
	r.order = append(r.order, revocation{key, now})
	// Superseded records are few (a key revoked again within memory); compact when they are
	// as many as the live ones, so order stays within twice the bound.
	if len(r.order) > 2*max(len(r.at), 16) {
		live := r.order[:0:0]
		for _, rec := range r.order {
			if r.at[rec.key] == rec.at {
				live = append(live, rec)
			}
		}
		r.order = live
	}
	return forgot
}

// drop forgets rec's key unless a later revocation of it superseded rec.
func (r *revocations) drop(rec revocation) bool {
	if at, ok := r.at[rec.key]; ok && at == rec.at {
		delete(r.at, rec.key)
		return true
	}
	return false
}

// refuses says whether a positive value for key from Redis, with the given deadline, may have
// been stored before a revocation this replica knows of, or has forgotten.
func (r *revocations) refuses(key [32]byte, deadline, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if deadline <= r.forgottenUntil {
		return true
	}
	at, ok := r.at[key]
	return ok && now-at < r.memory
}

// since says whether key was revoked at or after mark, or may have been by a revocation that
// was forgotten.
func (r *revocations) since(key [32]byte, mark int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[key]
	return ok && at >= mark || r.forgottenAt >= mark
}

func (r *revocations) count() (remembered int, forgotten uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at), r.forgotten
}

// Announcement format, version 1, on the revocation channel:
//
//	version  byte = 1
//	key      32 bytes, the revoked token's lookup key
//	sent     int64 big-endian, unix nanoseconds on the sender's clock
//	mac      16 bytes: HMAC-SHA256(announcement key, uvarint(len(channel)) ‖ channel ‖ the above)[:16]
//
// Whoever can publish on the channel could otherwise evict any token from every replica's L1
// (and make replicas remember false revocations); the MAC needs the cache secret. A message is
// accepted within announceWindow of its sending time, so a genuine one recorded and replayed
// later is ignored; a replay inside the window repeats a revocation an operator asked for.
const (
	announceVersion = 1
	announceLen     = 1 + 32 + 8 + macLen
	// announceWindow bounds the clock difference between replicas plus the delivery delay.
	announceWindow = time.Minute
)

func (t *Tiered) announcement(key [32]byte, sent int64) []byte {
	b := make([]byte, 0, announceLen)
	b = append(b, announceVersion)
	b = append(b, key[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(sent))
	mac := t.announceMAC(b)
	return append(b, mac[:]...)
}

func (t *Tiered) announceMAC(body []byte) [macLen]byte {
	m := t.announce.get()
	var n [binary.MaxVarintLen64]byte
	m.h.Write(n[:binary.PutUvarint(n[:], uint64(len(t.channel)))])
	m.h.Write(stringBytes(t.channel))
	m.h.Write(body)
	out := [macLen]byte(m.h.Sum(m.sum[:0]))
	t.announce.put(m)
	return out
}

// parseAnnouncement returns the key of a genuine, recent announcement.
func (t *Tiered) parseAnnouncement(p string, now int64) (key [32]byte, ok bool) {
	if len(p) != announceLen || p[0] != announceVersion {
		return key, false
	}
	body, tag := stringBytes(p[:announceLen-macLen]), stringBytes(p[announceLen-macLen:])
	if mac := t.announceMAC(body); !hmac.Equal(mac[:], tag) {
		return key, false
	}
	sent := int64(binary.BigEndian.Uint64(body[33:]))
	if d := now - sent; d > int64(announceWindow) || d < -int64(announceWindow) {
		return key, false
	}
	return [32]byte(body[1:33]), true
}
