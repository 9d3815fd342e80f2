package cache

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// The in-process tier holds up to L1Size entries, so what one costs is what the service costs:
// about 500 bytes each when it held an identity.Identity (a 192-byte struct, its own copies of
// every string and slice) under the token's 32-byte HMAC. It now holds, per token:
//
//   - a 16-byte key, the first half of the token's HMAC, as the Redis key does (rkey): a
//     collision among 2^64 live tokens is unlikely, and a forged one needs the cache secret;
//   - an l1Value: the entry's deadline and a pointer to a record of its own;
//   - the record: a few bytes of flags and times, the token's own strings (subject, client id,
//     cnf thumbprints) inline, and everything many tokens share (issuer, audiences, scopes) as
//     16-bit references into interning tables whose size is fixed by configuration.
//
// A typical identity (an introspection answer: issuer, a UUID subject, a short client id, one
// audience, two scopes, an integral exp) is a 64-byte record beside an 80-byte otter node.
// A hit builds the identity.Identity from the record without allocating: its strings point
// into the record or the tables, its slices and claims map are the tables'. An identity the
// record cannot hold (an issuer, list or claim set the full tables lack, a string over 255
// bytes, a time that time.Unix would not give back) is kept whole (l1Full), with whatever it
// shares interned all the same.

type l1Key [16]byte

func l1KeyOf(k [32]byte) l1Key { return l1Key(k[:16]) }

// l1Value is what otter stores per key. p is a compact record (the first byte of a []byte,
// which nothing writes after it is made) or, with flag l1FullBit in that first byte, an
// *l1Full. Either way the entry is dead from deadline (unix nanos on the Now clock) on.
type l1Value struct {
	p        unsafe.Pointer
	deadline int64
}

// l1Full is an entry the compact record cannot hold. kind (l1FullBit) is its first byte, where
// a compact record keeps its flags.
type l1Full struct {
	kind  byte
	epoch uint32
	id    identity.Identity
}

// Compact record layout (little-endian):
//
//	0      flags: l1FullBit (never set here), neg, source (2 bits), exp mode (2), nbf mode (2)
//	1      flags: cnf, claims
//	2..5   epoch (Tiered.epoch when stored)
//	then, positive entries only:
//	       issuer (string code), audience, scopes (list codes): uint16 each
//	       claims: uint16 code (with the claims flag)
//	       exp, nbf: by mode, nothing, uint32 unix seconds, or int64 unix nanoseconds
//	       lengths: subject, client id, and with cnf jkt and x5t#S256: uint8 each
//	       the bytes of those strings, in that order
const (
	l1FullBit   = 1 << 0
	l1NegBit    = 1 << 1
	l1SrcShift  = 2
	l1ExpShift  = 4
	l1NbfShift  = 6
	l1CnfBit    = 1 << 0 // in byte 1
	l1ClaimsBit = 1 << 1 // in byte 1

	timeNone = 0
	timeSec  = 1 // time.Unix(sec, 0) with 0 ≤ sec < 2^32
	timeNano = 2 // time.Unix(0, nanos)

	l1Head = 6 // flags and epoch
)

// String and list codes. A string code indexes intern.strs (0 is ""). A list code below
// listBase is the one-element list of that string, a slice of intern.strs itself; from
// listBase on, an entry of intern.lists; listNil and listEmpty are nil and []string{}.
const (
	listBase  = 0x8000
	listEmpty = 0xfffe
	listNil   = 0xffff
)

// Bounds of the interning tables. Configured strings (Config.Intern) are all interned, up to
// maxStrs; besides them, at most maxLearned strings seen in verified identities (issuers,
// audiences, scopes, claim names: IdPs add scopes such as openid and profile that no resource
// lists) and at most maxLists lists of interned strings, first come first served. Nothing is
// ever removed, so a flood of distinct values fills them once and then simply goes uninterned:
// memory stays bounded by these constants (a few hundred kilobytes at most), whatever arrives.
const (
	maxStrs     = listBase - 1
	maxLearned  = 1024
	maxLearnLen = 256
	maxLists    = 2048
	maxListLen  = 16
	// Claim sets: whole maps, shared by every token with the same claims (groups, roles,
	// tenant: what identity headers and policy rules read repeats across users).
	maxClaimSets   = 512
	maxClaimSetLen = 512 // bytes of names and values
	maxInline      = 255 // a length byte
)

