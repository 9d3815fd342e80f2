package upstream

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz"
)

// Store caches exchanged tokens: a bounded in-process tier in front of Redis, shared by
// replicas. It is not the verified-identity cache: its own key prefix, its own keys derived
// from the cache secret, its own values.
//
//   - Keys are HMAC-SHA256 over the caller's token and the exchange's parameters (audience,
//     resource, scopes, token type), under a key derived from the secret: a Redis reader
//     learns neither the token nor which caller a key belongs to.
//   - Values are sealed with AES-256-GCM under another derived key, with the Redis key as
//     associated data: a Redis reader gets no usable token, and a value moved to another key
//     does not open.
//   - Every value carries its own absolute deadline (≤ the exchanged token's exp less a
//     refresh margin, ≤ the caller's exp, ≤ MaxTTL), checked on read whatever Redis's TTL says,
//     and the time its exchange started: a value made before a revocation of the caller's
//     token (Revoked) is refused, here and on every replica the revocation reached.
type Store struct {
	keyPool sync.Pool // hash.Hash keyed with the lookup key
	aead    cipher.AEAD
	l1      *otter.Cache[[32]byte, entry]
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	maxTTL  time.Duration
	negTTL  time.Duration
	claim   time.Duration
	// callerKey names a caller's token: the verified-token cache's key, so that the one HMAC
	// of the token serves both as this cache's key material and for revocations.
	callerKey func(token string) [32]byte
	revoked   func(callerKey [32]byte, since int64) bool
	now       func() time.Time
	log       *slog.Logger

	st struct{ l1Hits, redisHits, misses, refused, sets, badValues, claimsWaited atomic.Uint64 }
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// Secret is the cache secret (cache.secret); the Store derives its own keys from it. At
	// least 32 bytes; replicas sharing a Redis need the same one.
	Secret []byte
	L1Size int                   // entries; 0: no in-process tier
	Redis  redis.UniversalClient // nil: in-process only
	// RedisTimeout bounds each Redis call; default 50ms.
	RedisTimeout time.Duration
	// KeyPrefix starts every Redis key; default "mcp-authz:xtok:v1:".
	KeyPrefix string
	// MaxTTL bounds every entry (cache.max_ttl): revocations are remembered that long, so an
	// entry must not outlive the memory of a revocation it has to answer to.
	MaxTTL time.Duration
	// NegativeTTL: how long a refused exchange is remembered in process, so a caller the AS
	// refuses does not send it a request per Check. Default 10s.
	NegativeTTL time.Duration
	// ClaimWait: with Redis, a replica that misses claims the key and exchanges, and the
	// others wait up to this long for its result instead of exchanging too. 0: no waiting.
	ClaimWait time.Duration
	// CallerKey is the verified-token cache's key of a caller's token (cache.Tiered.Key);
	// nil: a key of the Store's own. Revoked says whether the token with that key was revoked
	// at or after since (unix nanoseconds on Now), or might have been
	// (cache.Tiered.RevokedSince). Nil: no revocations.
	CallerKey func(token string) [32]byte
	Revoked   func(callerKey [32]byte, since int64) bool
	Now       func() time.Time
	Logger    *slog.Logger
}

type entry struct {
	// cred: the headers the entry's Exchange sets, built once when it enters L1; read-only.
	cred       []authz.Header
	token, act string
	deadline   int64 // unix nanos
	mark       int64 // when the exchange started, unix nanos
	neg        bool  // a refused exchange (in process only)
}

// Stats are cumulative counters.
type Stats struct {
	L1Hits, RedisHits, Misses uint64
	// Refused: cached values not used because the caller's token was revoked since.
	Refused uint64
	Sets    uint64
	// BadValues: Redis values that did not open (wrong key, tampered, moved) or were malformed.
	BadValues    uint64
	ClaimsWaited uint64
}

// NewStore derives the keys and builds the tiers.
func NewStore(cfg StoreConfig) (*Store, error) {
	if len(cfg.Secret) < 32 {
		return nil, errors.New("the cache secret must be at least 32 bytes")
	}
	lookup, err := hkdf.Key(sha256.New, cfg.Secret, nil, "mcp-authz exchanged-token lookup v1", 32)
	if err != nil {
		return nil, err
	}
	seal, err := hkdf.Key(sha256.New, cfg.Secret, nil, "mcp-authz exchanged-token seal v1", 32)
	if err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(seal)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	s := &Store{aead: aead, rdb: cfg.Redis, prefix: cfg.KeyPrefix, timeout: cfg.RedisTimeout,
		maxTTL: cfg.MaxTTL, negTTL: cfg.NegativeTTL, claim: cfg.ClaimWait, callerKey: cfg.CallerKey, revoked: cfg.Revoked, now: cfg.Now, log: cfg.Logger}
	s.keyPool.New = func() any { return hmac.New(sha256.New, lookup) }
	if s.callerKey == nil {
		own, err := hkdf.Key(sha256.New, cfg.Secret, nil, "mcp-authz exchanged-token caller v1", 32)
		if err != nil {
			return nil, err
		}
		pool := &sync.Pool{New: func() any { return hmac.New(sha256.New, own) }}
		s.callerKey = func(tok string) [32]byte {
			h := pool.Get().(hash.Hash)
			h.Reset()
			h.Write(stringBytes(tok))
			var k [32]byte
			h.Sum(k[:0])
			pool.Put(h)
			return k
		}
	}
	if s.prefix == "" {
		s.prefix = "mcp-authz:xtok:v1:"
	}
	if s.timeout <= 0 {
		s.timeout = 50 * time.Millisecond
	}
	if s.maxTTL <= 0 {
		s.maxTTL = 5 * time.Minute
	}
	if s.negTTL <= 0 {
		s.negTTL = 10 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rdb == nil {
		s.claim = 0
	}
	if cfg.L1Size > 0 {
		now := s.now
		s.l1, err = otter.New(&otter.Options[[32]byte, entry]{
			MaximumSize: cfg.L1Size,
			// Only reclaims memory early: reads check the deadline themselves.
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[32]byte, entry]) time.Duration {
				return time.Duration(e.Value.deadline - now().UnixNano())
			}),
		})
		if err != nil {
			return nil, fmt.Errorf("exchanged-token cache: %w", err)
		}
	}
	return s, nil
}

