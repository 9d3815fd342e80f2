package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Where a Verifier's answer came from (the decision core's Decision.Tier values).
const (
	TierL1    = "l1"
	TierRedis = "redis"
	TierIdP   = "idp"   // the verifier chain answered (this Check's flight, or one it joined)
	TierStale = "stale" // an earlier verification by this replica (Tiered.Stale)
)

// Next is the verifier a Verifier puts the cache in front of: the decision core's verifier
// chain. Its errors wrap identity.ErrInvalid or identity.ErrUnavailable.
type Next interface {
	Verify(ctx context.Context, token string) (identity.Identity, error)
}

// VerifierOptions configure Tiered.Verifier. Defaults are the configuration's (package
// config); zero values mean what they say.
type VerifierOptions struct {
	// MaxTTL bounds a positive entry; it must be positive.
	MaxTTL time.Duration
	// NegativeTTL is how long a token found invalid is remembered; 0: not remembered.
	NegativeTTL time.Duration
	// RevalidateAfter, by issuer: an introspected token's entry lasts at most this long, so
	// that once it is due the stale path answers from it while the token is introspected
	// again; a revocation at the issuer then reaches this replica within about this long
	// rather than MaxTTL. Locally verified JWTs are not affected: nothing would be learnt by
	// checking their signature again.
	RevalidateAfter map[string]time.Duration
	// ClaimWait: a token for which Shared is true is verified by one replica while the others
	// wait up to this long for its result (Tiered.Claim); it should exceed the slowest
	// introspection. 0: no coordination.
	ClaimWait time.Duration
	// Shared says whether verifying token costs enough (an introspection call) to be worth
	// coordinating between replicas; local JWT checks cost less than the coordination would.
	Shared func(token string) bool
	Logger *slog.Logger
}

// A Verifier answers for a token from the cache, or runs Next once for all concurrent
// callers presenting the same token and stores the result. It owns every caching decision
// of a Check: tiers, stale use, revocation marks and cross-replica claims.
type Verifier struct {
	t        *Tiered
	next     Next
	o        VerifierOptions
	log      *slog.Logger
	inflight singleflight.Group
}

