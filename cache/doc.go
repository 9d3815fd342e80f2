// Package cache remembers verification results (DESIGN.md step 5) so that a token is verified
// once per lifetime of its cache entry, not once per request, by this replica or any other.
//
// Its Verifier (verifier.go) puts it in front of the decision core's verifier chain and
// satisfies the core's TokenVerifier: it owns every caching decision of a Check (which tier
// answers, stale-while-revalidate, revocation marks, cross-replica claims, TTLs), so the core
// sees one interface and no cache. Entries are keyed by
// HMAC-SHA256 of the token (RFC 2104) under a key derived from a server secret (HKDF, RFC 5869),
// never by the token. An entry lives at most the TTL its caller chose and never past the token's
// own expiry: RFC 7662 §4 lets a resource server cache an introspection response, and forbids
// keeping it beyond exp. Invalid tokens are cached briefly (negative entries) so a flood of the
// same garbage does not reach the IdP.
//
// Two tiers:
//
//   - L1, in process: github.com/maypok86/otter/v2, bounded by entries with a per-entry
//     lifetime. Chosen over a map with a mutex because its reads take no lock and its S3-FIFO
//     policy admits one-hit entries to a small probationary queue first, so a flood of distinct
//     garbage tokens (each a negative entry seen once) cannot flush the working set of valid
//     ones, which an LRU would let it do. Its key is the first 128 bits of the lookup key, its
//     value a compact record that refers to shared strings (issuers, audiences, scopes, claim
//     names) in interning tables of fixed size: about 180 bytes per typical token (l1.go).
//   - L2, Redis through a go-redis UniversalClient (single node, Sentinel or Cluster), shared by
//     every replica. Its key is the prefix and the first 128 bits of the lookup key; its
//     value is a compact binary encoding of identity.Identity (configured issuers and
//     audiences as 16-bit references, canonical UUIDs as 16 bytes) followed by a
//     MAC (HMAC-SHA256 truncated to 128 bits, as RFC 4868 does) over the Redis key and the
//     value, under a key derived separately from the lookup key: whoever can write to Redis
//     can delete entries but can neither mint an identity nor move one to another token. A
//     value that fails the MAC or does not decode is a miss. Every value carries its own
//     deadline under the MAC (never after exp, never after store time + MaxTTL) and is
//     refused after it whatever TTL Redis gives the key, so a value saved and written back
//     later dies when it would have anyway.
//
// Redis is never on the critical path of a decision: every call has a tight timeout, and a
// circuit breaker stops calling a Redis that keeps failing, so an outage costs L1 misses and
// IdP calls, never a denial or a blocked request.
//
// Claim, Await and Unclaim let replicas verify a new token once between them (claim.go).
//
// Revoke deletes an entry from Redis and announces its key on a pub/sub channel every replica
// listens to, so each drops it from its L1. Announcements are MAC'd with the cache secret and
// carry their sending time; a forged one, or one replayed after a minute, is ignored. Every
// replica that receives one remembers the revocation for as long as an entry stored before it
// could live (MaxTTL plus slack) and meanwhile takes no positive entry for that token from
// Redis, so a value saved before the revocation and written back is refused; the memory is
// bounded (RevocationLimit) and fails safe past the bound (revoked.go). Messages sent while a
// replica's subscription is down are lost by Redis pub/sub; a replica therefore re-verifies
// its L1 entries whenever it (re)subscribes.
package cache
