package jwt

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// FuzzMembers holds the hand-written member scanner to encoding/json: for every valid JSON
// object it must see the same members with the same raw values, and nothing may panic.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":"]}"}], "d":"x\"y", "e\u0041":null, "a":true } `,
		`{"x":{"y":{"z":[[],{}]}},"s":"}\\"}`, `[1]`, `{"a":}`, `{"a":1`, `"str"`, `{"a":"\\\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]json.RawMessage
		valid := json.Unmarshal(b, &want) == nil && want != nil
		seen := map[string]string{}
		ok := members(b, func(name, raw []byte) {
			var n string
			if err := json.Unmarshal(append(append([]byte{'"'}, name...), '"'), &n); err != nil && valid {
				t.Fatalf("member name %q does not unquote: %v", name, err)
			}
			seen[n] = string(raw)
		})
		if !valid {
			return // not a JSON object: members may say anything but must not panic
		}
		if !ok {
			t.Fatalf("members refused a valid object %q", b)
		}
		if len(seen) != len(want) {
			t.Fatalf("members saw %q, encoding/json %q", seen, want)
		}
		for k, v := range want {
			if seen[k] != string(v) {
				t.Fatalf("member %q: %q, encoding/json %q", k, seen[k], v)
			}
		}
	})
}

// FuzzVerify: no input panics, and every refusal is in exactly one class.
func FuzzVerify(f *testing.F) {
	fx := setup(f, discoveryNone, func(c *Config) { c.Claims = []string{"email", "groups"} })
	good := mint(f, keyRSA(), fx.claims(), nil)
	f.Add(good)
	f.Add(mint(f, keyEC(), fx.claims(), map[string]any{"crit": []string{"x"}}))
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := fx.v.Verify(t.Context(), token)
		if err == nil {
			if token != good && id.Subject == "" {
				t.Fatalf("accepted a token with no subject")
			}
			return
		}
		inv, unav := errors.Is(err, identity.ErrInvalid), errors.Is(err, identity.ErrUnavailable)
		if inv == unav {
			t.Fatalf("error %q is in %v/%v classes", err, inv, unav)
		}
	})
}
