package jwt

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

type attack struct {
	Name      string         `json:"name"`
	Header    string         `json:"header"`
	Claims    map[string]any `json:"claims"`
	RawClaims string         `json:"rawClaims"`
	Sign      string         `json:"sign"`
	Token     string         `json:"token"`
	Want      string         `json:"want"`
}

// TestAttackCorpus replays testdata/attacks.json: every attack token is refused, in the class
// the file names, and none is ever allowed.
func TestAttackCorpus(t *testing.T) {
	raw, err := os.ReadFile("testdata/attacks.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus struct {
		Attacks []attack `json:"attacks"`
	}
	if err := json.Unmarshal(raw, &corpus); err != nil {
		t.Fatalf("testdata/attacks.json: %v", err)
	}
	if len(corpus.Attacks) < 50 {
		t.Fatalf("only %d attacks in the corpus", len(corpus.Attacks))
	}
	f := setup(t, discoveryNone, nil)
	// The materializer is checked by the one entry that must pass: a good token built the
	// same way. Without it, a broken signer would make every attack "refused".
	good := materialize(t, f, attack{Header: `{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}`, Sign: "rsa-1"})
	if _, err := f.v.Verify(t.Context(), good); err != nil {
		t.Fatalf("the corpus's good token is refused: %v", err)
	}
	for _, a := range corpus.Attacks {
		t.Run(a.Name, func(t *testing.T) {
			token := materialize(t, f, a)
			id, err := f.v.Verify(t.Context(), token)
			if err == nil {
				t.Fatalf("ALLOWED an attack token (identity %+v)", id)
			}
			want := map[string]error{"invalid": identity.ErrInvalid, "unavailable": identity.ErrUnavailable}[a.Want]
			if want == nil {
				t.Fatalf("want %q: use invalid or unavailable", a.Want)
			}
			if !errors.Is(err, want) {
				t.Errorf("refused as %q, want class %s", err, a.Want)
			}
			if len(token) > 8 && strings.Contains(err.Error(), token) {
				t.Error("the error carries the token")
			}
		})
	}
}

var nowExpr = regexp.MustCompile(`\$now([+-]\d+)?`)

// materialize builds a's token against fixture f.
func materialize(t *testing.T, f *fixture, a attack) string {
	t.Helper()
	now := f.clock.Now().Unix()
	expand := func(s string) string {
		s = strings.ReplaceAll(s, "$ISS", strings.ToUpper(f.is.URL))
		s = strings.ReplaceAll(s, "$iss", f.is.URL)
		s = strings.ReplaceAll(s, "$deep", strings.Repeat("[", 20000)+strings.Repeat("]", 20000))
		s = strings.ReplaceAll(s, "$evil-jwk", mustJSON(t, jose.JSONWebKey{Key: evilRSA.Public()}))
		return nowExpr.ReplaceAllStringFunc(s, func(m string) string {
			d, _ := strconv.ParseInt(strings.TrimPrefix(m, "$now"), 10, 64)
			return strconv.FormatInt(now+d, 10)
		})
	}
	if a.Token != "" {
		if a.Token == "$long" {
			return strings.Repeat("eyJh", 8<<10)
		}
		return a.Token
	}
	var payload string
	if a.RawClaims != "" {
		payload = expand(a.RawClaims)
	} else {
		cl := f.claims()
		for k, v := range a.Claims {
			switch s, _ := v.(string); {
			case v == nil:
				delete(cl, k)
			case s == "$huge":
				cl[k] = strings.Repeat("A", 256<<10)
			case strings.HasPrefix(s, "$now"):
				cl[k], _ = strconv.ParseInt(expand(s), 10, 64)
			case strings.HasPrefix(s, "$"):
				cl[k] = expand(s)
			default:
				if l, ok := v.([]any); ok && len(l) == 1 && l[0] == "$iss" {
					v = []any{f.is.URL}
				}
				cl[k] = v
			}
		}
		payload = mustJSON(t, cl)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(expand(a.Header))) + "." + b64([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch a.Sign {
	case "rsa-1", "evil":
		k := rsaKey
		if a.Sign == "evil" {
			k = evilRSA
		}
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = s
	case "hs256-pem", "hs256-n":
		key := rsaKey.N.Bytes()
		if a.Sign == "hs256-pem" {
			der, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			key = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case "ec-zero":
		sig = make([]byte, 64)
	case "copy":
		good := mint(t, keyRSA(), f.claims(), nil)
		return input + good[strings.LastIndexByte(good, '.'):]
	case "garbage":
		sig = []byte("not a signature at all, but long enough to look like one....")
	case "none":
	default:
		t.Fatalf("unknown sign %q", a.Sign)
	}
	return input + "." + b64(sig)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
