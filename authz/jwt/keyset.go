package jwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/authz/asmeta"
	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
)

const (
	// maxJWKS caps a JWKS document; real ones are a few KiB.
	maxJWKS = 1 << 20
	// fetchTimeout bounds one discovery + JWKS load, which runs detached from the request
	// that started it so that one impatient caller cannot fail it for the others waiting.
	fetchTimeout = 10 * time.Second
	// defaultTTL is how long a JWKS is fresh when its response carries no usable
	// Cache-Control max-age; minTTL and maxTTL clamp a served max-age, so that "no-cache" does
	// not turn into a fetch per request and a year-long max-age does not pin withdrawn keys.
	defaultTTL = 15 * time.Minute
	minTTL     = time.Minute
	maxTTL     = 24 * time.Hour
	// Keys are refreshed in the background once they have used refreshAt of their TTL, so a
	// healthy issuer's keys never expire in use and a withdrawn key stops verifying within
	// about a TTL.
	refreshAt = 0.75
	// Backoff between failed loads while no keys were ever loaded: 1 s doubling to 30 s.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// minRSABits: shorter RSA keys are refused when loaded (RFC 7518 §3.3 asks for 2048).
	minRSABits = 2048
)

// tokenKeys is the oidc.KeySet go-oidc verifies one token with: the keys Verify resolved for
// it, and the token as Verify already parsed it (go-oidc keeps its own parse to itself). It
// keeps the payload once the signature verified, because go-oidc reports key-set errors only
// as text. One per Verify, so nothing travels in the context.
type tokenKeys struct {
	token   string
	jws     *jose.JSONWebSignature
	keys    []key
	payload []byte
}

// VerifySignature implements oidc.KeySet.
func (t *tokenKeys) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	if jwt != t.token {
		return nil, errors.New("jwt: key set used for another token") // cannot happen: one per Verify
	}
	for _, k := range t.keys {
		if payload, err := t.jws.Verify(k.pub); err == nil {
			t.payload = payload
			return payload, nil
		}
	}
	return nil, errSignature
}

// keySet is one issuer's keys: a JWKS loaded lazily (after discovery when no URL
// is configured), refreshed on an unknown kid at most once per interval, kept when a refresh
// fails.
type keySet struct {
	issuer   string
	jwksURL  string // configured; empty means discover
	client   *http.Client
	interval time.Duration
	maxStale time.Duration // how long expired keys serve while refreshes fail
	now      func() time.Time
	log      *slog.Logger
	observe  Observer

	keys atomic.Pointer[keySnapshot] // nil until the first successful load
	sf   singleflight.Group

	mu          sync.Mutex
	fetching    bool      // a fetch is in flight; new callers join it
	lastAttempt time.Time // start of the last fetch, successful or not
	retryAt     time.Time // while no keys: no new attempt before this
	backoff     time.Duration
	lastErr     error  // last failed load, for Ready and for callers during backoff
	discovered  string // jwks_uri found by discovery
	trailing    bool   // a trailing refresh is scheduled
}

// trail schedules one refresh for when the rate limit next allows it.
func (ks *keySet) trail() {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.trailing {
		return
	}
	ks.trailing = true
	wait := ks.interval - ks.now().Sub(ks.lastAttempt)
	time.AfterFunc(max(wait, 0)+10*time.Millisecond, func() {
		ks.mu.Lock()
		ks.trailing = false
		ks.mu.Unlock()
		ks.fetch(context.Background(), false)
	})
}

// keySnapshot is an immutable set of usable keys; a refresh replaces it whole.
type keySnapshot struct {
	keys    []key
	fetched time.Time
	ttl     time.Duration // from Cache-Control max-age, clamped; defaultTTL without one
}

// refreshDue says whether a background refresh should start: the keys have used most of
// their TTL.
func (s *keySnapshot) refreshDue(now time.Time) bool {
	return now.Sub(s.fetched) > time.Duration(float64(s.ttl)*refreshAt)
}

// stale says whether the keys are past their TTL, and expired whether they are past it by
// more than maxStale too: then they are no longer trusted at all.
func (s *keySnapshot) stale(now time.Time) bool { return now.Sub(s.fetched) > s.ttl }
func (s *keySnapshot) expired(now time.Time, maxStale time.Duration) bool {
	return now.Sub(s.fetched) > s.ttl+maxStale
}

type key struct {
	kid string
	alg string // from the JWK; when set, the only alg this key verifies (RFC 8725 §3.1)
	pub crypto.PublicKey
}

