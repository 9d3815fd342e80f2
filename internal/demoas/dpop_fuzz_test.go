package demoas

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The token endpoint's proof reader answers every input with a proof or an error, never a
// panic; a proof it accepts passed every check, so it names the method and the endpoint.
func FuzzVerifyProof(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	as, err := New(Config{Issuer: "https://as.example", Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	key, err := generateFuzzKey()
	if err != nil {
		f.Fatal(err)
	}
	good := mustProof(key, "POST", "https://as.example/token", now)
	if _, err := as.verifyProof(good, "POST", "https://as.example/token"); err != nil {
		f.Fatalf("the seed proof is refused: %v", err) // else the corpus never reaches the later checks
	}
	f.Add(good)
	f.Add(mustProof(key, "GET", "https://as.example/token", now))
	f.Add("e30.e30.")
	f.Add("..")
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, proof string) {
		as.dpop.jtis = jtiMemory{} // every input is judged on its own, not as a replay
		jkt, err := as.verifyProof(proof, "POST", "https://as.example/token")
		if err == nil && jkt == "" {
			t.Fatal("accepted without a thumbprint")
		}
	})
}

func generateFuzzKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func mustProof(key *ecdsa.PrivateKey, htm, htu string, iat time.Time) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(map[string]any{"jti": "j", "htm": htm, "htu": htu, "iat": iat.Unix()})
	jws, err := sig.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}