// Close stops the in-process tier's maintenance. The Redis client is the caller's.
func (s *Store) Close() {
	if s.l1 != nil {
		s.l1.StopAllGoroutines()
	}
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{L1Hits: s.st.l1Hits.Load(), RedisHits: s.st.redisHits.Load(), Misses: s.st.misses.Load(),
		Refused: s.st.refused.Load(), Sets: s.st.sets.Load(), BadValues: s.st.badValues.Load(), ClaimsWaited: s.st.claimsWaited.Load()}
}

// key is the lookup key of one exchange: HMAC over the caller's token's key (itself an HMAC of
// the token under the cache secret), the exchange's fixed parameters (length-prefixed by the
// caller) and the requested scope, length-prefixed, so that no two different inputs hash alike.
func (s *Store) key(callerKey [32]byte, params []byte, scope string) [32]byte {
	h := s.keyPool.Get().(hash.Hash)
	h.Reset()
	var n [binary.MaxVarintLen64]byte
	h.Write(callerKey[:])
	h.Write(params)
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(scope)))])
	h.Write(stringBytes(scope))
	var k [32]byte
	h.Sum(k[:0])
	s.keyPool.Put(h)
	return k
}

// stringBytes views s as bytes without copying; the hash only reads them.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (s *Store) rkey(k [32]byte) string { return s.prefix + string(k[:]) }

// get answers from L1, then Redis. tier is "l1" or "redis". A value past its deadline, or made
// before a revocation of the caller's token, is never returned.
func (s *Store) get(ctx context.Context, k, callerKey [32]byte) (e entry, tier string, ok bool) {
	now := s.now().UnixNano()
	if s.l1 != nil {
		if e, ok := s.l1.GetIfPresent(k); ok && now < e.deadline {
			if e.neg {
				s.st.l1Hits.Add(1)
				return e, "l1", true
			}
			if s.revoked == nil || !s.revoked(callerKey, e.mark) {
				s.st.l1Hits.Add(1)
				return e, "l1", true
			}
			s.st.refused.Add(1)
			s.l1.Invalidate(k)
		}
	}
	if s.rdb == nil {
		s.st.misses.Add(1)
		return entry{}, "", false
	}
	e, ok = s.fromRedis(ctx, k, callerKey, now)
	if !ok {
		s.st.misses.Add(1)
		return entry{}, "", false
	}
	s.st.redisHits.Add(1)
	return e, "redis", true
}

func (s *Store) fromRedis(ctx context.Context, k, callerKey [32]byte, now int64) (entry, bool) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rk := s.rkey(k)
	v, err := s.rdb.Get(cctx, rk).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.log.Debug("exchanged-token cache: redis get failed", "error", err)
		}
		return entry{}, false
	}
	e, err := s.open(rk, v)
	if err != nil {
		s.st.badValues.Add(1)
		s.log.Warn("exchanged-token cache: refused a redis value", "error", err)
		return entry{}, false
	}
	if now >= e.deadline {
		return entry{}, false
	}
	if s.revoked != nil && s.revoked(callerKey, e.mark) {
		s.st.refused.Add(1)
		return entry{}, false
	}
	return e, true
}

// keep puts an entry read from Redis into L1 (with its headers built).
func (s *Store) keep(k [32]byte, e entry) {
	if s.l1 != nil {
		s.l1.Set(k, e)
	}
}

// set stores a positive entry until deadline (already bounded by the caller's needs; bounded
// here by MaxTTL). The in-process tier gets it even when Redis is down.
func (s *Store) set(ctx context.Context, k [32]byte, e entry) {
	now := s.now().UnixNano()
	e.deadline = min(e.deadline, now+int64(s.maxTTL))
	if e.deadline <= now {
		return
	}
	s.st.sets.Add(1)
	if s.l1 != nil {
		s.l1.Set(k, e)
	}
	if s.rdb == nil || e.neg {
		return
	}
	ttl := time.Duration(e.deadline - now).Truncate(time.Millisecond)
	if ttl <= 0 {
		return
	}
	rk := s.rkey(k)
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.rdb.Set(cctx, rk, s.seal(rk, e), ttl).Err(); err != nil {
		s.log.Debug("exchanged-token cache: redis set failed", "error", err)
	}
}