var emptyList = []string{}

// intern holds the tables. Lookups that add (Set) take mu; reads of an entry's codes on the hit
// path do not: strs and lists have their final length from the start, a slot is written once,
// before any entry that refers to it is stored in otter, and never again.
type intern struct {
	mu      sync.Mutex
	strIdx  map[string]uint16
	strs    []string
	nStrs   int
	learned int
	listIdx map[string]uint16 // key: the list's string codes, two bytes each
	lists   [][]string
	nLists  int
	setIdx  map[string]uint16 // key: canonicalClaims
	sets    []map[string]string
	nSets   int
}

func newIntern(configured []string) *intern {
	in := &intern{strIdx: map[string]uint16{"": 0}, listIdx: map[string]uint16{}}
	n := 1
	for _, s := range configured {
		if _, ok := in.strIdx[s]; !ok && n < maxStrs-maxLearned {
			in.strIdx[s] = uint16(n)
			n++
		}
	}
	in.strs = make([]string, n+maxLearned)
	for s, i := range in.strIdx {
		in.strs[i] = s
	}
	in.nStrs = n
	in.lists = make([][]string, maxLists)
	in.setIdx = map[string]uint16{}
	in.sets = make([]map[string]string, maxClaimSets)
	return in
}

// str returns s's code, learning s if there is room. mu is held.
func (in *intern) str(s string) (uint16, bool) {
	if i, ok := in.strIdx[s]; ok {
		return i, true
	}
	if in.learned >= maxLearned || len(s) > maxLearnLen || in.nStrs >= len(in.strs) {
		return 0, false
	}
	s = strings.Clone(s) // its own copy: s may point into a whole Redis value or JSON body
	i := uint16(in.nStrs)
	in.strs[i] = s
	in.strIdx[s] = i
	in.nStrs++
	in.learned++
	return i, true
}

// list returns l's code. mu is held.
func (in *intern) list(l []string) (uint16, bool) {
	switch {
	case l == nil:
		return listNil, true
	case len(l) == 0:
		return listEmpty, true
	case len(l) == 1:
		return in.str(l[0])
	case len(l) > maxListLen:
		return 0, false
	}
	var kb [2 * maxListLen]byte
	for i, s := range l {
		c, ok := in.str(s)
		if !ok {
			return 0, false
		}
		binary.LittleEndian.PutUint16(kb[2*i:], c)
	}
	key := kb[:2*len(l)]
	if c, ok := in.listIdx[string(key)]; ok {
		return c, true
	}
	if in.nLists >= maxLists {
		return 0, false
	}
	shared := make([]string, len(l))
	for i := range l {
		shared[i] = in.strs[binary.LittleEndian.Uint16(key[2*i:])]
	}
	c := uint16(listBase + in.nLists)
	in.lists[in.nLists] = shared
	in.listIdx[string(key)] = c
	in.nLists++
	return c, true
}

// claims returns the code of a claim set equal to m. mu is held.
func (in *intern) claims(m map[string]string) (uint16, bool) {
	if len(m) > maxListLen {
		return 0, false
	}
	size := 0
	names := make([]string, 0, maxListLen)
	for k, v := range m {
		size += len(k) + len(v) + 2*binary.MaxVarintLen16
		names = append(names, k)
	}
	if size > maxClaimSetLen {
		return 0, false
	}
	var kb [maxClaimSetLen]byte
	key := kb[:0]
	slices.Sort(names)
	for _, k := range names {
		key = binary.AppendUvarint(key, uint64(len(k)))
		key = append(key, k...)
		key = binary.AppendUvarint(key, uint64(len(m[k])))
		key = append(key, m[k]...)
	}
	if c, ok := in.setIdx[string(key)]; ok {
		return c, true
	}
	if in.nSets >= maxClaimSets {
		return 0, false
	}
	shared := make(map[string]string, len(m))
	for k, v := range m {
		if c, ok := in.str(k); ok {
			k = in.getStr(c)
		}
		shared[k] = strings.Clone(v)
	}
	c := uint16(in.nSets)
	in.sets[c] = shared
	in.setIdx[string(key)] = c
	in.nSets++
	return c, true
}

