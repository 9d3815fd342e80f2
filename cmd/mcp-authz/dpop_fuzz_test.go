package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A key file is answered with a key or an error naming the file, never a panic.
func FuzzLoadDPoPKey(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","d":"AAAA"}`))
	f.Add([]byte(`{"kty":"oct","k":"AAAA"}`))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "k")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := loadDPoPKey(p)
		switch {
		case err != nil && !strings.Contains(err.Error(), p):
			t.Fatalf("error without the file name: %v", err)
		case err == nil && (k.key == nil || k.alg == ""):
			t.Fatal("a key without a signer or an algorithm")
		}
	})
}
