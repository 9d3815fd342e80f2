package strictjson

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// checkReference is the first, plain implementation of Check (a map of fold keys per
// object, a fresh decoder per call). The pooled one must agree with it on every input.
func checkReference(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	var stack []map[string]struct{}
	values := 0
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF && values == 1 {
			return nil
		}
		if err != nil {
			return wrap(err)
		}
		if len(stack) == 0 {
			if values++; values > 1 {
				return fmt.Errorf("%w: more than one value", ErrAmbiguous)
			}
		}
		switch tok.Kind() {
		case '{':
			stack = append(stack, map[string]struct{}{})
			continue
		case '[':
			stack = append(stack, nil)
			continue
		case '}', ']':
			stack = stack[:len(stack)-1]
			continue
		}
		n := len(stack)
		if n == 0 || stack[n-1] == nil || tok.Kind() != '"' {
			continue
		}
		if _, l := dec.StackIndex(dec.StackDepth()); l%2 == 1 {
			k := foldKey(tok.String())
			if _, dup := stack[n-1][k]; dup {
				return fmt.Errorf("%w: duplicate", ErrAmbiguous)
			}
			stack[n-1][k] = struct{}{}
		}
	}
}

// randomDoc builds JSON, valid or not, from pieces chosen to collide: names that differ in
// case, by Kelvin sign or long s, by escapes; objects past linearNames; nesting; junk.
func randomDoc(r *rand.Rand) string {
	names := []string{"a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "scope", "Scope", "n\\u0061me", "name",
		"\\u212a", "x\\\"y", "\u00e9", "\u00c9", "\u0131", "I", "i", "\u03a3", "\u03c3", "\u03c2"}
	var b strings.Builder
	var value func(depth int)
	value = func(depth int) {
		switch k := r.IntN(10); {
		case k < 3 && depth < 4:
			b.WriteByte('{')
			n := r.IntN(4)
			if r.IntN(8) == 0 {
				n = linearNames + r.IntN(linearNames)
			}
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				name := names[r.IntN(len(names))]
				if n > linearNames {
					// Distinct names, but the last may repeat an earlier one folded
					// (m3 and M3), past the point where the names moved to a set.
					name = fmt.Sprintf("m%d", i)
					if i == n-1 && r.IntN(2) == 0 {
						name = fmt.Sprintf("M%d", r.IntN(n-1))
					}
				}
				b.WriteString(`"` + name + `":`)
				if n > linearNames && r.IntN(4) > 0 {
					b.WriteString(`"v"`) // mostly valid, so that large objects get accepted too
					continue
				}
				value(depth + 1)
			}
			b.WriteByte('}')
		case k < 5 && depth < 4:
			b.WriteByte('[')
			for i := range r.IntN(4) {
				if i > 0 {
					b.WriteByte(',')
				}
				value(depth + 1)
			}
			b.WriteByte(']')
		case k < 7:
			b.WriteString(`"v"`)
		case k < 8:
			b.WriteString("12.5e3")
		default:
			b.WriteString([]string{"true", "null", `"\ud800"`, "\"\xff\"", "01", "tru"}[r.IntN(6)])
		}
	}
	value(0)
	switch r.IntN(12) {
	case 0:
		b.WriteString(` {"a":1}`)
	case 1:
		b.WriteString(" x")
	case 2:
		return b.String()[:r.IntN(b.Len()+1)]
	}
	return b.String()
}

func TestCheckMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 6))
	ok, big := 0, 0
	for range 20000 {
		doc := randomDoc(r)
		got, want := Check([]byte(doc)), checkReference([]byte(doc))
		if (got == nil) != (want == nil) {
			t.Fatalf("Check(%q) = %v, reference says %v", doc, got, want)
		}
		if got == nil {
			ok++
			if strings.Contains(doc, `"m16"`) {
				big++
			}
		}
	}
	// The corpus must exercise both answers, and objects past linearNames.
	if ok < 2000 || ok > 18000 || big < 20 {
		t.Fatalf("%d of 20000 documents accepted, %d with a large object: the generator is off", ok, big)
	}
}

func FuzzCheckMatchesReference(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"x":{"k":1,"\u212a":2}}`, `[{"a":1},{"a":2}]`, `{"a":1} 2`, `{}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, want := Check(doc), checkReference(doc)
		if (got == nil) != (want == nil) {
			t.Fatalf("Check(%q) = %v, reference says %v", doc, got, want)
		}
	})
}

func BenchmarkCheckPayload(b *testing.B) {
	doc := []byte(`{"iss":"https://as.example","sub":"user-1","aud":"https://mcp.example.com/mcp","client_id":"client-1","iat":1795953600,"exp":1795957200,"jti":"jti-1","scope":"mcp:read mcp:write","email":"u@example.com","groups":["a","b"]}`)
	for _, bc := range []struct {
		name string
		fn   func([]byte) error
	}{{"pooled", Check}, {"reference", checkReference}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.fn(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// foldKey maps every rune to the smallest rune of its simple-folding orbit, so two names are
// equal under folding exactly when their keys are equal.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// ASCII letters' orbits: {A, a} and also {K, k, U+212A}, {S, s, U+017F}; the smallest
		// member is always the upper-case ASCII letter.
		b := []byte(s)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b)
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		out = append(out, min)
	}
	return string(out)
}
