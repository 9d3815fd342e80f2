package identity

import "testing"

func TestClaimText(t *testing.T) {
	for raw, want := range map[string]string{
		`"u@example.com"`: "u@example.com",
		`"a\u0041"`:       "aA",
		`["g1","g2"]`:     "g1,g2",
		`42`:              "42",
		`-1.5e3`:          "-1.5e3",
		`true`:            "true",
		`false`:           "false",
		`{"a":1}`:         "",
		`null`:            "",
		`["a",1]`:         "",
		`u@example.com`:   "",
		`42abc`:           "",
		``:                "",
		`"unterminated`:   "",
	} {
		got, ok := ClaimText(raw)
		if got != want || ok != (want != "") {
			t.Errorf("ClaimText(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}