// resolve returns the keys that may verify a token with this kid and alg, loading or
// refreshing the JWKS when needed and allowed. It runs before go-oidc so that tokens no key
// can verify are refused without a second parse, and so that "unavailable" needs no
// smuggling through go-oidc's error text.
func (ks *keySet) resolve(ctx context.Context, kid, alg string) ([]key, error) {
	snap := ks.keys.Load()
	now := ks.now()
	fresh := false // the keys were fetched for this very call
	switch {
	case snap == nil:
		if err := ks.fetch(ctx, true); err != nil {
			return nil, unavailable("jwt: keys unavailable", err)
		}
		snap, fresh = ks.keys.Load(), true
	case snap.expired(now, ks.maxStale):
		// Past the bounded staleness: these keys no longer verify anything. One caller per
		// interval may try a fresh load; everyone else is told the keys are unavailable.
		if err := ks.fetch(ctx, true); err != nil {
			return nil, unavailable("jwt: keys expired and unavailable", err)
		}
		if snap = ks.keys.Load(); snap.expired(ks.now(), ks.maxStale) {
			return nil, unavailable("jwt: keys expired and unavailable", ks.lastError())
		}
		fresh = true
	case snap.refreshDue(now):
		ks.fetch(ctx, false) // refresh in the background; these keys serve meanwhile
		if snap.stale(now) && ks.observe != nil {
			ks.observe.StaleKeys(ks.issuer)
		}
	}
	cands, err := snap.match(kid, alg)
	if (err == errUnknownKid || err == errNoKey) && !fresh {
		// Maybe the issuer rotated its keys. Ask again, unless we asked recently: a flood of
		// made-up kids must not become a flood of JWKS requests.
		switch ferr := ks.fetch(ctx, true); {
		case ferr == errRateLimited:
			// Keys were fetched less than an interval ago. The kid may be a key rotated in
			// since: we cannot tell, so the token is not called invalid (which would be
			// cached) but unavailable, and asked about again. It must not wait for the next
			// unknown kid after the interval either: one trailing refresh is scheduled for
			// the moment the interval allows it.
			ks.trail()
			return nil, errKidNotYet
		case ferr != nil:
			// The kid may be a real new key we could not fetch: not the token's fault.
			return nil, unavailable("jwt: unknown kid and keys unavailable", ferr)
		}
		cands, err = ks.keys.Load().match(kid, alg)
	}
	return cands, err
}

// match returns the keys that may verify a token with this kid and alg. Without a kid, every
// key fit for alg is a candidate. A key whose kid matches but whose type or declared alg does
// not is never tried: that is the key-confusion case, not an unknown key.
func (s *keySnapshot) match(kid, alg string) ([]key, error) {
	var out []key
	found := false
	for _, k := range s.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		found = true
		if (k.alg == "" || k.alg == alg) && fits(k.pub, alg) {
			out = append(out, k)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case kid == "":
		return nil, errNoKey
	case found:
		return nil, errKeyAlg
	}
	return nil, errUnknownKid
}

// fits reports whether pub is the kind of key alg is defined for (RFC 7518 §3.1, RFC 8037).
func fits(pub crypto.PublicKey, alg string) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return p.Curve == elliptic.P256()
		case "ES384":
			return p.Curve == elliptic.P384()
		case "ES512":
			return p.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

var errRateLimited = errors.New("jwt: jwks refresh rate-limited")

// fetch starts a load of the keys, or joins the one in flight, and waits for it when wait is
// set. With no keys yet, failed loads back off from 1 s to 30 s; with keys, a new load starts
// at most once per interval.
func (ks *keySet) fetch(ctx context.Context, wait bool) error {
	ks.mu.Lock()
	if !ks.fetching {
		now := ks.now()
		if ks.keys.Load() == nil {
			if now.Before(ks.retryAt) {
				err := ks.lastErr
				ks.mu.Unlock()
				return fmt.Errorf("backing off after: %w", err)
			}
		} else if now.Sub(ks.lastAttempt) < ks.interval {
			ks.mu.Unlock()
			return errRateLimited
		}
		ks.fetching = true
		ks.lastAttempt = now
	} else if !wait {
		ks.mu.Unlock()
		return nil
	}
	// Joining happens under mu, and load clears fetching under mu before it returns, so a
	// caller that saw fetching set always joins that load rather than starting another.
	ch := ks.sf.DoChan("", func() (any, error) { return nil, ks.load(context.WithoutCancel(ctx)) })
	ks.mu.Unlock()
	if !wait {
		return nil
	}
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("waiting for keys: %w", ctx.Err())
	}
}

// load fetches (after discovery if needed) and installs the JWKS, recording the outcome.
func (ks *keySet) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	start := time.Now()
	snap, err := ks.download(ctx)
	if ks.observe != nil {
		ks.observe.KeysFetched(ks.issuer, err, time.Since(start))
	}
	now := ks.now()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.fetching = false
	if err != nil {
		ks.lastErr = err
		if ks.keys.Load() == nil {
			ks.backoff = min(max(2*ks.backoff, minBackoff), maxBackoff)
			ks.retryAt = now.Add(ks.backoff)
			ks.log.Warn("jwt: loading keys failed", "error", err, "retry_in", ks.backoff)
		} else {
			ks.log.Warn("jwt: refreshing keys failed; keeping the last good keys", "error", err)
		}
		return err
	}
	snap.fetched = now
	ks.keys.Store(snap)
	ks.lastErr, ks.backoff, ks.retryAt = nil, 0, time.Time{}
	ks.log.Info("jwt: keys loaded", "keys", len(snap.keys), "ttl", snap.ttl)
	return nil
}

