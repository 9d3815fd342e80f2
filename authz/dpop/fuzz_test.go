package dpop

import (
	"context"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzProof: no input panics the parser, and whatever Check accepts is a proof for this
// request and token.
func FuzzProof(f *testing.F) {
	s := newSigner(f, jose.ES256)
	f.Add(s.sign(f, nil, claims("seed")))
	f.Add(newSigner(f, jose.EdDSA).sign(f, nil, claims("seed2")))
	f.Add("e30.e30.")
	f.Add("..")
	k := newChecker(f, func(c *Config) { c.Algs = []string{"ES256", "EdDSA", "RS256"} })
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := k.Check(context.Background(), in(proof))
		if err != nil {
			return
		}
		if p.HTM != "POST" || !SameURI(p.HTU, origin, path) || p.ATH != TokenHash(token) || p.JKT == "" {
			t.Fatalf("accepted a proof for another request: %+v", p)
		}
	})
}
