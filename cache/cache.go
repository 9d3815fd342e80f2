package cache

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Config configures a Tiered cache. Only Secret is required.
type Config struct {
	// Secret keys both the lookup HMAC and the entry MAC (through separate HKDF-derived keys).
	// At least 32 bytes; every replica sharing a Redis must use the same one.
	Secret []byte
	// L1Size bounds the in-process tier in entries; 0 disables it.
	L1Size int
	// Redis is the shared tier; nil means L1 only. The cache does not close it. Its calls are
	// bounded by RedisTimeout only if the client honours context deadlines
	// (ContextTimeoutEnabled, which NewRedisClient sets).
	Redis redis.UniversalClient
	// Deployment is what Redis was built from (NewRedisClient). In Sentinel mode the
	// revocation subscription follows the master through failovers with it (followMaster);
	// otherwise it is not needed.
	Deployment RedisConfig
	// RedisTimeout bounds each Redis call of Get and Set; required with Redis (the service's
	// cache.redis.timeout).
	RedisTimeout time.Duration
	// KeyPrefix starts every Redis key; default "mcp-authz:v5:", the value format's version.
	KeyPrefix string
	// Channel is the pub/sub channel revocations are announced on; default KeyPrefix+"revoke".
	Channel string
	// Intern lists strings common to many entries, usually the configured issuers and resource
	// identifiers, which Redis values then hold as a 3-byte reference instead of inline (about a
	// quarter of a typical entry). Replicas sharing a Redis should list the same strings: an
	// entry referring to one a replica lacks is a miss there, never a different identity.
	// L1 records refer to them too, and to a bounded number of others it learns (l1.go).
	Intern  []string
	Breaker BreakerConfig
	Logger  *slog.Logger
	// Now is the clock for entry lifetimes and the breaker; default time.Now.
	Now func() time.Time
	// RevokeRepeat: Revoke deletes and announces a second time after this long, for a
	// verification on another replica that stored its result after the first announcement was
	// sent but before it arrived. Default 10s, longer than any verification's timeout;
	// negative: once only.
	RevokeRepeat time.Duration
	// MaxTTL bounds every entry's lifetime, whatever its caller asks for: the service's
	// cache.max_ttl. A revocation is remembered for MaxTTL plus RevokeRepeat plus a minute
	// of slack for clocks and verifications in flight. Every replica sharing a Redis must use
	// the same value, or one that keeps entries longer outlives another's memory. Required.
	MaxTTL time.Duration
	// RevocationLimit bounds how many revocations are remembered at once (about 120 bytes
	// each; the service's cache.revocation_limit, required). Beyond it the oldest is forgotten and, until that one's memory
	// would have ended, positive Redis values that could predate it are refused (see
	// revocations): Redis stops sharing work for a while, it never serves a revoked token.
	RevocationLimit int
	// StaleGrace: how long past its deadline an L1 entry of a verified token may still stand
	// in for the token while it cannot be verified (Stale), never past the token's exp. Such
	// an entry is kept that long but is never a hit. 0: not at all; the service's
	// cache.stale_grace (default 5m) sets it.
	StaleGrace time.Duration
}

// Stats are cumulative counters since New.
type Stats struct {
	L1Hits, L1Misses           uint64
	L2Hits, L2Misses, L2Errors uint64
	L2Skipped                  uint64 // Redis not asked: breaker open
	BadMAC, Undecodable        uint64 // Redis values rejected (each also counted as a miss)
	Sets                       uint64
	EvictionsReceived          uint64 // revocations received on the channel
	StaleUsed                  uint64 // earlier verifications stood in for their token (Stale)
	RevokedDrops               uint64 // verification results not stored: their token was revoked meanwhile
	ClaimsWaited               uint64 // new tokens another replica was already verifying (Claim false)
	// Redis values refused (each also counted as a miss) because their token was revoked
	// within the revocation memory, or might have been (RevocationLimit exceeded).
	RevokedRefused uint64
	// Announcements on the revocation channel refused: not MAC'd with the cache secret, or
	// outside their time window (a replay). A genuine replica never sends one.
	AnnouncementsRejected uint64
	RevocationsRemembered int    // now
	RevocationsForgotten  uint64 // to stay within RevocationLimit
}

