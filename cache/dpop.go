package cache

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// DPoPReplay records DPoP proofs' jti values in Redis, shared by every replica (dpop.Store):
// SET NX with the proof's remaining window as expiry, so a proof used at one replica is
// refused at all of them. Keys are the checker's HMACs: Redis sees neither a jti nor a key
// thumbprint, and a writer cannot make two proofs collide.
type DPoPReplay struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// DefaultDPoPPrefix starts every replay key.
const DefaultDPoPPrefix = "mcp-authz:dpop:v1:"

// NewDPoPReplay: timeout bounds each call (default 100ms), as for the verified-token cache.
func NewDPoPReplay(rdb redis.UniversalClient, prefix string, timeout time.Duration) *DPoPReplay {
	if prefix == "" {
		prefix = DefaultDPoPPrefix
	}
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	return &DPoPReplay{rdb: rdb, prefix: prefix, timeout: timeout}
}

// FirstUse records id for ttl (at least a millisecond) and reports whether it was new.
func (r *DPoPReplay) FirstUse(ctx context.Context, id [32]byte, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var k [64]byte
	hex.Encode(k[:], id[:])
	ok, err := r.rdb.SetNX(ctx, r.prefix+string(k[:]), "1", max(ttl, time.Millisecond)).Result()
	if err != nil {
		return false, err
	}
	return ok, nil
}
