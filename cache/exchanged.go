package cache

// RevokedSince says whether the token whose lookup key is key was revoked at or after since
// (unix nanoseconds on the cache's clock), here or on a replica whose announcement arrived, or
// might have been (a revocation forgotten past RevocationLimit). State derived from the token
// elsewhere, such as an exchanged token made for it (package authz/upstream), carries the time
// it was made and is refused when this says so: revoking a caller's token evicts what was
// minted for it.
func (t *Tiered) RevokedSince(key [32]byte, since int64) bool { return t.rev.since(key, since) }