// getStr and getList resolve codes the tables gave out. The slices they return are shared
// (capacity = length, so an append copies), like every Identity that Get returns.
func (in *intern) getStr(c uint16) string { return in.strs[c] }

func (in *intern) getList(c uint16) []string {
	switch {
	case c == listNil:
		return nil
	case c == listEmpty:
		return emptyList
	case c < listBase:
		return in.strs[c : c+1 : c+1]
	}
	return in.lists[c-listBase]
}

// sizes reports how many strings, lists and claim sets the tables hold (for tests).
func (in *intern) sizes() (strs, lists, sets int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.nStrs, in.nLists, in.nSets
}

// timeMode says how t is kept: only times that time.Unix would give back exactly (no
// monotonic reading, the Local location) are kept as numbers; others make the entry l1Full.
func timeMode(t time.Time) (mode byte, ok bool) {
	if t == (time.Time{}) {
		return timeNone, true
	}
	ns := t.UnixNano()
	if time.Unix(0, ns) != t {
		return 0, false
	}
	if sec := t.Unix(); t.Nanosecond() == 0 && sec >= 0 && sec <= 1<<32-1 {
		return timeSec, true
	}
	return timeNano, true
}

func timeSize(mode byte) int { return [4]int{0, 4, 8, 0}[mode&3] }

func appendTime(b []byte, mode byte, t time.Time) []byte {
	switch mode {
	case timeSec:
		return binary.LittleEndian.AppendUint32(b, uint32(t.Unix()))
	case timeNano:
		return binary.LittleEndian.AppendUint64(b, uint64(t.UnixNano()))
	}
	return b
}

func readTime(b []byte, mode byte) time.Time {
	switch mode {
	case timeSec:
		return time.Unix(int64(binary.LittleEndian.Uint32(b)), 0)
	case timeNano:
		return time.Unix(0, int64(binary.LittleEndian.Uint64(b)))
	}
	return time.Time{}
}

// record makes e's L1 record, stored at epoch.
func (in *intern) record(e *entry, epoch uint32) unsafe.Pointer {
	if e.neg {
		b := make([]byte, l1Head)
		b[0] = l1NegBit
		binary.LittleEndian.PutUint32(b[2:], epoch)
		return unsafe.Pointer(&b[0])
	}
	id := &e.id
	in.mu.Lock()
	defer in.mu.Unlock()
	if b := in.compact(id, epoch); b != nil {
		return unsafe.Pointer(&b[0])
	}
	f := &l1Full{kind: l1FullBit, epoch: epoch, id: *id}
	// Whatever is shared goes in shared; the rest is copied, so that a caller changing its
	// slices or map later cannot change what other requests are served.
	if c, ok := in.str(id.Issuer); ok {
		f.id.Issuer = in.getStr(c)
	}
	f.id.Audience = in.sharedList(id.Audience)
	f.id.Scopes = in.sharedList(id.Scopes)
	if id.Claims != nil {
		f.id.Claims = make(map[string]string, len(id.Claims))
		for k, v := range id.Claims {
			if c, ok := in.str(k); ok {
				k = in.getStr(c)
			}
			f.id.Claims[k] = v
		}
	}
	return unsafe.Pointer(f)
}

func (in *intern) sharedList(l []string) []string {
	if c, ok := in.list(l); ok {
		return in.getList(c)
	}
	return slices.Clip(slices.Clone(l))
}

