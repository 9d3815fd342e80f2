package cache

import (
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

const testRKey = "mcp-authz:v1:0123456789abcdef0123456789abcdef"

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
		"pre-1970":          {id: identity.Identity{Subject: "old", Expiry: time.Unix(-5, 0), NotBefore: time.Unix(-10, 0)}},
	}
}

func equalEntry(a, b entry) bool {
	x, y := a.id, b.id
	return a.neg == b.neg && x.Issuer == y.Issuer && x.Subject == y.Subject && x.ClientID == y.ClientID &&
		slices.Equal(x.Audience, y.Audience) && slices.Equal(x.Scopes, y.Scopes) &&
		x.Expiry.Equal(y.Expiry) && x.NotBefore.Equal(y.NotBefore) && x.Source == y.Source &&
		maps.Equal(x.Claims, y.Claims)
}

func TestCodecRoundTrip(t *testing.T) {
	for _, intern := range [][]string{nil, {"https://server.example.com/", "https://protected.example.net/resource", "read", "sub"}} {
		c := newCodec(testMACKey, intern)
		for name, e := range sampleEntries() {
			v := c.encode(testRKey, &e)
			got, err := c.decode(testRKey, string(v))
			if err != nil {
				t.Fatalf("%s (intern %d): decode: %v", name, len(intern), err)
			}
			if !equalEntry(got, e) {
				t.Fatalf("%s (intern %d): round trip\n got %+v\nwant %+v", name, len(intern), got, e)
			}
			// Bound to its key: the same bytes under another key are rejected.
			if _, err := c.decode(testRKey[:len(testRKey)-1]+"X", string(v)); !errors.Is(err, errBadMAC) {
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
	got, err := c.decode(testRKey, string(c.encode(testRKey, &e)))
	if err != nil {
		t.Fatal(err)
	}
	// Both roundings shorten the validity window, never lengthen it.
	if got.id.Expiry.Unix() != 100 || got.id.NotBefore.Unix() != 51 {
		t.Fatalf("exp %v nbf %v", got.id.Expiry.Unix(), got.id.NotBefore.Unix())
	}
}

func TestCodecInternSaves(t *testing.T) {
	e := sampleEntries()["rfc7662"]
	plain := len(newCodec(testMACKey, nil).encode(testRKey, &e))
	interned := len(newCodec(testMACKey, []string{e.id.Issuer, e.id.Audience[0]}).encode(testRKey, &e))
	if want := plain - len(e.id.Issuer) - len(e.id.Audience[0]) + 4; interned != want {
		t.Fatalf("interned %d bytes, plain %d, want %d", interned, plain, want)
	}
	t.Logf("rfc7662 entry: %d bytes inline, %d with issuer and audience interned", plain, interned)
}

// A replica whose intern list lacks a string, or maps its reference to another string, never
// decodes the entry as something else.
func TestCodecInternMismatch(t *testing.T) {
	e := sampleEntries()["rfc7662"]
	writer := newCodec(testMACKey, []string{e.id.Issuer})
	v := string(writer.encode(testRKey, &e))

	if _, err := newCodec(testMACKey, nil).decode(testRKey, v); !errors.Is(err, errUndecodable) {
		t.Fatalf("reader without the string: %v", err)
	}
	liar := newCodec(testMACKey, nil)
	for r := range writer.strs {
		liar.strs[r] = "https://attacker.example/"
		liar.refs["https://attacker.example/"] = r
	}
	if _, err := liar.decode(testRKey, v); !errors.Is(err, errBadMAC) {
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
	v := c.encode(testRKey, &e)
	for i := range v {
		for _, bit := range []byte{0x01, 0x80} {
			w := slices.Clone(v)
			w[i] ^= bit
			if _, err := c.decode(testRKey, string(w)); err == nil {
				t.Fatalf("flipping bit %#x of byte %d went unnoticed", bit, i)
			}
		}
	}
	for n := range len(v) {
		if _, err := c.decode(testRKey, string(v[:n])); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	other := newCodec([]byte("a different mac key, also 32 byt"), nil)
	if _, err := other.decode(testRKey, string(v)); !errors.Is(err, errBadMAC) {
		t.Fatalf("other secret: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	intern := []string{"https://server.example.com/", "https://protected.example.net/resource"}
	c := newCodec(testMACKey, intern)
	for _, e := range sampleEntries() {
		f.Add(c.encode(testRKey, &e))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := c.decode(testRKey, string(v))
		if err != nil {
			return
		}
		// Anything accepted carries a valid MAC, so it must be what the writer encoded.
		again := c.encode(testRKey, &e)
		if got, err := c.decode(testRKey, string(again)); err != nil || !equalEntry(got, e) {
			t.Fatalf("accepted value does not re-encode: %v", err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	c := newCodec(testMACKey, []string{"https://server.example.com/", "https://protected.example.net/resource"})
	e := sampleEntries()["rfc7662"]
	b.ReportAllocs()
	for b.Loop() {
		if v := c.encode(testRKey, &e); len(v) < macLen {
			b.Fatal(len(v))
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	c := newCodec(testMACKey, []string{"https://server.example.com/", "https://protected.example.net/resource"})
	e := sampleEntries()["rfc7662"]
	v := string(c.encode(testRKey, &e))
	b.ReportAllocs()
	for b.Loop() {
		if got, err := c.decode(testRKey, v); err != nil || got.id.Subject != e.id.Subject {
			b.Fatal(err)
		}
	}
}

func TestL1Bounded(t *testing.T) {
	c, err := New(t.Context(), Config{Secret: testMACKey, L1Size: 10})
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