// Health is readiness detail. A cache whose Redis is down still answers (from L1, or a miss
// that sends the caller to the IdP), so it is information, not a reason to fail readiness.
type Health struct {
	RedisConfigured bool
	RedisUp         bool   // the last Redis call succeeded
	BreakerState    string // closed, open, half-open; "" without Redis
	LastError       string // the most recent Redis error, kept after recovery
}

// Tiered is a two-tier verified-token cache. It is safe for concurrent use.
type Tiered struct {
	keys      *hmacPool
	codec     *codec
	l1        *otter.Cache[l1Key, l1Value]
	in        *intern // the strings and lists L1 records share
	rdb       redis.UniversalClient
	prefix    string
	channel   string
	timeout   time.Duration
	br        *breaker
	now       func() time.Time
	log       *slog.Logger
	badLog    atomic.Int64 // unix nanos of the last logged rejected value
	annLog    atomic.Int64 // unix nanos of the last logged rejected announcement
	forgetLog atomic.Int64 // unix nanos of the last logged forgotten revocation
	// announce MACs revocation announcements, under a key of its own.
	announce *hmacPool
	maxTTL   time.Duration
	// grace is Config.StaleGrace in nanoseconds.
	grace int64
	// rev remembers revocations, so that neither a verification which started before one
	// (SetSince) nor a value saved from Redis before one and written back can bring the
	// token back.
	rev     *revocations
	repeat  time.Duration
	repeats sync.WaitGroup
	closing chan struct{}
	// epoch counts revocation-channel (re)subscriptions. An L1 entry from an earlier epoch
	// may have missed a revocation: it is not a hit, but it may still stand in for its
	// token when the token cannot be verified (Stale).
	epoch atomic.Uint32

	st struct {
		l1Hits, l1Misses, l2Hits, l2Misses, l2Errors, l2Skipped atomic.Uint64
		badMAC, undecodable, sets, evictions, staleUsed         atomic.Uint64
		revokedDrops, claimsWaited, revokedRefused, annRejected atomic.Uint64
	}

	// subMu guards sub, which followMaster replaces when a Sentinel master changes, and
	// orders that against Close.
	subMu     sync.Mutex
	sub       *redis.PubSub
	listeners sync.WaitGroup               // one listen per subscription made
	watchers  []interface{ Close() error } // Sentinel clients and their subscriptions
	closeOnce sync.Once
	closeErr  error
}

// staleEnd is when an entry stops standing in for its token (Stale): grace past its
// deadline, never past the token's exp. A negative entry stands in for nothing.
func staleEnd(deadline int64, neg bool, exp time.Time, grace int64) int64 {
	if neg || grace <= 0 {
		return deadline
	}
	end := deadline + grace
	if end < deadline { // a deadline near the end of time (a value without one)
		end = math.MaxInt64
	}
	if !exp.IsZero() {
		end = min(end, exp.UnixNano())
	}
	return end
}

const (
	defaultPrefix = "mcp-authz:v5:"
	// waitRoundTrips × RedisTimeout bounds how long New waits for the revocation
	// subscription, and Close for its end, so a Redis that hangs never holds up startup or
	// shutdown for long (a refused connection fails at once anyway).
	waitRoundTrips = 10
	// revokeTimeout floor: revocation is an admin call, not the hot path.
	revokeTimeout       = time.Second
	badLogEvery         = 10 * time.Second
	defaultRevokeRepeat = 10 * time.Second
	// revokeSlack lengthens a revocation's memory past the longest entry lifetime: replicas'
	// clocks differ (an entry's deadline is on its writer's clock), and a verification in
	// flight at the revocation stores its result a little later.
	revokeSlack = time.Minute
)

