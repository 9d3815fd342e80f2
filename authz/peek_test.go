package authz

import (
	"encoding/base64"
	"testing"
)

func TestPeekIssuerStrict(t *testing.T) {
	tok := func(payload string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	for _, tc := range []struct {
		payload string
		iss     string
		ok      bool
	}{
		{`{"iss":"https://as.example","sub":"a"}`, "https://as.example", true},
		{`{"ISS":"https://as.example"}`, "", false}, // names match exactly
		{`{"iss":"https://a.example","ISS":"https://b.example"}`, "", false},
		{`{"iss":"https://a.example","iss":"https://b.example"}`, "", false},
		{`{"iss":"https://a.example","\u0131ss":"x","\u017fub":"y","sub":"z"}`, "", false}, // ſub and sub fold together
		{"{\"iss\":\"https://a.example\xff\"}", "", false},
		{`{"iss":"https://a.example"}{"iss":"https://b.example"}`, "", false},
	} {
		iss, ok := peekIssuer(tok(tc.payload))
		if iss != tc.iss || ok != tc.ok {
			t.Errorf("peekIssuer(%s) = %q, %v; want %q, %v", tc.payload, iss, ok, tc.iss, tc.ok)
		}
	}
}
