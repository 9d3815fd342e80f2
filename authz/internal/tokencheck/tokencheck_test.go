package tokencheck

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

func TestListsMeanOneThing(t *testing.T) {
	var v struct {
		Aud   Audience `json:"aud"`
		Scope Scope    `json:"scope"`
		Scp   Scope    `json:"scp"`
	}
	if err := json.Unmarshal([]byte(`{"aud":"a b","scope":"x y x","scp":["y z","w"]}`), &v); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Aud, []string{"a b"}) || !slices.Equal(v.Scope, []string{"x", "y"}) || !slices.Equal(v.Scp, []string{"y", "z", "w"}) {
		t.Errorf("%q %q %q", v.Aud, v.Scope, v.Scp)
	}
	for _, bad := range []string{`{"aud":5}`, `{"scope":{}}`, `{"aud":[1]}`} {
		if json.Unmarshal([]byte(bad), &v) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestTimes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	f := func(d time.Duration) *float64 { x := float64(now.Add(d).Unix()); return &x }
	bad := -1.0
	e := TimeErrors{Malformed: errors.New("m"), Expired: errors.New("e"), NotYet: errors.New("n"), IssuedFuture: errors.New("i")}
	for _, c := range []struct {
		t    Times
		want error
	}{
		{Times{Exp: f(time.Minute)}, nil},
		{Times{Exp: f(-31 * time.Second)}, e.Expired},
		{Times{Exp: f(-time.Second)}, nil}, // within the skew
		{Times{Exp: &bad}, e.Malformed},
		{Times{Nbf: f(time.Minute)}, e.NotYet},
		{Times{Nbf: f(20 * time.Second)}, nil}, // within the skew
		{Times{Iat: f(time.Minute)}, e.IssuedFuture},
	} {
		if _, _, err := c.t.Check(now, 30*time.Second, e); err != c.want {
			t.Errorf("%+v: %v, want %v", c.t, err, c.want)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	inv := Invalid(identity.ClassExpired, "x")
	if !errors.Is(inv, identity.ErrInvalid) || inv.DenialClass() != identity.ClassExpired {
		t.Error(inv)
	}
	cause := errors.New("dial")
	un := Unavailable("y", cause)
	if !errors.Is(un, identity.ErrUnavailable) || !errors.Is(un, cause) || un.DenialClass() != identity.ClassUnavailable {
		t.Error(un)
	}
	if un.WithClass(identity.ClassCredentials).DenialClass() != identity.ClassCredentials {
		t.Error("class not set")
	}
}