// New builds the cache and, with Redis, subscribes to the revocation channel. Redis being down
// is not an error: the cache starts on L1 and the breaker takes over.
func New(ctx context.Context, cfg Config) (*Tiered, error) {
	var errs []error
	if len(cfg.Secret) < 32 {
		errs = append(errs, errors.New("cache: secret: at least 32 bytes required"))
	}
	if cfg.L1Size < 0 {
		errs = append(errs, fmt.Errorf("cache: l1 size %d: must be 0 (disabled) or more", cfg.L1Size))
	}
	// What the configuration sets (package config) has no default here: one home for each.
	if cfg.RedisTimeout < 0 || cfg.Redis != nil && cfg.RedisTimeout == 0 {
		errs = append(errs, errors.New("cache: redis timeout: must be positive with Redis (config's cache.redis.timeout)"))
	}
	if cfg.Breaker.Failures < 0 || cfg.Breaker.OpenFor < 0 {
		errs = append(errs, errors.New("cache: breaker: failures and open duration must not be negative"))
	}
	if cfg.MaxTTL <= 0 {
		errs = append(errs, errors.New("cache: max ttl: must be positive (config's cache.max_ttl)"))
	}
	if cfg.RevocationLimit <= 0 {
		errs = append(errs, errors.New("cache: revocation limit: must be positive (config's cache.revocation_limit)"))
	}
	if cfg.StaleGrace < 0 {
		errs = append(errs, errors.New("cache: stale grace: must not be negative (0: none)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = defaultPrefix
	}
	if cfg.Channel == "" {
		cfg.Channel = cfg.KeyPrefix + "revoke"
	}
	if cfg.Breaker.Failures == 0 {
		cfg.Breaker.Failures = 5
	}
	if cfg.Breaker.OpenFor == 0 {
		cfg.Breaker.OpenFor = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RevokeRepeat == 0 {
		cfg.RevokeRepeat = defaultRevokeRepeat
	}

	// Two keys from one secret (RFC 5869): knowing lookup keys (they are Redis key names)
	// must not help forge a MAC, and vice versa.
	lookupKey, err := hkdf.Key(sha256.New, cfg.Secret, nil, "mcp-authz cache lookup v1", 32)
	if err != nil {
		return nil, fmt.Errorf("cache: derive lookup key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, cfg.Secret, nil, "mcp-authz cache entry mac v1", 32)
	if err != nil {
		return nil, fmt.Errorf("cache: derive mac key: %w", err)
	}
	annKey, err := hkdf.Key(sha256.New, cfg.Secret, nil, "mcp-authz cache revocation mac v1", 32)
	if err != nil {
		return nil, fmt.Errorf("cache: derive announcement key: %w", err)
	}

	t := &Tiered{
		keys:     newHMACPool(lookupKey),
		codec:    newCodec(macKey, cfg.Intern),
		rdb:      cfg.Redis,
		prefix:   cfg.KeyPrefix,
		channel:  cfg.Channel,
		timeout:  cfg.RedisTimeout,
		now:      cfg.Now,
		log:      cfg.Logger,
		announce: newHMACPool(annKey),
		maxTTL:   cfg.MaxTTL,
		rev:      newRevocations(cfg.RevocationLimit, cfg.MaxTTL+max(cfg.RevokeRepeat, 0)+revokeSlack),
		repeat:   cfg.RevokeRepeat,
		grace:    int64(cfg.StaleGrace),
		closing:  make(chan struct{}),
	}
	if cfg.L1Size > 0 {
		now, grace, in := cfg.Now, int64(cfg.StaleGrace), newIntern(cfg.Intern)
		t.in = in
		t.l1, err = otter.New(&otter.Options[l1Key, l1Value]{
			MaximumSize: cfg.L1Size,
			// Expiry in otter only reclaims memory early; Get and Stale check the deadline
			// themselves on the Now clock, so a stale entry is never returned whichever clock
			// is behind. An entry is kept for the stale grace past its deadline, which only
			// Stale looks at.
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[l1Key, l1Value]) time.Duration {
				return time.Duration(in.staleEnd(e.Value, grace) - now().UnixNano())
			}),
			Logger: otterLogger{cfg.Logger},
		})
		if err != nil {
			return nil, fmt.Errorf("cache: l1: %w", err)
		}
	}
	if t.rdb == nil {
		return t, nil
	}

	t.br = &breaker{cfg: cfg.Breaker, now: cfg.Now, log: cfg.Logger}
	pctx, cancel := context.WithTimeout(ctx, t.timeout)
	if err := t.rdb.Ping(pctx).Err(); err != nil {
		t.br.failure(err)
		t.log.Warn("cache: redis not reachable at start; using the in-process cache until it is", "error", errText(err))
	} else {
		t.br.success()
	}
	cancel()

	sctx, cancel := context.WithTimeout(ctx, waitRoundTrips*t.timeout)
	defer cancel()
	t.sub = t.rdb.Subscribe(sctx, t.channel)
	ready := make(chan struct{})
	t.listeners.Add(1)
	go t.listen(t.sub.ChannelWithSubscriptions(), ready)
	select {
	case <-ready:
	case <-sctx.Done():
		t.log.Warn("cache: revocation channel not subscribed yet; go-redis keeps retrying")
	}
	if cfg.Deployment.mode() == ModeSentinel {
		t.followMaster(cfg.Deployment)
	}
	return t, nil
}

// listen applies revocations announced by any replica. go-redis reconnects and resubscribes
// on its own; messages published while it was away are lost, so every (re)subscription starts
// a new epoch: entries stored before it are re-verified before they are trusted again, and
// are used only when their token cannot be verified at all (Stale). Clearing L1 instead would
// turn every Redis blip during an IdP outage into an outage for every cached token. ready, if
// not nil, is closed at the first subscription: New waits for it; a subscription moved to a
// new master (resubscribe) has none, so all of its subscriptions are reported.
func (t *Tiered) listen(msgs <-chan any, ready chan struct{}) {
	defer t.listeners.Done()
	for msg := range msgs {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			t.epoch.Add(1)
			if ready != nil {
				close(ready)
				ready = nil
			} else {
				t.log.Info("cache: revocation channel resubscribed; in-process entries are re-verified in case revocations were missed")
			}
		case *redis.Message:
			key, ok := t.parseAnnouncement(m.Payload, t.now().UnixNano())
			if !ok {
				t.rejectedAnnouncement()
				continue
			}
			t.noteRevoked(key)
			if t.l1 != nil {
				t.l1.Invalidate(l1KeyOf(key))
			}
			// Counted after the eviction took effect, so the counter means "applied".
			t.st.evictions.Add(1)
		}
	}
}

// Close stops the revocation listener and the L1 maintenance goroutine. It does not close the
// Redis client, which the caller owns.
func (t *Tiered) Close() error {
	t.closeOnce.Do(func() {
		close(t.closing)
		t.repeats.Wait()
		if t.l1 != nil {
			t.l1.StopAllGoroutines()
		}
		// closing is closed, so resubscribe makes no subscription after this one.
		t.subMu.Lock()
		sub := t.sub
		t.subMu.Unlock()
		if sub == nil {
			return
		}
		// go-redis holds the subscription's lock while it reads, so against a Redis that
		// hangs, PubSub.Close waits for the client's read timeout. Shutdown waits a bounded
		// time and leaves the rest to finish in the background.
		errc := make(chan error, 1)
		go func() {
			for _, w := range t.watchers {
				_ = w.Close() // a sentinel that is gone is no reason to fail Close
			}
			err := sub.Close()
			t.listeners.Wait()
			errc <- err
		}()
		select {
		case err := <-errc:
			if err != nil {
				t.closeErr = fmt.Errorf("cache: close revocation subscription: %w", err)
			}
		case <-time.After(waitRoundTrips * t.timeout):
			t.closeErr = errors.New("cache: revocation subscription still closing (redis not answering)")
		}
	})
	return t.closeErr
}

// Key is HMAC-SHA256 of the token under a key derived from the secret, so neither Redis keys
// nor logs of them reveal a token, and nobody without the secret can compute which key a token
// would use.
func (t *Tiered) Key(token string) [32]byte {
	m := t.keys.get()
	m.h.Write(stringBytes(token))
	k := [32]byte(m.h.Sum(m.sum[:0]))
	t.keys.put(m)
	return k
}

// Get answers from L1, then Redis. The Identity's slices and map are shared with the cache and
// must not be modified.
func (t *Tiered) Get(ctx context.Context, key [32]byte) (id identity.Identity, negative bool, ok bool) {
	id, negative, _, ok = t.GetTier(ctx, key)
	return id, negative, ok
}

// GetTier is Get, also saying which tier answered: "l1" or "redis" (the decision core's
// TierL1 and TierRedis).
func (t *Tiered) GetTier(ctx context.Context, key [32]byte) (id identity.Identity, negative bool, tier string, ok bool) {
	// A child span only inside a recorded trace: an untraced lookup stays allocation-free.
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		var span trace.Span
		ctx, span = sp.TracerProvider().Tracer("github.com/mcp-authz/mcp-authz/cache").Start(ctx, "cache.lookup")
		defer func() {
			span.SetAttributes(attribute.Bool("mcp_authz.cache.hit", ok), attribute.String("mcp_authz.cache.tier", tier))
			span.End()
		}()
	}
	now := t.now().UnixNano()
	if t.l1 != nil {
		if v, hit := t.l1.GetIfPresent(l1KeyOf(key)); hit && now < v.deadline {
			if e, epoch := t.in.read(v.p); epoch == t.epoch.Load() {
				t.st.l1Hits.Add(1)
				return e.id, e.neg, "l1", true
			}
		}
		t.st.l1Misses.Add(1)
	}
	if t.rdb == nil {
		return identity.Identity{}, false, "", false
	}
	e, ok := t.fromRedis(ctx, key, now, true)
	if !ok {
		return identity.Identity{}, false, "", false
	}
	return e.id, e.neg, "redis", true
}

// Stale returns an identity this replica verified before that is no longer a hit: the
// stand-in for a token that is being re-verified, or whose verifier is unavailable. Either
// its revocation channel reconnected since (the entry is still within its lifetime), or its
// lifetime ended less than StaleGrace ago (and the token's exp has not passed). A revocation
// this replica knows of rules it out; one announced while the channel was down, or made at the
// issuer only, is missed until the token's re-verification gets an answer: for one round trip
// with a healthy issuer, for up to StaleGrace past max_ttl with one that cannot answer.
func (t *Tiered) Stale(key [32]byte) (identity.Identity, bool) {
	if t.l1 == nil {
		return identity.Identity{}, false
	}
	v, hit := t.l1.GetIfPresent(l1KeyOf(key))
	if !hit {
		return identity.Identity{}, false
	}
	e, _ := t.in.read(v.p)
	if e.neg || t.now().UnixNano() >= staleEnd(v.deadline, false, e.id.Expiry, t.grace) {
		return identity.Identity{}, false
	}
	// Revocation evicts from L1, so this only matters for an entry that came back some other
	// way; every store is at most maxTTL before its deadline.
	if t.rev.since(key, v.deadline-int64(t.maxTTL)) {
		return identity.Identity{}, false
	}
	t.st.staleUsed.Add(1)
	return e.id, true
}

// fromRedis reads key's entry from Redis into L1. now is when the caller started, on the Now
// clock; countMiss is false for polls, whose finding nothing is not a miss.
func (t *Tiered) fromRedis(ctx context.Context, key [32]byte, now int64, countMiss bool) (entry, bool) {
	e, end, ok := t.fetch(ctx, key, countMiss)
	if !ok || t.l1 == nil {
		return e, ok
	}
	t.l1.Set(l1KeyOf(key), l1Value{p: t.in.record(&e, t.epoch.Load()), deadline: end})
	// A revocation that arrived while the value was on its way evicted nothing yet.
	if !e.neg && t.rev.since(key, now) {
		t.l1.Invalidate(l1KeyOf(key))
	}
	return e, true
}

// fetch reads one entry from Redis, and when it ends (unix nanos on the Now clock).
func (t *Tiered) fetch(ctx context.Context, key [32]byte, countMiss bool) (entry, int64, bool) {
	if !t.br.allow() {
		if countMiss {
			t.st.l2Skipped.Add(1)
		}
		return entry{}, 0, false
	}
	rkey := t.rkey(key)
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	// Redis's TTL on the key is not asked: whoever can write to Redis can set it to anything.
	// The value's own deadline, under its MAC, decides.
	v, err := t.rdb.Get(cctx, rkey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.failed(ctx, err)
		return entry{}, 0, false
	}
	t.br.success()
	miss := func() (entry, int64, bool) {
		if countMiss {
			t.st.l2Misses.Add(1)
		}
		return entry{}, 0, false
	}
	if err != nil {
		return miss()
	}
	e, end, err := t.codec.decode(rkey, v)
	if err != nil {
		t.rejected(key, err)
		return entry{}, 0, false
	}
	now := t.now().UnixNano()
	if exp := e.id.Expiry; !exp.IsZero() {
		end = min(end, exp.UnixNano())
	}
	if end <= now {
		return miss()
	}
	// A negative entry only denies, which a revocation does too.
	if !e.neg && t.rev.refuses(key, end, now) {
		if countMiss {
			t.st.revokedRefused.Add(1)
		}
		return miss()
	}
	t.st.l2Hits.Add(1)
	return e, end, true
}

// failed classifies a Redis error: the caller giving up says nothing about Redis.
func (t *Tiered) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		t.br.abandon()
		return
	}
	t.st.l2Errors.Add(1)
	t.br.failure(err)
}