// Verifier puts the cache in front of next.
func (t *Tiered) Verifier(next Next, o VerifierOptions) (*Verifier, error) {
	if next == nil {
		return nil, errors.New("cache: a Verifier needs the verifier it caches")
	}
	if o.MaxTTL <= 0 {
		return nil, fmt.Errorf("cache: a Verifier's MaxTTL must be positive (got %s)", o.MaxTTL)
	}
	v := &Verifier{t: t, next: next, o: o, log: o.Logger}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

// Key is the token's lookup key (Tiered.Key): a keyed hash, never the token. ok is always
// true: there is a cache.
func (v *Verifier) Key(token string) ([32]byte, bool) { return v.t.Key(token), true }

// ErrCachedInvalid marks a token refused from the negative cache: its class was logged when it
// was first refused.
var ErrCachedInvalid error = cachedInvalid{}

type cachedInvalid struct{}

func (cachedInvalid) Error() string               { return "invalid token: cached as invalid" }
func (cachedInvalid) Unwrap() error               { return identity.ErrInvalid }
func (cachedInvalid) DenialClass() identity.Class { return identity.ClassCached }

// answer is a flight's result: every caller joining the flight reports its tier.
type answer struct {
	id   identity.Identity
	tier string
}

// Verify answers for token, whose lookup key is key (Key). tier says where the answer came
// from. The Identity's slices and map are shared with the cache and must not be modified.
func (v *Verifier) Verify(ctx context.Context, token string, key [32]byte) (identity.Identity, string, error) {
	id, neg, tier, hit := v.t.GetTier(ctx, key)
	if hit && trusted(&id, neg) {
		if neg {
			return identity.Identity{}, tier, ErrCachedInvalid
		}
		return id, tier, nil
	}
	// Stale-while-revalidate: a token this replica verified before, whose entry is no longer
	// a hit (Tiered.Stale), is answered from that entry at once while the flight below
	// verifies it again in the background and stores the result, so a definite "invalid"
	// denies the next Check and a failing IdP costs such a Check nothing.
	sid, hasStale := v.stale(key)
	flight := v.inflight.DoChan(string(key[:]), func() (_ any, err error) {
		// DoChan runs this in a goroutine of its own, where a panic would end the process:
		// it is handed to the caller, whose own recovery (the adapter's) then sees it.
		defer func() {
			if p := recover(); p != nil {
				err = flightPanic{p}
			}
		}()
		// The caller's cancellation must not fail everyone waiting on this flight.
		return v.fly(context.WithoutCancel(ctx), token, key, hasStale)
	})
	if hasStale {
		return sid, TierStale, nil
	}
	select {
	case res := <-flight:
		if fp, ok := res.Err.(flightPanic); ok {
			panic(fp.p)
		}
		a := res.Val.(answer)
		if res.Err != nil {
			return identity.Identity{}, a.tier, res.Err
		}
		return a.id, a.tier, nil
	case <-ctx.Done():
		if sid, ok := v.stale(key); ok {
			return sid, TierStale, nil
		}
		// The caller's budget (check_timeout, the proxy's deadline) is spent: it gets the
		// unavailable answer, with its challenge, while the proxy still waits for one. The
		// flight goes on and serves the callers after it.
		return identity.Identity{}, TierIdP, fmt.Errorf("%w: no answer within the Check's budget: %w", identity.ErrUnavailable, ctx.Err())
	}
}

// fly is one verification of token shared by every concurrent caller. background is true when
// the callers were already answered from a stale entry.
func (v *Verifier) fly(ctx context.Context, token string, key [32]byte, background bool) (answer, error) {
	// A background re-verification is not worth the round trips of a claim: while the IdP
	// fails, every Check of the token starts one.
	if v.o.ClaimWait > 0 && !background && v.o.Shared != nil && v.o.Shared(token) {
		if !v.t.Claim(ctx, key, v.o.ClaimWait) {
			if id, neg, ok := v.t.Await(ctx, key, v.o.ClaimWait); ok {
				if neg {
					return answer{tier: TierRedis}, ErrCachedInvalid
				}
				return answer{id, TierRedis}, nil
			}
		} else {
			// Deferred, so it runs after the result below is stored.
			defer v.t.Unclaim(ctx, key)
		}
	}
	mark := v.t.Mark()
	id, err := v.next.Verify(ctx, token)
	switch {
	case err == nil:
		if ttl := v.ttl(&id); ttl > 0 {
			v.t.SetSince(ctx, key, id, ttl, mark)
		}
	case errors.Is(err, identity.ErrInvalid):
		if v.o.NegativeTTL > 0 {
			v.t.SetNegative(ctx, key, v.o.NegativeTTL)
		}
	case errors.Is(err, identity.ErrUnavailable):
		// Verified earlier by this replica, held back only because a revocation might have
		// been missed: better than refusing a token nobody can check now.
		if sid, ok := v.stale(key); ok {
			v.log.Debug("verifier unavailable; using this replica's earlier verification", "issuer", sid.Issuer, "error", err)
			return answer{sid, TierStale}, nil
		}
	}
	return answer{id, TierIdP}, err
}

// trusted says whether a cache entry may answer. An API-key identity in the cache (stored by
// an older version) may not: whether the key is still configured is known only to the core's
// API-key check, which runs on every Check before this.
func trusted(id *identity.Identity, neg bool) bool {
	return neg || id.Source != identity.SourceAPIKey
}

// stale is Tiered.Stale for an entry that may answer.
func (v *Verifier) stale(key [32]byte) (identity.Identity, bool) {
	id, ok := v.t.Stale(key)
	return id, ok && trusted(&id, false)
}

// ttl: never past the token's own expiry (RFC 7662 §4), never longer than configured.
func (v *Verifier) ttl(id *identity.Identity) time.Duration {
	ttl := v.o.MaxTTL
	if r, ok := v.o.RevalidateAfter[id.Issuer]; ok && id.Source == identity.SourceIntrospection && r < ttl {
		ttl = r
	}
	if !id.Expiry.IsZero() {
		if left := id.Expiry.Sub(v.t.now()); left < ttl {
			ttl = left
		}
	}
	return ttl
}

// flightPanic carries a panic out of a verification flight to the caller waiting for it.
type flightPanic struct{ p any }

func (f flightPanic) Error() string { return fmt.Sprint("panic in verification: ", f.p) }