// compact returns id's record, or nil if it does not fit one. mu is held.
func (in *intern) compact(id *identity.Identity, epoch uint32) []byte {
	if len(id.Subject) > maxInline || len(id.ClientID) > maxInline ||
		len(id.Confirmation.JKT) > maxInline || len(id.Confirmation.X5TS256) > maxInline {
		return nil
	}
	expMode, ok1 := timeMode(id.Expiry)
	nbfMode, ok2 := timeMode(id.NotBefore)
	if !ok1 || !ok2 {
		return nil
	}
	iss, ok := in.str(id.Issuer)
	if !ok {
		return nil
	}
	aud, ok := in.list(id.Audience)
	if !ok {
		return nil
	}
	scp, ok := in.list(id.Scopes)
	if !ok {
		return nil
	}
	var set uint16
	if id.Claims != nil {
		if set, ok = in.claims(id.Claims); !ok {
			return nil
		}
	}
	cnf := id.Confirmation.Bound()
	n := l1Head + 6 + timeSize(expMode) + timeSize(nbfMode) + 2 + len(id.Subject) + len(id.ClientID)
	if cnf {
		n += 2 + len(id.Confirmation.JKT) + len(id.Confirmation.X5TS256)
	}
	var f1 byte
	if cnf {
		f1 |= l1CnfBit
	}
	if id.Claims != nil {
		f1 |= l1ClaimsBit
		n += 2
	}
	b := make([]byte, 0, n)
	b = append(b, byte(id.Source&3)<<l1SrcShift|expMode<<l1ExpShift|nbfMode<<l1NbfShift, f1)
	b = binary.LittleEndian.AppendUint32(b, epoch)
	b = binary.LittleEndian.AppendUint16(b, iss)
	b = binary.LittleEndian.AppendUint16(b, aud)
	b = binary.LittleEndian.AppendUint16(b, scp)
	if f1&l1ClaimsBit != 0 {
		b = binary.LittleEndian.AppendUint16(b, set)
	}
	b = appendTime(b, expMode, id.Expiry)
	b = appendTime(b, nbfMode, id.NotBefore)
	b = append(b, byte(len(id.Subject)), byte(len(id.ClientID)))
	if cnf {
		b = append(b, byte(len(id.Confirmation.JKT)), byte(len(id.Confirmation.X5TS256)))
	}
	b = append(b, id.Subject...)
	b = append(b, id.ClientID...)
	if cnf {
		b = append(b, id.Confirmation.JKT...)
		b = append(b, id.Confirmation.X5TS256...)
	}
	return b
}

// read gives back what record stored: the entry and its epoch. It does not allocate: the
// identity's strings point into the record or the tables.
func (in *intern) read(p unsafe.Pointer) (e entry, epoch uint32) {
	if *(*byte)(p)&l1FullBit != 0 {
		f := (*l1Full)(p)
		return entry{id: f.id}, f.epoch
	}
	h := (*[l1Head]byte)(p)
	epoch = binary.LittleEndian.Uint32(h[2:])
	if h[0]&l1NegBit != 0 {
		return entry{neg: true}, epoch
	}
	expMode, nbfMode, cnf := h[0]>>l1ExpShift&3, h[0]>>l1NbfShift&3, h[1]&l1CnfBit != 0
	times := l1Head + 6
	if h[1]&l1ClaimsBit != 0 {
		times += 2
	}
	at := times + timeSize(expMode) + timeSize(nbfMode)
	nl := 2
	if cnf {
		nl = 4
	}
	lens := unsafe.Slice((*byte)(unsafe.Add(p, at)), nl)
	tail := at + nl
	n := tail
	for _, l := range lens {
		n += int(l)
	}
	b := unsafe.Slice((*byte)(p), n)
	id := &e.id
	id.Source = identity.Source(h[0] >> l1SrcShift & 3)
	id.Issuer = in.getStr(binary.LittleEndian.Uint16(b[l1Head:]))
	id.Audience = in.getList(binary.LittleEndian.Uint16(b[l1Head+2:]))
	id.Scopes = in.getList(binary.LittleEndian.Uint16(b[l1Head+4:]))
	if h[1]&l1ClaimsBit != 0 {
		id.Claims = in.sets[binary.LittleEndian.Uint16(b[l1Head+6:])]
	}
	id.Expiry = readTime(b[times:], expMode)
	id.NotBefore = readTime(b[times+timeSize(expMode):], nbfMode)
	s := unsafe.String(unsafe.SliceData(b), n)[tail:]
	id.Subject, s = s[:lens[0]], s[lens[0]:]
	id.ClientID, s = s[:lens[1]], s[lens[1]:]
	if cnf {
		id.Confirmation.JKT, s = s[:lens[2]], s[lens[2]:]
		id.Confirmation.X5TS256 = s[:lens[3]]
	}
	return e, epoch
}

// staleEnd is when the entry v stops standing in for its token (see staleEnd); otter asks
// on every write, to reclaim the entry then.
func (in *intern) staleEnd(v l1Value, grace int64) int64 {
	e, _ := in.read(v.p)
	return staleEnd(v.deadline, e.neg, e.id.Expiry, grace)
}