func (t *Tiered) rejected(key [32]byte, err error) {
	if errors.Is(err, errBadMAC) {
		t.st.badMAC.Add(1)
	} else {
		t.st.undecodable.Add(1)
	}
	t.st.l2Misses.Add(1)
	// Whoever can write bad values can write many; one line per interval is enough to notice.
	now := t.now().UnixNano()
	last := t.badLog.Load()
	if last != 0 && now-last < int64(badLogEvery) || !t.badLog.CompareAndSwap(last, now) {
		return
	}
	t.log.Warn("cache: rejected a redis value (treated as a miss)", "reason", err.Error(),
		"key", hex.EncodeToString(key[:4]), "bad_mac_total", t.st.badMAC.Load(), "undecodable_total", t.st.undecodable.Load())
}

// Set stores a verified identity for at most ttl and never past id.Expiry.
func (t *Tiered) Set(ctx context.Context, key [32]byte, id identity.Identity, ttl time.Duration) {
	// L1 keeps its own copy (intern.record) and Redis an encoding: a caller changing its
	// slices later does not change what other requests are served.
	t.store(ctx, key, entry{id: id}, ttl)
}

// Mark is the moment a verification starts, for SetSince.
func (t *Tiered) Mark() int64 { return t.now().UnixNano() }

// SetSince is Set for the result of a verification that started at mark. If the token was
// revoked since (here, or announced by another replica), the result may predate the
// revocation and is not stored: the revoked token is verified again on its next use.
func (t *Tiered) SetSince(ctx context.Context, key [32]byte, id identity.Identity, ttl time.Duration, mark int64) {
	if t.revokedSince(key, mark) {
		t.st.revokedDrops.Add(1)
		return
	}
	t.Set(ctx, key, id, ttl)
	// A revocation that ran between the check and the store found nothing to delete.
	if t.revokedSince(key, mark) {
		t.st.revokedDrops.Add(1)
		t.forget(ctx, key)
	}
}

