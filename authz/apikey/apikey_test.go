package apikey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

func digest(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }

func TestVerify(t *testing.T) {
	v, err := New(Config{Keys: []Key{
		{SHA256: digest("alpha"), Subject: "a", Scopes: []string{"mcp:tools"}},
		{SHA256: strings.ToUpper(digest("beta")), Subject: "b", ClientID: "cb"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), "beta")
	if err != nil || id.Subject != "b" || id.ClientID != "cb" || id.Source != identity.SourceAPIKey {
		t.Errorf("beta: %+v %v", id, err)
	}
	if id, err := v.Verify(context.Background(), "alpha"); err != nil || id.Subject != "a" {
		t.Errorf("alpha: %+v %v", id, err)
	}
	for _, bad := range []string{"", "alph", "alphaa", digest("alpha")} {
		if _, err := v.Verify(context.Background(), bad); !errors.Is(err, identity.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, keys := range [][]Key{
		{{SHA256: "alpha", Subject: "a"}},
		{{SHA256: digest("x")[:62], Subject: "a"}},
		{{SHA256: digest("x"), Subject: "a"}, {SHA256: digest("x"), Subject: "b"}},
	} {
		if _, err := New(Config{Keys: keys}); err == nil {
			t.Errorf("accepted %+v", keys)
		}
	}
}

func BenchmarkVerify100Keys(b *testing.B) {
	var keys []Key
	for i := range 100 {
		keys = append(keys, Key{SHA256: digest(fmt.Sprint("key-", i)), Subject: fmt.Sprint(i)})
	}
	v, _ := New(Config{Keys: keys})
	b.ReportAllocs()
	for b.Loop() {
		if id, err := v.Verify(context.Background(), "key-99"); err != nil || id.Subject != "99" {
			b.Fatal(id, err)
		}
	}
}
