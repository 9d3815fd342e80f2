package cache

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

var testMACKey = []byte("mac key for codec tests, 32 byte")

const testRKey = "mcp-authz:v5:0123456789abcdef"

// testDeadline: when the sample entries stop being served, a little before the earliest exp.
var testDeadline = time.Unix(1_794_999_000, 500_000_000).UnixNano()

// wantDeadline is what decode returns for an entry stored until deadline: whole seconds,
// never past the expiry.
func wantDeadline(e entry, deadline int64) int64 {
	dl := time.Unix(0, deadline).Unix()
	if !e.id.Expiry.IsZero() {
		dl = min(dl, e.id.Expiry.Unix())
	}
	return dl * int64(time.Second)
}

func sampleEntries() map[string]entry {
	exp := time.Unix(1_795_000_000, 0)
	return map[string]entry{
		"rfc7662": {id: identity.Identity{
			Issuer: "https://server.example.com/", Subject: "Z5O3upPC88QrAjx00dis",
			ClientID: "l238j323ds-23ij4", Audience: []string{"https://protected.example.net/resource"},
			Scopes: []string{"read", "write", "dolphin"}, Expiry: exp, Source: identity.SourceIntrospection,
		}},
		"everything": {id: identity.Identity{
			Issuer: "https://idp.example.com", Subject: "sub", ClientID: "",
			Audience: []string{"a", "https://protected.example.net/resource", ""},
			Scopes:   nil, Expiry: exp, NotBefore: exp.Add(-time.Hour),
			Claims: map[string]string{"email": "a@example.com", "": "empty key", "z": ""},
			Source: identity.SourceJWT,
		}},
		"api key, no times": {id: identity.Identity{Subject: "svc", Source: identity.SourceAPIKey}},
		"unicode":           {id: identity.Identity{Subject: "ユーザー\x00\xff", Scopes: []string{strings.Repeat("s", 300)}}},
		"negative":          {neg: true},
		// Canonical UUIDs are stored as 16 bytes; the near-misses keep their exact text.
		"uuids": {id: identity.Identity{
			Subject: "f47ac10b-58cc-4372-a567-0e02b2c3d479", ClientID: "00000000-0000-0000-0000-000000000000",
			Audience: []string{"F47AC10B-58CC-4372-A567-0E02B2C3D479", "f47ac10b-58cc-4372-a567-0e02b2c3d47g",
				"f47ac10b58cc-4372-a567-0e02b2c3d479-", "{f47ac10b-58cc-4372-a567-0e02b2c3d479}"},
			Claims: map[string]string{"oid": "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		}},
		"pre-1970": {id: identity.Identity{Subject: "old", Expiry: time.Unix(-5, 0), NotBefore: time.Unix(-10, 0)}},
		"dpop-bound": {id: identity.Identity{Subject: "s", Expiry: time.Unix(1_900_000_000, 0),
			Confirmation: identity.Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}},
		"cert-and-key-bound": {id: identity.Identity{Subject: "s", Claims: map[string]string{"g": `["a"]`},
			Confirmation: identity.Confirmation{JKT: "j", X5TS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}},
	}
}

func equalEntry(a, b entry) bool {
	x, y := a.id, b.id
	return a.neg == b.neg && x.Issuer == y.Issuer && x.Subject == y.Subject && x.ClientID == y.ClientID &&
		slices.Equal(x.Audience, y.Audience) && slices.Equal(x.Scopes, y.Scopes) &&
		x.Expiry.Equal(y.Expiry) && x.NotBefore.Equal(y.NotBefore) && x.Source == y.Source &&
		maps.Equal(x.Claims, y.Claims) && x.Confirmation == y.Confirmation
}

func TestCodecRoundTrip(t *testing.T) {
	for _, intern := range [][]string{nil, {"https://server.example.com/", "https://protected.example.net/resource", "read", "sub"}} {
		c := newCodec(testMACKey, intern)
		for name, e := range sampleEntries() {
			v := c.encode(testRKey, &e, testDeadline)
			got, dl, err := c.decode(testRKey, string(v))
			if err != nil {
				t.Fatalf("%s (intern %d): decode: %v", name, len(intern), err)
			}
			if !equalEntry(got, e) {
				t.Fatalf("%s (intern %d): round trip\n got %+v\nwant %+v", name, len(intern), got, e)
			}
			if want := wantDeadline(e, testDeadline); dl != want {
				t.Fatalf("%s: deadline %v, want %v", name, time.Unix(0, dl), time.Unix(0, want))
			}
			// Bound to its key: the same bytes under another key are rejected.
			if _, _, err := c.decode(testRKey[:len(testRKey)-1]+"X", string(v)); !errors.Is(err, errBadMAC) {
				t.Fatalf("%s: moved to another key: err = %v", name, err)
			}
		}
	}
}

func TestCodecTimeRounding(t *testing.T) {
	c := newCodec(testMACKey, nil)
	e := entry{id: identity.Identity{
		Expiry:    time.Unix(100, 999_999_999),
		NotBefore: time.Unix(50, 1),
	}}
	got, dl, err := c.decode(testRKey, string(c.encode(testRKey, &e, time.Unix(90, 999_999_999).UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	// Every rounding shortens the validity window, never lengthens it.
	if got.id.Expiry.Unix() != 100 || got.id.NotBefore.Unix() != 51 || dl != 90*int64(time.Second) {
		t.Fatalf("exp %v nbf %v deadline %v", got.id.Expiry.Unix(), got.id.NotBefore.Unix(), time.Unix(0, dl))
	}
}

// The deadline is the entry's own: it never ends after the token, costs two bytes beside an
// expiry, and an entry without one (an API key, a token without exp) still has it.
func TestCodecDeadline(t *testing.T) {
	c := newCodec(testMACKey, nil)
	exp := time.Unix(1_795_000_000, 0)
	withExp := entry{id: identity.Identity{Subject: "s", Expiry: exp}}
	for _, tc := range []struct {
		name     string
		e        entry
		deadline time.Time
		want     time.Time
	}{
		{"max ttl before exp", withExp, exp.Add(-55 * time.Minute), exp.Add(-55 * time.Minute)},
		{"past exp is cut to exp", withExp, exp.Add(time.Hour), exp},
		{"no exp", entry{id: identity.Identity{Subject: "svc"}}, exp, exp},
		{"negative", entry{neg: true}, exp.Add(1500 * time.Millisecond), exp.Add(time.Second)},
	} {
		v := c.encode(testRKey, &tc.e, tc.deadline.UnixNano())
		_, dl, err := c.decode(testRKey, string(v))
		if err != nil || dl != tc.want.UnixNano() {
			t.Errorf("%s: deadline %v (%v), want %v", tc.name, time.Unix(0, dl).UTC(), err, tc.want.UTC())
		}
	}
	// Next to an expiry an hour away, the deadline costs two bytes.
	longer := c.encode(testRKey, &withExp, exp.Add(-time.Hour).UnixNano())
	shorter := c.encode(testRKey, &withExp, exp.UnixNano())
	if d := len(longer) - len(shorter); d != 1 {
		t.Errorf("an hour's offset takes %d bytes more than none, want 1 (2 in all)", d)
	}
}

func TestCodecInternSaves(t *testing.T) {
	e := sampleEntries()["rfc7662"]
	plain := len(newCodec(testMACKey, nil).encode(testRKey, &e, testDeadline))
	c := newCodec(testMACKey, []string{e.id.Issuer, e.id.Audience[0]})
	interned := len(c.encode(testRKey, &e, testDeadline))
	// Each interned string trades its header and bytes for a reference's header.
	want := plain
	for _, s := range []string{e.id.Issuer, e.id.Audience[0]} {
		want += -len(binary.AppendUvarint(nil, uint64(len(s))<<2)) - len(s) +
			len(binary.AppendUvarint(nil, uint64(c.refs[s])<<2|strRef))
	}
	if interned != want {
		t.Fatalf("interned %d bytes, plain %d, want %d", interned, plain, want)
	}
	t.Logf("rfc7662 entry: %d bytes inline, %d with issuer and audience interned", plain, interned)
}

// A replica whose intern list lacks a string, or maps its reference to another string, never
// decodes the entry as something else.
func TestCodecInternMismatch(t *testing.T) {
	e := sampleEntries()["rfc7662"]
	writer := newCodec(testMACKey, []string{e.id.Issuer})
	v := string(writer.encode(testRKey, &e, testDeadline))

	if _, _, err := newCodec(testMACKey, nil).decode(testRKey, v); !errors.Is(err, errUndecodable) {
		t.Fatalf("reader without the string: %v", err)
	}
	liar := newCodec(testMACKey, nil)
	for r := range writer.strs {
		liar.strs[r] = "https://attacker.example/"
		liar.refs["https://attacker.example/"] = r
	}
	if _, _, err := liar.decode(testRKey, v); !errors.Is(err, errBadMAC) {
		t.Fatalf("reader resolving the reference to another string: %v", err)
	}
}

func TestCodecInternCollision(t *testing.T) {
	// Find two strings whose 16-bit references collide; neither may be interned, whatever
	// the order they are listed in.
	seen := map[uint16]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		s := "https://issuer-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "/" + strconv.Itoa(i)
		r := newCodec(testMACKey, []string{s})
		for ref := range r.strs {
			if o, ok := seen[ref]; ok && o != s {
				a, b = o, s
			}
			seen[ref] = s
		}
	}
	for _, order := range [][]string{{a, b}, {b, a}} {
		c := newCodec(testMACKey, order)
		if len(c.refs) != 0 || len(c.strs) != 0 {
			t.Fatalf("colliding strings interned: %v", c.refs)
		}
	}
}

func TestCodecRejects(t *testing.T) {
	c := newCodec(testMACKey, nil)
	e := sampleEntries()["everything"]
	v := c.encode(testRKey, &e, testDeadline)
	for i := range v {
		for _, bit := range []byte{0x01, 0x80} {
			w := slices.Clone(v)
			w[i] ^= bit
			if _, _, err := c.decode(testRKey, string(w)); err == nil {
				t.Fatalf("flipping bit %#x of byte %d went unnoticed", bit, i)
			}
		}
	}
	for n := range len(v) {
		if _, _, err := c.decode(testRKey, string(v[:n])); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	other := newCodec([]byte("a different mac key, also 32 byt"), nil)
	if _, _, err := other.decode(testRKey, string(v)); !errors.Is(err, errBadMAC) {
		t.Fatalf("other secret: %v", err)
	}
}

func TestCodecUUID(t *testing.T) {
	c := newCodec(testMACKey, nil)
	e := sampleEntries()["uuids"]
	v := c.encode(testRKey, &e, testDeadline)
	canonical := c.appendBody(nil, &e, testDeadline, false)
	// Three UUIDs at 16 bytes plus a 1-byte header each, instead of 36 plus a 2-byte header.
	if want := len(canonical) + macLen - 3*(38-17); len(v) != want {
		t.Fatalf("encoded %d bytes, want %d", len(v), want)
	}
	for _, s := range []string{"f47ac10b-58cc-4372-a567-0e02b2c3d479", "00000000-0000-0000-0000-000000000000"} {
		u, ok := parseUUID(s)
		if !ok || formatUUID(u[:]) != s {
			t.Fatalf("%s: parse %v, format %q", s, ok, formatUUID(u[:]))
		}
	}
	for _, s := range e.id.Audience {
		if _, ok := parseUUID(s); ok {
			t.Fatalf("%q taken for a canonical UUID", s)
		}
	}
	// A UUID header with extra bits, or fewer than 16 bytes after it, is not a UUID.
	body := []byte{codecVersion, 0, 0, strUUID | 4<<2}
	body = append(body, make([]byte, 16)...)
	body = append(body, 0, 0, 0, 0)
	if _, _, err := c.decode(testRKey, string(append(body, make([]byte, macLen)...))); !errors.Is(err, errUndecodable) {
		t.Fatalf("UUID header with a length: %v", err)
	}
	if _, _, err := c.decode(testRKey, string([]byte{codecVersion, 0, 0, strUUID, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})); err == nil {
		t.Fatal("short UUID accepted")
	}
	if _, _, err := c.decode(testRKey, string(append([]byte{codecVersion, 0, 0, 3, 0, 0, 0, 0}, make([]byte, macLen)...))); !errors.Is(err, errUndecodable) {
		t.Fatalf("string kind 3: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	intern := []string{"https://server.example.com/", "https://protected.example.net/resource"}
	c := newCodec(testMACKey, intern)
	for _, e := range sampleEntries() {
		f.Add(c.encode(testRKey, &e, testDeadline))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		e, dl, err := c.decode(testRKey, string(v))
		if err != nil {
			return
		}
		// Anything accepted carries a valid MAC, so it must be what the writer encoded.
		again := c.encode(testRKey, &e, dl)
		if got, dl2, err := c.decode(testRKey, string(again)); err != nil || !equalEntry(got, e) || dl2 != dl {
			t.Fatalf("accepted value does not re-encode: %v", err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	c := newCodec(testMACKey, []string{"https://server.example.com/", "https://protected.example.net/resource"})
	e := sampleEntries()["rfc7662"]
	b.ReportAllocs()
	for b.Loop() {
		if v := c.encode(testRKey, &e, testDeadline); len(v) < macLen {
			b.Fatal(len(v))
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	c := newCodec(testMACKey, []string{"https://server.example.com/", "https://protected.example.net/resource"})
	e := sampleEntries()["rfc7662"]
	v := string(c.encode(testRKey, &e, testDeadline))
	b.ReportAllocs()
	for b.Loop() {
		if got, _, err := c.decode(testRKey, v); err != nil || got.id.Subject != e.id.Subject {
			b.Fatal(err)
		}
	}
}

func TestL1Bounded(t *testing.T) {
	c, err := New(t.Context(), Config{MaxTTL: 5 * time.Minute, RevocationLimit: 10_000, Secret: testMACKey, L1Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 1000 {
		c.SetNegative(t.Context(), c.Key(strconv.Itoa(i)), time.Hour)
	}
	c.l1.CleanUp()
	if n := c.l1.EstimatedSize(); n > 10 {
		t.Fatalf("L1 holds %d entries, bound 10", n)
	}
}