func (t *Tiered) noteRevoked(key [32]byte) {
	if !t.rev.note(key, t.now().UnixNano()) {
		return
	}
	// Once per burst: a burst past the bound is an operator's doing and one line names it.
	now := t.now().UnixNano()
	last := t.forgetLog.Load()
	if last != 0 && now-last < int64(badLogEvery) || !t.forgetLog.CompareAndSwap(last, now) {
		return
	}
	_, forgotten := t.rev.count()
	t.log.Warn("cache: more revocations than cache revocation limit; the oldest was forgotten, and redis values that might predate it are refused until its memory would have ended",
		"forgotten_total", forgotten)
}

func (t *Tiered) revokedSince(key [32]byte, mark int64) bool { return t.rev.since(key, mark) }

// rejectedAnnouncement counts an announcement that was not MAC'd with the cache secret or is
// outside its window, and says so at most once per interval: someone who can publish on
// the channel can publish a lot.
func (t *Tiered) rejectedAnnouncement() {
	n := t.st.annRejected.Add(1)
	now := t.now().UnixNano()
	last := t.annLog.Load()
	if last != 0 && now-last < int64(badLogEvery) || !t.annLog.CompareAndSwap(last, now) {
		return
	}
	t.log.Warn("cache: ignored a revocation announcement that is not from a replica with the cache secret, or is a replay",
		"channel", t.channel, "rejected_total", n)
}

