package jwt

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
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

// FuzzHeader signs a good claim set under a fuzzed protected header with the issuer's real
// RS256 key, so only the header decides. A token may pass only if its header is a JSON object
// naming exactly RS256, typed at+jwt, without crit, and with no kid or the signing key's.
func FuzzHeader(f *testing.F) {
	fx := setup(f, discoveryNone, nil)
	for _, h := range []string{
		`{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}`,
		`{"alg":"RS256","typ":"application/at+jwt"}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"rsa-1","crit":["exp"],"exp":1}`,
		`{"alg":"RS256","typ":"at+jwt","kid":"rsa-1","jku":"https://a.example/j","x5u":"https://a.example/c"}`,
		`{"alg":"none","typ":"at+jwt"}`, `{"alg":"HS256","typ":"at+jwt","kid":"rsa-1"}`,
		`{"alg":"RS256","alg":"none","typ":"at+jwt"}`, `{"alg":"PS256","typ":"at+jwt","kid":"rsa-1"}`,
		`{"alg":"RS256","typ":"JWT","kid":"../../dev/null"}`, `[]`, ``, `{"alg":"RS256","typ":"at+jwt","kid":"rsa-1","b64":false}`,
	} {
		f.Add([]byte(h))
	}
	genKeys()
	payload := base64.RawURLEncoding.EncodeToString([]byte(mustJSONf(fx.claims())))
	f.Fuzz(func(t *testing.T, header []byte) {
		input := base64.RawURLEncoding.EncodeToString(header) + "." + payload
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		_, err = fx.v.Verify(t.Context(), input+"."+base64.RawURLEncoding.EncodeToString(sig))
		if err != nil {
			if errors.Is(err, identity.ErrInvalid) == errors.Is(err, identity.ErrUnavailable) {
				t.Fatalf("error %q is in neither or both classes", err)
			}
			return
		}
		var h map[string]any
		if json.Unmarshal(header, &h) != nil {
			t.Fatalf("accepted a header that is not a JSON object: %q", header)
		}
		typ, _ := h["typ"].(string)
		kid, hasKid := h["kid"]
		_, crit := h["crit"]
		switch {
		case h["alg"] != "RS256":
			t.Fatalf("accepted alg %v", h["alg"])
		case !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt"):
			t.Fatalf("accepted typ %v", h["typ"])
		case crit:
			t.Fatalf("accepted a crit header: %q", header)
		case hasKid && kid != "rsa-1" && kid != "": // an empty kid is no hint: every RS256 key is tried
			t.Fatalf("accepted kid %v for key rsa-1", kid)
		}
	})
}

func mustJSONf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
