package cache

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Value format, version 3 (all integers are Go varints, strings length-prefixed):
//
//	version  byte = 3
//	flags    byte: bit0 negative, bit1 expiry, bit2 not-before, bit3 claims,
//	               bits 4-5 identity.Source, bit 6 confirmation, bit 7 zero
//	expiry      varint unix seconds, rounded down   (if bit1)
//	not-before  varint unix seconds, rounded up     (if bit2)
//	deadline    uvarint: with an expiry, expiry − deadline in seconds; without, the deadline
//	            in unix seconds; rounded so that the entry ends no later than it was stored for
//	then, for a positive entry only:
//	  issuer, subject, client_id           str
//	  audience, scopes                     uvarint count, count × str
//	  claims                               uvarint count ≥ 1, count × (str key, str value),
//	                                       keys strictly ascending (if bit3)
//	  cnf jkt, cnf x5t#S256                str, str, not both empty (if bit6)
//	mac      16 bytes
//
//	str: uvarint h, by h&3:
//	     0  h>>2 bytes follow inline;
//	     1  h>>2 is the 16-bit reference of an interned string (see Config.Intern);
//	     2  (h == 2) 16 bytes follow: a UUID in its canonical lower-case text form, which many
//	        IdPs use for subjects and client ids, at 16 bytes instead of 36;
//	     3  invalid.
//
// The MAC is HMAC-SHA256(mac key, uvarint(len(redis key)) ‖ redis key ‖ canonical)[:16], where
// canonical is the value above with every string inline. Binding the Redis key stops a writer
// from moving an entry to another token; MACing the canonical form rather than the stored bytes
// means an interned reference that one replica resolves differently from another (different
// intern lists, or a 16-bit collision) fails the MAC instead of decoding to another string.
//
// The deadline is the entry's own end, which a reader enforces whatever lifetime Redis gives
// the key: whoever can write to Redis can put back a value saved earlier, and without a
// deadline under the MAC that value would live as long as they liked. Relative to the expiry
// it costs two bytes instead of five, and cannot say the entry outlives its token.
//
// Version 3 stored claims stringified for headers, version 4 as their JSON text (policy rules
// read their structure), version 5 adds the token's confirmation (cnf): a version-4 reader
// would take a bound token for a bearer token, so the two never share a key prefix. Version 2 had no deadline and trusted Redis's TTL; version 1 wrote strings as h even inline
// / h odd interned. Both sit under other key prefixes, which this version never reads.
const (
	codecVersion = 5
	macLen       = 16

	flagNegative  = 1 << 0
	flagExpiry    = 1 << 1
	flagNotBefore = 1 << 2
	flagClaims    = 1 << 3
	flagSourceSh  = 4
	flagCnf       = 1 << 6
	flagReserved  = 0b1000_0000

	// maxValue bounds what Set writes to Redis: an identity this large (thousands of scopes or
	// claims) is kept in L1 only.
	maxValue = 64 << 10
	// minIntern: a reference costs 3 bytes, so shorter strings stay inline.
	minIntern = 4

	strInline = 0
	strRef    = 1
	strUUID   = 2
)

var (
	errBadMAC      = errors.New("mac mismatch")
	errUndecodable = errors.New("undecodable value")
)

// macer is a pooled keyed HMAC; Reset restores its keyed state cheaply (crypto/hmac keeps the
// padded-key state marshaled), so a pooled one costs no allocation per use.
type macer struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

type hmacPool struct{ p sync.Pool }

func newHMACPool(key []byte) *hmacPool {
	k := slices.Clone(key)
	return &hmacPool{p: sync.Pool{New: func() any { return &macer{h: hmac.New(sha256.New, k)} }}}
}

func (p *hmacPool) get() *macer  { return p.p.Get().(*macer) }
func (p *hmacPool) put(m *macer) { m.h.Reset(); p.p.Put(m) }

// stringBytes views s as bytes without copying; only for writing into a hash, which neither
// keeps nor modifies its input.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// codec encodes entries for Redis and authenticates them.
type codec struct {
	mac  *hmacPool
	refs map[string]uint16 // interned string → reference
	strs map[uint16]string // reference → interned string
}

func newCodec(macKey []byte, intern []string) *codec {
	c := &codec{mac: newHMACPool(macKey), refs: map[string]uint16{}, strs: map[uint16]string{}}
	// A reference is a hash of the string, not a position in the list, so replicas whose
	// lists differ only in order or in other strings still agree on it. Colliding strings are
	// both left inline, which is also independent of order.
	clash := map[uint16]bool{}
	for _, s := range intern {
		if len(s) < minIntern {
			continue
		}
		sum := sha256.Sum256([]byte(s))
		r := binary.BigEndian.Uint16(sum[:])
		if old, ok := c.strs[r]; ok && old != s {
			clash[r] = true
		}
		c.strs[r] = s
	}
	for r, s := range c.strs {
		if clash[r] {
			delete(c.strs, r)
			continue
		}
		c.refs[s] = r
	}
	return c
}