// forget removes key from L1 and Redis, best effort.
func (t *Tiered) forget(ctx context.Context, key [32]byte) {
	if t.l1 != nil {
		t.l1.Invalidate(l1KeyOf(key))
	}
	t.del(ctx, t.rkey(key))
}

// del deletes a Redis key on the hot path's terms: skipped while the breaker is open, bounded
// by the Redis timeout, and its outcome fed to the breaker. (Revoke, an admin call that must
// report failure, has its own.)
func (t *Tiered) del(ctx context.Context, rkey string) {
	if t.rdb == nil || !t.br.allow() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := t.rdb.Del(cctx, rkey).Err(); err != nil {
		t.failed(ctx, err)
		return
	}
	t.br.success()
}

// SetNegative remembers that a token is invalid, so a flood of the same garbage reaches the IdP
// once per ttl.
func (t *Tiered) SetNegative(ctx context.Context, key [32]byte, ttl time.Duration) {
	t.store(ctx, key, entry{neg: true}, ttl)
}

func (t *Tiered) store(ctx context.Context, key [32]byte, e entry, ttl time.Duration) {
	now := t.now()
	ttl = min(ttl, t.maxTTL)
	if exp := e.id.Expiry; !exp.IsZero() {
		if left := exp.Sub(now); left < ttl {
			ttl = left
		}
	}
	if ttl <= 0 {
		return
	}
	t.st.sets.Add(1)
	deadline := now.UnixNano() + int64(ttl)
	if t.l1 != nil {
		t.l1.Set(l1KeyOf(key), l1Value{p: t.in.record(&e, t.epoch.Load()), deadline: deadline})
	}
	// Redis keeps milliseconds: round down so it never outlives the entry. (The value's own
	// deadline, in whole seconds, is what readers enforce; this only lets Redis reclaim it.)
	ttl = ttl.Truncate(time.Millisecond)
	if t.rdb == nil || ttl <= 0 || time.Unix(0, deadline).Unix() <= now.Unix() {
		return // (the last: dead on arrival, its deadline rounded down to now)
	}
	rkey := t.rkey(key)
	v := t.codec.encode(rkey, &e, deadline)
	if len(v) > maxValue || !t.br.allow() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := t.rdb.Set(cctx, rkey, v, ttl).Err(); err != nil {
		t.failed(ctx, err)
		return
	}
	t.br.success()
}

