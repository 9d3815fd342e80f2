package jwt

import (
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// benchVerify measures the allow path with keys loaded: what every uncached JWT Check pays.
// Keys: RSA-2048, EC P-256, Ed25519 (verify cost depends on them; see performance.md §A).
func benchVerify(b *testing.B, k testKey, claims []string) {
	f := setup(b, discoveryNone, func(c *Config) { c.Claims = claims })
	cl := f.claims()
	cl["exp"] = f.clock.Now().Add(time.Hour).Unix()
	cl["email"] = "u@example.com"
	cl["groups"] = []string{"a", "b"}
	token := mint(b, k, cl, nil)
	if _, err := f.v.Verify(b.Context(), token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		id, err := f.v.Verify(b.Context(), token)
		if err != nil || id.Subject != "user-1" {
			b.Fatal(id, err)
		}
	}
}

// cpuPerOp reports the process's CPU time (user + system) per iteration beside ns/op: on a
// shared machine wall time per op swings with the neighbours' load, CPU time much less.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B)       { benchVerify(b, keyRSA(), nil) }
func BenchmarkVerifyES256(b *testing.B)       { benchVerify(b, keyEC(), nil) }
func BenchmarkVerifyEdDSA(b *testing.B)       { benchVerify(b, keyEd(), nil) }
func BenchmarkVerifyRS256Claims(b *testing.B) { benchVerify(b, keyRSA(), []string{"email", "groups"}) }

// BenchmarkVerifyRS256Parallel is the per-core throughput ceiling of local verification.
func BenchmarkVerifyRS256Parallel(b *testing.B) {
	f := setup(b, discoveryNone, nil)
	token := mint(b, keyRSA(), f.claims(), nil)
	if _, err := f.v.Verify(b.Context(), token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.v.Verify(b.Context(), token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// The deny paths: junk and downgrade attempts must stay far cheaper than a signature check,
// and an unknown kid must cost no fetch and no crypto inside the refresh interval.
func BenchmarkRejectAlgNone(b *testing.B) {
	f := setup(b, discoveryNone, nil)
	token := "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + "eyJpc3MiOiJ4In0."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(b.Context(), token); err != errAlg {
			b.Fatal(err)
		}
	}
}

func BenchmarkRejectUnknownKid(b *testing.B) {
	f := setup(b, discoveryNone, nil)
	if _, err := f.v.Verify(b.Context(), mint(b, keyRSA(), f.claims(), nil)); err != nil {
		b.Fatal(err)
	}
	token := mint(b, testKey{kid: "nope", alg: jose.RS256, priv: rsaKey}, f.claims(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(b.Context(), token); err != errKidNotYet {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaims is the JSON part of the allow path alone: the header checks and the
// decoding of a verified payload, without the signature (whose cost varies tenfold with
// the key type and drowns the JSON cost in BenchmarkVerify*).
func BenchmarkClaims(b *testing.B) {
	f := setup(b, discoveryNone, func(c *Config) { c.Claims = []string{"email", "groups"} })
	cl := f.claims()
	cl["exp"] = f.clock.Now().Add(time.Hour).Unix()
	cl["email"] = "u@example.com"
	cl["groups"] = []string{"a", "b"}
	token := mint(b, keyRSA(), cl, nil)
	jws, err := jose.ParseSignedCompact(token, f.v.parseAlgs)
	if err != nil {
		b.Fatal(err)
	}
	payload := jws.UnsafePayloadWithoutVerification()
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		id, err := f.v.identity(payload)
		if err != nil || id.Subject != "user-1" {
			b.Fatal(id, err)
		}
	}
}