// entry is what both tiers hold.
type entry struct {
	id  identity.Identity
	neg bool
}

// appendBody appends the value without its MAC; compact=false gives the canonical form.
// deadline is in unix nanoseconds.
func (c *codec) appendBody(b []byte, e *entry, deadline int64, compact bool) []byte {
	id := &e.id
	var flags byte
	if e.neg {
		flags |= flagNegative
	}
	if !id.Expiry.IsZero() {
		flags |= flagExpiry
	}
	if !id.NotBefore.IsZero() {
		flags |= flagNotBefore
	}
	if !e.neg && len(id.Claims) > 0 {
		flags |= flagClaims
	}
	if !e.neg && id.Confirmation.Bound() {
		flags |= flagCnf
	}
	flags |= byte(id.Source&3) << flagSourceSh
	b = append(b, codecVersion, flags)
	if flags&flagExpiry != 0 {
		// Rounded down: the entry may only end earlier than the token, never later.
		b = binary.AppendVarint(b, id.Expiry.Unix())
	}
	if flags&flagNotBefore != 0 {
		nbf := id.NotBefore.Unix()
		if id.NotBefore.Nanosecond() != 0 {
			nbf++ // rounded up, for the same reason
		}
		b = binary.AppendVarint(b, nbf)
	}
	// Rounded down, like the expiry, so that the entry ends no later than it was stored for.
	dl := time.Unix(0, deadline).Unix()
	if flags&flagExpiry != 0 {
		b = binary.AppendUvarint(b, uint64(max(id.Expiry.Unix()-dl, 0)))
	} else {
		b = binary.AppendUvarint(b, uint64(max(dl, 0)))
	}
	if e.neg {
		return b
	}
	b = c.appendStr(b, id.Issuer, compact)
	b = c.appendStr(b, id.Subject, compact)
	b = c.appendStr(b, id.ClientID, compact)
	b = c.appendList(b, id.Audience, compact)
	b = c.appendList(b, id.Scopes, compact)
	if flags&flagClaims != 0 {
		keys := make([]string, 0, len(id.Claims))
		for k := range id.Claims {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = c.appendStr(b, k, compact)
			b = c.appendStr(b, id.Claims[k], compact)
		}
	}
	if flags&flagCnf != 0 {
		b = c.appendStr(b, id.Confirmation.JKT, false)
		b = c.appendStr(b, id.Confirmation.X5TS256, false)
	}
	return b
}

func (c *codec) appendList(b []byte, l []string, compact bool) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = c.appendStr(b, s, compact)
	}
	return b
}

func (c *codec) appendStr(b []byte, s string, compact bool) []byte {
	if compact {
		if r, ok := c.refs[s]; ok {
			return binary.AppendUvarint(b, uint64(r)<<2|strRef)
		}
		if u, ok := parseUUID(s); ok {
			return append(append(b, strUUID), u[:]...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<2|strInline)
	return append(b, s...)
}

// parseUUID accepts only the canonical lower-case form, the one formatUUID gives back, so
// that every other string keeps its exact bytes.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	var h [32]byte
	n := copy(h[:], s[:8])
	n += copy(h[n:], s[9:13])
	n += copy(h[n:], s[14:18])
	n += copy(h[n:], s[19:23])
	copy(h[n:], s[24:])
	for _, c := range h {
		if 'A' <= c && c <= 'F' { // hex.Decode takes upper case too
			return u, false
		}
	}
	_, err := hex.Decode(u[:], h[:])
	return u, err == nil
}

func formatUUID(u []byte) string {
	const digits = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[x>>4], digits[x&15]
		j += 2
	}
	return string(out[:])
}

// encode returns the stored value for e under Redis key rkey, to be refused from deadline (unix
// nanoseconds) on.
func (c *codec) encode(rkey string, e *entry, deadline int64) []byte {
	b := c.appendBody(make([]byte, 0, 256), e, deadline, true)
	// Written once per token and TTL, so building the canonical form every time is cheaper
	// than tracking whether any string was stored other than inline.
	canonical := c.appendBody(make([]byte, 0, 2*len(b)), e, deadline, false)
	mac := c.sum(rkey, canonical)
	return append(b, mac[:]...)
}

func (c *codec) sum(rkey string, canonical []byte) [macLen]byte {
	m := c.mac.get()
	var n [binary.MaxVarintLen64]byte
	m.h.Write(n[:binary.PutUvarint(n[:], uint64(len(rkey)))])
	m.h.Write(stringBytes(rkey))
	m.h.Write(canonical)
	out := [macLen]byte(m.h.Sum(m.sum[:0]))
	c.mac.put(m)
	return out
}

