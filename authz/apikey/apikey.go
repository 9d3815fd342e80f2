// Package apikey verifies static API keys, a legacy path for clients that cannot do OAuth.
// Keys are configured by their SHA-256 digest only, so the configuration never holds a key,
// and a presented key is compared against every digest in constant time.
package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Key is one configured key.
type Key struct {
	SHA256   string // hex SHA-256 digest of the key
	Subject  string
	ClientID string
	Scopes   []string
}

// Config lists the keys.
type Config struct{ Keys []Key }

// Verifier checks presented keys.
type Verifier struct {
	digests [][sha256.Size]byte
	ids     []identity.Identity
}

// New validates the digests.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{}
	seen := map[[sha256.Size]byte]bool{}
	var errs []error
	for i, k := range cfg.Keys {
		b, err := hex.DecodeString(strings.ToLower(k.SHA256))
		if err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("keys[%d].sha256: want 64 hex digits", i))
			continue
		}
		var d [sha256.Size]byte
		copy(d[:], b)
		if seen[d] {
			errs = append(errs, fmt.Errorf("keys[%d].sha256: listed twice", i))
			continue
		}
		seen[d] = true
		v.digests = append(v.digests, d)
		v.ids = append(v.ids, identity.Identity{Subject: k.Subject, ClientID: k.ClientID, Scopes: k.Scopes, Source: identity.SourceAPIKey})
	}
	return v, errors.Join(errs...)
}

var errUnknown = fmt.Errorf("%w: unknown API key", identity.ErrInvalid)

// Verify hashes the key once and compares the digest with every configured one, without
// stopping at a match, so timing tells nothing about which key matched or how close one was.
func (v *Verifier) Verify(_ context.Context, key string) (identity.Identity, error) {
	d := sha256.Sum256([]byte(key))
	match := -1
	for i := range v.digests {
		if subtle.ConstantTimeCompare(d[:], v.digests[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return identity.Identity{}, errUnknown
	}
	return v.ids[match], nil
}