// setRefused remembers a refused exchange in process for NegativeTTL.
func (s *Store) setRefused(k [32]byte) {
	if s.l1 != nil {
		s.l1.Set(k, entry{neg: true, deadline: s.now().UnixNano() + int64(s.negTTL)})
	}
}

// Value format, version 1: nonce (12) ‖ AES-256-GCM(plaintext, aad = Redis key), plaintext =
//
//	version  byte = 1
//	deadline int64 big-endian, unix nanos
//	mark     int64 big-endian, unix nanos
//	token    uvarint length ‖ bytes
//	act      uvarint length ‖ bytes
const valueVersion = 1

func (s *Store) seal(rk string, e entry) []byte {
	pt := make([]byte, 0, 1+16+2*binary.MaxVarintLen64+len(e.token)+len(e.act))
	pt = append(pt, valueVersion)
	pt = binary.BigEndian.AppendUint64(pt, uint64(e.deadline))
	pt = binary.BigEndian.AppendUint64(pt, uint64(e.mark))
	pt = binary.AppendUvarint(pt, uint64(len(e.token)))
	pt = append(pt, e.token...)
	pt = binary.AppendUvarint(pt, uint64(len(e.act)))
	pt = append(pt, e.act...)
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	rand.Read(out)
	return s.aead.Seal(out, out, pt, []byte(rk))
}

var errBadValue = errors.New("malformed value")

func (s *Store) open(rk string, v []byte) (entry, error) {
	ns := s.aead.NonceSize()
	if len(v) < ns+s.aead.Overhead() {
		return entry{}, errBadValue
	}
	pt, err := s.aead.Open(nil, v[:ns], v[ns:], []byte(rk))
	if err != nil {
		return entry{}, errors.New("value does not open under the cache secret for this key")
	}
	if len(pt) < 17 || pt[0] != valueVersion {
		return entry{}, errBadValue
	}
	e := entry{deadline: int64(binary.BigEndian.Uint64(pt[1:])), mark: int64(binary.BigEndian.Uint64(pt[9:]))}
	rest := pt[17:]
	str := func() (string, bool) {
		n, m := binary.Uvarint(rest)
		if m <= 0 || n > uint64(len(rest)-m) {
			return "", false
		}
		v := string(rest[m : m+int(n)])
		rest = rest[m+int(n):]
		return v, true
	}
	var ok1, ok2 bool
	e.token, ok1 = str()
	e.act, ok2 = str()
	if !ok1 || !ok2 || len(rest) != 0 || e.token == "" {
		return entry{}, errBadValue
	}
	return e, nil
}

// Claims coordinate replicas as the verified-token cache's do (cache/claim.go): the first to
// miss sets a claim key with NX and an expiry, exchanges and stores; the others poll for the
// value. Redis down or slow means no coordination, never a wait.
const claimPoll = 2 * time.Millisecond

func (s *Store) claimKey(k [32]byte) string { return s.prefix + "claim:" + string(k[:16]) }

// claimOrAwait is true when this replica should exchange (it holds the claim, or nobody can
// coordinate); false with an entry when another replica's exchange answered.
func (s *Store) claimOrAwait(ctx context.Context, k, callerKey [32]byte) (mine bool, e entry, ok bool) {
	if s.rdb == nil || s.claim <= 0 {
		return true, entry{}, false
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	err := s.rdb.SetArgs(cctx, s.claimKey(k), "1", redis.SetArgs{Mode: "NX", TTL: s.claim}).Err()
	cancel()
	if err == nil {
		// Another replica may have stored the value and released its claim between this
		// replica's miss and its claim: look once more before asking the AS.
		if e, ok := s.fromRedis(ctx, k, callerKey, s.now().UnixNano()); ok {
			s.unclaim(ctx, k)
			return false, e, true
		}
		return true, entry{}, false
	}
	if !errors.Is(err, redis.Nil) {
		return true, entry{}, false
	}
	s.st.claimsWaited.Add(1)
	deadline := time.Now().Add(s.claim)
	tick := time.NewTicker(claimPoll)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return true, entry{}, false
		case <-tick.C:
		}
		if e, ok := s.fromRedis(ctx, k, callerKey, s.now().UnixNano()); ok {
			return false, e, true
		}
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		n, err := s.rdb.Exists(cctx, s.claimKey(k)).Result()
		cancel()
		if err != nil || n == 0 {
			if e, ok := s.fromRedis(ctx, k, callerKey, s.now().UnixNano()); ok {
				return false, e, true
			}
			return true, entry{}, false
		}
	}
	return true, entry{}, false
}

func (s *Store) unclaim(ctx context.Context, k [32]byte) {
	if s.rdb == nil || s.claim <= 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_ = s.rdb.Del(cctx, s.claimKey(k)).Err()
}
