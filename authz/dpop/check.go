package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUseNonce: the proof lacks a valid, current server nonce; the answer is 401
// use_dpop_nonce with a fresh DPoP-Nonce (RFC 9449 §9). Not an invalid proof: the client
// retries with the nonce.
var ErrUseNonce = errors.New("DPoP proof without a current nonce")

// ErrReplayUnavailable: the shared replay store could not be asked and the configuration
// says to refuse rather than rely on the iat window alone.
var ErrReplayUnavailable = errors.New("DPoP replay store unavailable")

// Config configures a Checker.
type Config struct {
	Algs   []string      // accepted proof algorithms; default DefaultAlgs
	Window time.Duration // iat may be this far from now (before or after); default 5m
	Skew   time.Duration // added to Window
	// ReplayKey keys the replay store's entries (HMAC), so the store never sees a jti or a key
	// thumbprint and cannot be fed colliding entries. Required.
	ReplayKey []byte
	Replay    *Replay
	// DenyWhenReplayDown: a failing shared replay store refuses proofs, rather than leaving
	// only the iat window and this replica's memory against replays.
	DenyWhenReplayDown bool
	// Nonces, when set, makes every proof carry a nonce it issued (RFC 9449 §9).
	Nonces *Nonces
	Now    func() time.Time
}

// Checker checks proofs against requests. Safe for concurrent use.
type Checker struct {
	algs      map[string]bool
	algList   string
	window    time.Duration
	replayKey []byte
	replay    *Replay
	deny      bool
	nonces    *Nonces
	now       func() time.Time
}

// NewChecker validates c.
func NewChecker(c Config) (*Checker, error) {
	k := &Checker{algs: map[string]bool{}, window: c.Window + c.Skew, replayKey: c.ReplayKey,
		replay: c.Replay, deny: c.DenyWhenReplayDown, nonces: c.Nonces, now: c.Now}
	algs := c.Algs
	if len(algs) == 0 {
		algs = DefaultAlgs
	}
	for _, a := range algs {
		if !Supported[a] {
			return nil, fmt.Errorf("alg %q: not an asymmetric JWS algorithm this service verifies", a)
		}
		k.algs[a] = true
	}
	k.algList = strings.Join(algs, " ")
	if c.Window <= 0 {
		k.window = 5*time.Minute + c.Skew
	}
	if len(k.replayKey) < 16 {
		return nil, errors.New("replay key shorter than 16 bytes")
	}
	if k.replay == nil {
		return nil, errors.New("no replay store")
	}
	if k.now == nil {
		k.now = time.Now
	}
	return k, nil
}

// Algs is the algs= value of challenges and the PRM's dpop_signing_alg_values_supported.
func (k *Checker) Algs() string { return k.algList }

// AlgList is Algs as a list.
func (k *Checker) AlgList() []string { return strings.Fields(k.algList) }

// Nonces is the nonce source, nil when nonces are not required.
func (k *Checker) Nonces() *Nonces { return k.nonces }

// Input is one request as the proof must describe it.
type Input struct {
	Proof  string
	Method string
	// Origin is scheme://host[:port] of the resource as configured, never from the request's
	// Host: a proof's htu must name the resource the client meant to call.
	Origin string
	Path   string // the request's path as received, query removed
	Token  string // the access token the proof comes with
}

// Check runs every step of RFC 9449 §4.3 ¶2 on one proof and returns it. The jti is recorded
// last, so that a proof refused for another reason does not use up its jti.
func (k *Checker) Check(ctx context.Context, in Input) (Proof, error) {
	p, err := Parse(in.Proof, k.algs)
	if err != nil {
		return Proof{}, err
	}
	if p.HTM != in.Method {
		return Proof{}, invalid("htm does not match the request method")
	}
	if !SameURI(p.HTU, in.Origin, in.Path) {
		return Proof{}, invalid("htu does not match the request URI")
	}
	now := k.now()
	if d := now.Sub(p.IAT); d > k.window || d < -k.window {
		return Proof{}, invalid("iat is %s from now, outside ±%s", d.Round(time.Second), k.window)
	}
	if p.ATH == "" {
		return Proof{}, invalid("no ath: the proof is not tied to an access token")
	}
	if subtle.ConstantTimeCompare([]byte(p.ATH), []byte(TokenHash(in.Token))) != 1 {
		return Proof{}, invalid("ath is not the hash of this access token")
	}
	if k.nonces != nil && !k.nonces.Valid(p.Nonce, now) {
		return Proof{}, ErrUseNonce
	}
	// Remembered until no iat window could accept the proof again.
	ttl := p.IAT.Add(k.window).Sub(now) + time.Second
	first, err := k.replay.FirstUse(ctx, k.replayID(p), ttl, k.deny)
	if err != nil {
		return Proof{}, err
	}
	if !first {
		return Proof{}, invalid("jti was used before")
	}
	return p, nil
}

// replayID: one client's jti never collides with another's, and the store learns neither.
func (k *Checker) replayID(p Proof) [32]byte {
	m := hmac.New(sha256.New, k.replayKey)
	m.Write([]byte(p.JKT))
	m.Write([]byte{0})
	m.Write([]byte(p.JTI))
	var id [32]byte
	m.Sum(id[:0])
	return id
}

// SameURI reports whether htu names origin+path, ignoring htu's query and fragment (RFC 9449
// §4.3 ¶2 item 9) after RFC 3986 §6.2.2 and §6.2.3 normalization: scheme and host are
// case-insensitive, a default port is the same as none, an empty path is "/", and
// percent-encodings compare by the octet they encode when it is unreserved, by hex digit case
// otherwise. Anything else (userinfo, a relative reference, control characters) is refused.
func SameURI(htu, origin, path string) bool {
	htu, _, _ = strings.Cut(htu, "#")
	htu, _, _ = strings.Cut(htu, "?")
	ho, hp, ok := splitURI(htu)
	if !ok {
		return false
	}
	oo, _, ok := splitURI(origin)
	if !ok || ho != oo {
		return false
	}
	a, ok1 := normPath(hp)
	b, ok2 := normPath(path)
	return ok1 && ok2 && a == b
}

// splitURI splits an absolute http(s) URI into its normalized origin and its path.
func splitURI(u string) (origin, path string, ok bool) {
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return "", "", false
		}
	}
	scheme, rest, found := strings.Cut(u, "://")
	if !found {
		return "", "", false
	}
	scheme = strings.ToLower(scheme)
	if scheme != "https" && scheme != "http" {
		return "", "", false
	}
	authority, p := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, p = rest[:i], rest[i:]
	}
	if authority == "" || strings.ContainsAny(authority, "@%") {
		return "", "", false
	}
	host, port := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		host, port = authority[:i], authority[i+1:]
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return "", "", false
			}
		}
	}
	if port == "" || scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	origin = scheme + "://" + strings.ToLower(host)
	if port != "" {
		origin += ":" + port
	}
	return origin, p, true
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func normPath(p string) (string, bool) {
	if p == "" {
		return "/", true
	}
	if p[0] != '/' {
		return "", false
	}
	if strings.IndexByte(p, '%') < 0 {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) {
			return "", false
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		if v := hi<<4 | lo; unreserved(v) {
			b.WriteByte(v)
		} else {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[hi])
			b.WriteByte("0123456789ABCDEF"[lo])
		}
		i += 2
	}
	return b.String(), true
}
