package cache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Claims let replicas sharing a Redis verify a new token once between them: the first replica
// to miss claims the token's key, verifies and stores; the others wait for the entry instead
// of asking the IdP too. Without them, N replicas seeing a new token within one IdP latency
// make N calls (bench/README.md, "Several replicas sharing Redis").
//
// A claim is a Redis key next to the entry's, set with NX and an expiry, so a replica that
// dies while verifying holds it up for at most that long. Redis down or slow means no
// coordination, never a wait: every caller then verifies for itself.

// claimPoll is how often a waiting replica looks for the entry; a tenth of a fast IdP's
// latency, and one Redis round trip each time.
const claimPoll = 2 * time.Millisecond

func (t *Tiered) claimKey(key [32]byte) string { return t.prefix + "claim:" + string(key[:16]) }

// Claim asks for the right to verify key's token on behalf of every replica, for at most ttl.
// It is false only when another replica holds the claim; then Await.
func (t *Tiered) Claim(ctx context.Context, key [32]byte, ttl time.Duration) bool {
	if t.rdb == nil || ttl < time.Millisecond || !t.br.allow() {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	err := t.rdb.SetArgs(cctx, t.claimKey(key), "1", redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case err == nil:
		t.br.success()
		return true
	case errors.Is(err, redis.Nil):
		t.br.success()
		t.st.claimsWaited.Add(1)
		return false
	}
	t.failed(ctx, err)
	return true
}

// Unclaim ends a claim once its result is stored (or there is none to store), so the waiting
// replicas stop waiting.
func (t *Tiered) Unclaim(ctx context.Context, key [32]byte) { t.del(ctx, t.claimKey(key)) }

// Await waits, at most maxWait, for the entry of a key another replica has claimed. ok is
// false when the claim ended without an entry (that replica could not verify, or died) or the
// wait ran out: the caller then verifies for itself.
func (t *Tiered) Await(ctx context.Context, key [32]byte, maxWait time.Duration) (id identity.Identity, negative bool, ok bool) {
	deadline := time.Now().Add(maxWait)
	tick := time.NewTicker(claimPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return identity.Identity{}, false, false
		case <-tick.C:
		}
		if e, ok := t.fromRedis(ctx, key, t.now().UnixNano(), false); ok {
			return e.id, e.neg, true
		}
		if !t.br.allow() || !time.Now().Before(deadline) {
			return identity.Identity{}, false, false
		}
		cctx, cancel := context.WithTimeout(ctx, t.timeout)
		n, err := t.rdb.Exists(cctx, t.claimKey(key)).Result()
		cancel()
		if err != nil {
			t.failed(ctx, err)
			return identity.Identity{}, false, false
		}
		if n == 0 {
			// Released: the entry, if any, was stored before the claim was deleted.
			e, ok := t.fromRedis(ctx, key, t.now().UnixNano(), false)
			return e.id, e.neg, ok
		}
	}
}