// decode parses and authenticates a stored value, and returns it with its deadline (unix
// nanoseconds, a whole second). Its strings share v's memory.
func (c *codec) decode(rkey, v string) (entry, int64, error) {
	if len(v) < 3+macLen {
		return entry{}, 0, errUndecodable
	}
	body, tag := v[:len(v)-macLen], v[len(v)-macLen:]
	d := decoder{s: body, c: c}
	e, deadline := d.entry()
	if d.bad || len(d.s) != 0 {
		return entry{}, 0, errUndecodable
	}
	var canonical []byte
	if d.compact {
		canonical = c.appendBody(make([]byte, 0, 2*len(body)), &e, deadline, false)
	} else {
		canonical = stringBytes(body)
	}
	if mac := c.sum(rkey, canonical); !hmac.Equal(mac[:], stringBytes(tag)) {
		return entry{}, 0, errBadMAC
	}
	return e, deadline, nil
}

// decoder reads untrusted bytes: every read is bounds-checked and a failure only sets bad.
type decoder struct {
	s       string
	c       *codec
	bad     bool
	compact bool // a string was stored other than inline: the canonical form must be rebuilt
}

func (d *decoder) byte() byte {
	if len(d.s) == 0 {
		d.bad = true
		return 0
	}
	b := d.s[0]
	d.s = d.s[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i >= len(d.s) {
			break
		}
		b := d.s[i]
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			d.s = d.s[i+1:]
			return x
		}
		shift += 7
	}
	d.bad = true
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str() string {
	h := d.uvarint()
	if d.bad {
		return ""
	}
	switch h & 3 {
	case strInline:
		n := h >> 2
		if n > uint64(len(d.s)) {
			d.bad = true
			return ""
		}
		s := d.s[:n]
		d.s = d.s[n:]
		return s
	case strRef:
		if h>>2 > 0xffff {
			d.bad = true
			return ""
		}
		s, ok := d.c.strs[uint16(h>>2)]
		if !ok {
			d.bad = true
			return ""
		}
		d.compact = true
		return s
	case strUUID:
		if h != strUUID || len(d.s) < 16 {
			d.bad = true
			return ""
		}
		s := formatUUID(stringBytes(d.s[:16]))
		d.s = d.s[16:]
		d.compact = true
		return s
	}
	d.bad = true
	return ""
}

// count reads a list length; every element takes at least one byte, which bounds allocations
// by the value's size whatever the count says.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.bad = true
		return 0
	}
	return int(n)
}

func (d *decoder) list() []string {
	n := d.count()
	if d.bad || n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

// entry reads a value's body: the entry and its deadline in unix nanoseconds.
func (d *decoder) entry() (entry, int64) {
	var e entry
	if d.byte() != codecVersion {
		d.bad = true
		return e, 0
	}
	flags := d.byte()
	if d.bad || flags&flagReserved != 0 {
		d.bad = true
		return e, 0
	}
	e.neg = flags&flagNegative != 0
	e.id.Source = identity.Source(flags >> flagSourceSh & 3)
	var exp int64
	if flags&flagExpiry != 0 {
		exp = d.varint()
		e.id.Expiry = time.Unix(exp, 0)
	}
	if flags&flagNotBefore != 0 {
		e.id.NotBefore = time.Unix(d.varint(), 0)
	}
	dl := d.uvarint()
	// Bounds that keep the arithmetic below from overflowing on bytes the encoder never
	// writes; a far-future exp with its large offset still decodes.
	if dl > math.MaxInt64/2 || exp < math.MinInt64/2 {
		d.bad = true
		return e, 0
	}
	sec := int64(dl)
	if flags&flagExpiry != 0 {
		sec = exp - sec
	}
	var deadline int64
	switch {
	case sec > math.MaxInt64/int64(time.Second):
		deadline = math.MaxInt64
	case sec < math.MinInt64/int64(time.Second):
		deadline = math.MinInt64
	default:
		deadline = sec * int64(time.Second)
	}
	if e.neg {
		if flags&(flagClaims|flagCnf) != 0 {
			d.bad = true
		}
		return e, deadline
	}
	e.id.Issuer = d.str()
	e.id.Subject = d.str()
	e.id.ClientID = d.str()
	e.id.Audience = d.list()
	e.id.Scopes = d.list()
	if flags&flagClaims != 0 {
		n := d.count()
		if n == 0 {
			d.bad = true
			return e, 0
		}
		e.id.Claims = make(map[string]string, n)
		prev := ""
		for i := 0; i < n && !d.bad; i++ {
			k, v := d.str(), d.str()
			// Strictly ascending keys keep one canonical form per identity.
			if i > 0 && k <= prev {
				d.bad = true
			}
			e.id.Claims[k], prev = v, k
		}
	}
	if flags&flagCnf != 0 {
		e.id.Confirmation.JKT = d.str()
		e.id.Confirmation.X5TS256 = d.str()
		if !e.id.Confirmation.Bound() {
			d.bad = true
		}
	}
	return e, deadline
}
