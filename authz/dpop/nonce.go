package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Nonces issues and checks server nonces (RFC 9449 §9) without shared state: a nonce is a
// timestamp and random bytes under an HMAC, so every replica holding the key can check any
// replica's nonce, and no client can predict or forge one.
type Nonces struct {
	key      []byte
	lifetime time.Duration
	skew     time.Duration
}

const nonceLen = 8 + 8 + 16 // unix seconds, random, truncated HMAC-SHA256

// NewNonces: key at least 16 bytes, shared by the replicas; a nonce is good for lifetime.
func NewNonces(key []byte, lifetime, skew time.Duration) *Nonces {
	if lifetime <= 0 {
		lifetime = 5 * time.Minute
	}
	return &Nonces{key: key, lifetime: lifetime, skew: skew}
}

// Issue returns a fresh nonce.
func (n *Nonces) Issue(now time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	_, _ = rand.Read(b[8:16])
	n.mac(b[:16], b[16:16])
	return b64.EncodeToString(b[:])
}

func (n *Nonces) mac(msg, dst []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(msg)
	var sum [sha256.Size]byte
	return append(dst, m.Sum(sum[:0])[:16]...)
}

// age returns how old a nonce this service issued is; ok is false for anything else.
func (n *Nonces) age(s string, now time.Time) (time.Duration, bool) {
	if len(s) != b64.EncodedLen(nonceLen) {
		return 0, false
	}
	var b [nonceLen]byte
	if k, err := b64.Decode(b[:], []byte(s)); err != nil || k != nonceLen {
		return 0, false
	}
	var want [16]byte
	if !hmac.Equal(n.mac(b[:16], want[:0]), b[16:]) {
		return 0, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return now.Sub(issued), true
}

// Valid reports whether s is a nonce this service issued within its lifetime.
func (n *Nonces) Valid(s string, now time.Time) bool {
	age, ok := n.age(s, now)
	return ok && age >= -n.skew && age <= n.lifetime
}

// Due reports whether a client using s should be given a new nonce: past half its lifetime.
func (n *Nonces) Due(s string, now time.Time) bool {
	age, ok := n.age(s, now)
	return !ok || age > n.lifetime/2
}