// Revoke forgets a key everywhere: Redis, this replica's L1, and (through the channel) every
// other replica's L1. An error means Redis could not be told; this replica has still forgotten.
// Verifications in flight when it runs do not store their results (SetSince), here or on a
// replica the announcement has reached; for one that stored before the announcement arrived,
// the delete and the announcement are repeated after RevokeRepeat. Revoke the token at the
// authorization server first, or its next verification simply succeeds again.
func (t *Tiered) Revoke(ctx context.Context, key [32]byte) error {
	t.noteRevoked(key)
	if err := t.revoke(ctx, key); err != nil {
		return err
	}
	if t.rdb != nil && t.repeat > 0 {
		t.repeats.Add(1)
		go func() {
			defer t.repeats.Done()
			select {
			case <-time.After(t.repeat):
			case <-t.closing:
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), max(t.timeout, revokeTimeout))
			defer cancel()
			if err := t.revoke(ctx, key); err != nil {
				t.log.Warn("cache: repeating a revocation failed", "error", errText(err))
			}
		}()
	}
	return nil
}

func (t *Tiered) revoke(ctx context.Context, key [32]byte) error {
	if t.l1 != nil {
		t.l1.Invalidate(l1KeyOf(key))
	}
	if t.rdb == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, max(t.timeout, revokeTimeout))
	defer cancel()
	// Delete before announcing, in separate round trips (a cluster pipeline would send them
	// to different nodes at once): a replica that evicts on the message must find Redis
	// already empty, or it would refill its L1 from the revoked entry.
	if err := t.rdb.Del(cctx, t.rkey(key)).Err(); err != nil {
		return fmt.Errorf("cache: revoke: delete: %w", err)
	}
	// A concurrent Get may have refilled L1 from Redis before the delete.
	if t.l1 != nil {
		t.l1.Invalidate(l1KeyOf(key))
	}
	if err := t.rdb.Publish(cctx, t.channel, t.announcement(key, t.now().UnixNano())).Err(); err != nil {
		return fmt.Errorf("cache: revoke: publish: %w", err)
	}
	return nil
}

