package authz

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// isB64TokenRef is the grammar read byte by byte, spelt out from RFC 6750 §2.1 rather than
// from isB64Token's table: the table and the word-at-a-time reading must agree with it on
// every input.
func isB64TokenRef(t string) bool {
	char := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0
	}
	i := 0
	for i < len(t) && char(t[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// Every byte value at every position of a word, inside a token that is otherwise good, and as
// padding, against the byte-wise reading.
func TestIsB64TokenEveryByte(t *testing.T) {
	base := strings.Repeat("aZ09-._~+/", 4)[:33]
	for c := range 256 {
		for pos := range len(base) {
			b := []byte(base)
			b[pos] = byte(c)
			for _, tok := range []string{string(b), string(b) + "==", string(b[:pos+1]), "=" + string(b)} {
				if got, want := isB64Token(tok), isB64TokenRef(tok); got != want {
					t.Fatalf("isB64Token(%q) = %v, byte-wise %v", tok, got, want)
				}
			}
		}
	}
	// Padding in and after the words.
	for n := range 24 {
		for p := range 12 {
			tok := strings.Repeat("A", n) + strings.Repeat("=", p)
			if got, want := isB64Token(tok), isB64TokenRef(tok); got != want {
				t.Fatalf("isB64Token(%q) = %v, byte-wise %v", tok, got, want)
			}
			tok += "A"
			if got, want := isB64Token(tok), isB64TokenRef(tok); got != want {
				t.Fatalf("isB64Token(%q) = %v, byte-wise %v", tok, got, want)
			}
		}
	}
}

func TestIsB64TokenRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCXYZabcxyz0189-._~+/=,; \t\x00\x7f\x80\xff@[`{*"
	for range 200_000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
		}
		if got, want := isB64Token(string(b)), isB64TokenRef(string(b)); got != want {
			t.Fatalf("isB64Token(%q) = %v, byte-wise %v", b, got, want)
		}
	}
}

func FuzzIsB64Token(f *testing.F) {
	for _, s := range []string{"", "a", "abc==", "=", "abcdefgh", "abcdefgh=", "abcdefg\x80", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isB64Token(s), isB64TokenRef(s); got != want {
			t.Fatalf("isB64Token(%q) = %v, byte-wise %v", s, got, want)
		}
	})
}

// A JWT-sized token: what every Check pays for the syntax check.
func BenchmarkIsB64Token(b *testing.B) {
	tok := strings.Repeat("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.", 23)[:797] + "Q_-"
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if !isB64Token(tok) {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkIsB64TokenRef(b *testing.B) {
	tok := strings.Repeat("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.", 23)[:797] + "Q_-"
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if !isB64TokenRef(tok) {
			b.Fatal("rejected")
		}
	}
}