func (ks *keySet) download(ctx context.Context) (*keySnapshot, error) {
	u := ks.jwksURL
	if u == "" {
		ks.mu.Lock()
		u = ks.discovered
		ks.mu.Unlock()
	}
	if u == "" {
		md, err := asmeta.Discover(ctx, ks.client, ks.issuer)
		if err != nil {
			return nil, err
		}
		if checkURL(md.JWKSURI) != nil {
			return nil, fmt.Errorf("metadata for %s has no usable jwks_uri (%q)", ks.issuer, clip(md.JWKSURI))
		}
		// Keys fetched in clear could be anyone's: the metadata of an https issuer must not
		// downgrade us (as for introspection_endpoint, in package introspect).
		if strings.HasPrefix(ks.issuer, "https:") && !strings.HasPrefix(md.JWKSURI, "https:") {
			return nil, fmt.Errorf("metadata for %s names a jwks_uri that is not https (%q)", ks.issuer, clip(md.JWKSURI))
		}
		u = md.JWKSURI
		ks.mu.Lock()
		ks.discovered = u
		ks.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: bad request", u)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err // a *url.Error: method, URL and cause
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %v", u, err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("GET %s: JWKS larger than %d bytes", u, maxJWKS)
	}
	snap, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	snap.ttl = cacheTTL(resp.Header)
	if skipped > 0 {
		ks.log.Debug("jwt: ignored unusable JWKS members", "skipped", skipped)
	}
	return snap, nil
}

// cacheTTL is how long a JWKS response may be used: its Cache-Control max-age (RFC 9111
// §5.2.2.1), clamped to [minTTL, maxTTL]. no-store and no-cache ask for revalidation before
// every use, which for keys would be a fetch per token: they get minTTL. Expires is not
// consulted; identity providers that set it also set max-age.
func cacheTTL(h http.Header) time.Duration {
	ttl := defaultTTL
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return minTTL
			case "max-age", "s-maxage":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					continue // an invalid max-age is ignored (RFC 9111 §4.2.1 says stale; we keep the default)
				}
				ttl = time.Duration(min(n, int64(maxTTL/time.Second))) * time.Second
			}
		}
	}
	return min(max(ttl, minTTL), maxTTL)
}

// parseJWKS keeps the members we can verify with. Each is decoded on its own with go-jose,
// rather than as a jose.JSONWebKeySet, because go-jose fails a whole set on one member it
// does not understand, and RFC 7517 §5 says to ignore such members.
func parseJWKS(body []byte) (*keySnapshot, int, error) {
	var set struct {
		Keys []jsontext.Value `json:"keys"`
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, 0, errors.New("not a JWKS")
	}
	// A key whose kid or n reads one way here and another way elsewhere is not a key to
	// trust: an ambiguous document is refused whole, and the last good keys stay.
	if err := strictjson.Unmarshal(body, &set); err != nil {
		if errors.Is(err, strictjson.ErrAmbiguous) {
			return nil, 0, fmt.Errorf("not a JWKS: %v", err)
		}
		return nil, 0, errors.New("not a JWKS")
	}
	snap := &keySnapshot{}
	skipped := 0
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if jwk.UnmarshalJSON(raw) != nil || (jwk.Use != "" && jwk.Use != "sig") {
			skipped++
			continue
		}
		var pub crypto.PublicKey
		switch k := jwk.Key.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < minRSABits {
				skipped++
				continue
			}
			pub = k
		case *ecdsa.PublicKey, ed25519.PublicKey:
			pub = k
		default:
			// Symmetric ("oct") keys would allow HMAC forgery by anyone holding the JWKS;
			// private keys mean a misconfigured issuer; neither is trusted.
			skipped++
			continue
		}
		if jwk.Algorithm != "" && !fits(pub, jwk.Algorithm) {
			skipped++
			continue
		}
		snap.keys = append(snap.keys, key{kid: jwk.KeyID, alg: jwk.Algorithm, pub: pub})
	}
	if len(snap.keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable signing keys in JWKS (%d ignored)", skipped)
	}
	return snap, skipped, nil
}

func (ks *keySet) loaded() bool { return ks.keys.Load() != nil }

func (ks *keySet) lastError() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.lastErr == nil {
		return errors.New("no refresh allowed yet")
	}
	return ks.lastErr
}

func (ks *keySet) ready() error {
	if snap := ks.keys.Load(); snap != nil {
		if snap.expired(ks.now(), ks.maxStale) {
			return fmt.Errorf("jwt: keys expired %s ago and every refresh failed: %w",
				ks.now().Sub(snap.fetched.Add(snap.ttl)).Round(time.Second), ks.lastError())
		}
		return nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.lastErr != nil {
		return fmt.Errorf("jwt: keys not loaded: %w", ks.lastErr)
	}
	return errors.New("jwt: keys not loaded yet (they load on the first token)")
}

// clip bounds a served string before it reaches an error message and the logs.
func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}