// Stats returns the counters.
func (t *Tiered) Stats() Stats {
	remembered, forgotten := t.rev.count()
	return Stats{
		L1Hits: t.st.l1Hits.Load(), L1Misses: t.st.l1Misses.Load(),
		L2Hits: t.st.l2Hits.Load(), L2Misses: t.st.l2Misses.Load(), L2Errors: t.st.l2Errors.Load(),
		L2Skipped: t.st.l2Skipped.Load(),
		BadMAC:    t.st.badMAC.Load(), Undecodable: t.st.undecodable.Load(),
		Sets: t.st.sets.Load(), EvictionsReceived: t.st.evictions.Load(), StaleUsed: t.st.staleUsed.Load(),
		RevokedDrops: t.st.revokedDrops.Load(), ClaimsWaited: t.st.claimsWaited.Load(),
		RevokedRefused: t.st.revokedRefused.Load(), AnnouncementsRejected: t.st.annRejected.Load(),
		RevocationsRemembered: remembered, RevocationsForgotten: forgotten,
	}
}

// Health reports the Redis tier's state.
func (t *Tiered) Health() Health {
	if t.rdb == nil {
		return Health{}
	}
	state, failures, lastErr := t.br.snapshot()
	return Health{
		RedisConfigured: true,
		RedisUp:         state == stateClosed && failures == 0,
		BreakerState:    state.String(),
		LastError:       lastErr,
	}
}

// rkey is the Redis key: the first 16 bytes of the token's HMAC are plenty to tell tokens apart
// (a collision among 2^64 live tokens is unlikely, and a forged one needs the cache secret),
// and they keep an entry's key 16 bytes shorter in Redis, where keys are most of an entry.
func (t *Tiered) rkey(key [32]byte) string { return t.prefix + string(key[:16]) }

// otterLogger routes otter's rare warnings to our logger instead of slog.Default.
type otterLogger struct{ l *slog.Logger }

func (o otterLogger) Warn(ctx context.Context, msg string, err error) {
	o.l.WarnContext(ctx, "cache: l1: "+msg, "error", err)
}

func (o otterLogger) Error(ctx context.Context, msg string, err error) {
	o.l.ErrorContext(ctx, "cache: l1: "+msg, "error", err)
}
