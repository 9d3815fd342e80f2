package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	for src, want := range map[string]string{
		``:                              "empty",
		`claims.groups.`:                "Syntax error",
		`"finance" in claim.groups`:     "undeclared reference",
		`claims.tenant`:                 "",
		`subject`:                       "must give a bool",
		`claims[request.path] == "x"`:   "constant names",
		`claims.all(k, k == "x")`:       "constant names",
		`size(claims) > 2`:              "constant names",
		`1 + "a" == 2`:                  "no matching overload",
		strings.Repeat("a", 5000):       "longer than",
		`subject.startsWith(1)`:         "no matching overload",
		`[1].all(claims, claims == 1)`:  "constant names",
		`request.headers["x"] == true `: "",
	} {
		_, err := Compile(src)
		if want == "" {
			if err != nil {
				t.Errorf("Compile(%q): %v", src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%q) = %v, want an error with %q", src, err, want)
		}
	}
}

func TestClaimsNamed(t *testing.T) {
	p, err := Compile(`"finance" in claims.groups && claims["tenant"] == request.headers["x-tenant"] && has(claims.role) && "dept" in claims && claims.?level.orValue(0) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dept", "groups", "level", "role", "tenant"}; !slices.Equal(p.Claims, want) {
		t.Errorf("Claims = %v, want %v", p.Claims, want)
	}
	if p.UsesArguments || p.UsesScopes {
		t.Errorf("UsesArguments %v, UsesScopes %v", p.UsesArguments, p.UsesScopes)
	}
	q, _ := Compile(`mcp.arguments.amount < 100 && "mcp:admin" in scopes`)
	if !q.UsesArguments || !q.UsesScopes {
		t.Errorf("UsesArguments %v, UsesScopes %v", q.UsesArguments, q.UsesScopes)
	}
}

func TestEval(t *testing.T) {
	in := func() *Input {
		return &Input{
			Claims:   map[string]string{"groups": `["finance","ops"]`, "tenant": `"acme"`, "level": `3`, "obj": `{"a":{"b":true}}`},
			Scopes:   []string{"mcp:tools"},
			ClientID: "c1", Subject: "alice", Issuer: "https://as",
			Method: "tools/call", Name: "refund", Arguments: []byte(`{"amount":250,"currency":"EUR"}`),
			Params:     map[string]string{"region": "eu"},
			HTTPMethod: "POST", Path: "/t/acme/mcp", Headers: map[string]string{"x-tenant": "acme"},
		}
	}
	for src, want := range map[string]bool{
		`"finance" in claims.groups`:                                     true,
		`"hr" in claims.groups`:                                          false,
		`claims.tenant == request.headers["x-tenant"]`:                   true,
		`request.path.startsWith("/t/" + claims.tenant + "/")`:           true,
		`claims.level >= 3`:                                              true,
		`claims.obj.a.b`:                                                 true,
		`mcp.method == "tools/call" && mcp.name == "refund"`:             true,
		`mcp.arguments.amount < 100`:                                     false,
		`mcp.arguments.currency == "EUR"`:                                true,
		`mcp.params.region == "eu"`:                                      true,
		`"mcp:tools" in scopes && client_id == "c1"`:                     true,
		`subject == "alice" && issuer == "https://as"`:                   true,
		`request.method == "POST"`:                                       true,
		`has(claims.role) && claims.role == "admin"`:                     false,
		`claims.?role.orValue("none") == "none"`:                         true,
		`"role" in claims`:                                               false,
		`has(request.headers.authorization)`:                             false,
		`claims.groups.exists(g, g.startsWith("fin"))`:                   true,
		`mcp.arguments.amount * 2 == 500`:                                true,
		`claims.tenant.lowerAscii() == "acme"`:                           true,
		`size(claims.groups) == 2 && claims.groups[1] == "ops"`:          true,
		`request.headers["x-tenant"] == claims.tenant && mcp.name != ""`: true,
	} {
		p, err := Compile(src)
		if err != nil {
			t.Errorf("Compile(%q): %v", src, err)
			continue
		}
		got, err := p.Eval(in())
		if err != nil {
			t.Errorf("Eval(%q): %v", src, err)
			continue
		}
		if got != want {
			t.Errorf("Eval(%q) = %v, want %v", src, got, want)
		}
	}
}

// A condition that cannot be evaluated is an error, which the caller turns into a denial.
func TestEvalErrorsDeny(t *testing.T) {
	big := "[" + strings.Repeat(`"x",`, 20000) + `"y"]`
	for src, claims := range map[string]map[string]string{
		`claims.role == "admin"`:                    {},                  // absent claim
		`claims.level > 2`:                          {"level": `"high"`}, // wrong type
		`claims.groups.exists(g, g.contains("yy"))`: {"groups": big},     // over the cost limit
		`mcp.arguments.amount < 100`:                {},                  // no such argument
		`claims.groups.map(g, g + g).size() > 0`:    {"groups": big},
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		ok, err := p.Eval(&Input{Claims: claims})
		if err == nil {
			t.Errorf("Eval(%q) = %v, want an error", src, ok)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"refund", "refund", true},
		{"refund", "refunds", false},
		{"admin_*", "admin_delete", true},
		{"admin_*", "admin_", true},
		{"admin_*", "xadmin_", false},
		{"file:///secrets/*", "file:///secrets/a/b.txt", true},
		{"file:///secrets/*", "file:///public/secrets/a", false},
		{"*", "", true},
		{"*.txt", "a/b.txt", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{strings.Repeat("*a", 20) + "b", strings.Repeat("a", 200), false},
	} {
		if got := Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestHeadersAndMCPNamed(t *testing.T) {
	p, _ := Compile(`request.headers["X-Tenant"] == "a" && has(request.headers.origin) && "x-b" in request.headers`)
	if want := []string{"origin", "x-b", "x-tenant"}; !slices.Equal(p.Headers, want) || p.AllHeaders || p.UsesMCP {
		t.Errorf("Headers %v AllHeaders %v UsesMCP %v", p.Headers, p.AllHeaders, p.UsesMCP)
	}
	q, _ := Compile(`request.headers.exists(h, h.startsWith("x-")) && mcp.name != "refund"`)
	if !q.AllHeaders || !q.UsesMCP {
		t.Errorf("AllHeaders %v UsesMCP %v", q.AllHeaders, q.UsesMCP)
	}
}

func TestDecodeJSON(t *testing.T) {
	for raw, want := range map[string]string{
		`"a\u0041"`:                 "aA",
		`["x",1,1.5,true,null,{}]`:  "[x 1 1.5 true <nil> map[]]",
		`{"a":{"b":[1,2]},"c":"d"}`: "map[a:map[b:[1 2]] c:d]",
		`9007199254740993`:          "9007199254740992",
		`1e400`:                     "<nil>",
		`[1,2`:                      "<nil>",
		`1 2`:                       "<nil>",
		``:                          "<nil>",
		strings.Repeat("[", 65) + strings.Repeat("]", 65): "<nil>",
		strings.Repeat("[", 60) + strings.Repeat("]", 60): strings.Repeat("[", 60) + strings.Repeat("]", 60),
	} {
		if got := fmt.Sprint(decodeJSON([]byte(raw))); got != want {
			t.Errorf("decodeJSON(%.40q) = %.70s, want %.70s", raw, got, want)
		}
	}
}

// One Input shared by the rules of a Check: each program sees the arguments it reads, decoded
// member by member when it names them, whole otherwise.
func TestArgumentsDecodedAsNeeded(t *testing.T) {
	in := &Input{Method: "tools/call", Name: "x", Arguments: []byte(`{"a":1,"b":{"c":[1,2]},"d":"x"}`)}
	for _, c := range []struct {
		src  string
		want bool
	}{
		{`mcp.arguments.a == 1`, true},
		{`has(mcp.arguments.d) && mcp.arguments.d == "x"`, true},
		{`"b" in mcp.arguments && mcp.arguments["b"].c[1] == 2`, true},
		{`size(mcp.arguments) == 3`, true},
		{`mcp.arguments.a == 1 && !has(mcp.arguments.zz)`, true},
	} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Eval(in)
		if err != nil || got != c.want {
			t.Errorf("%s = %v, %v", c.src, got, err)
		}
	}
	p, _ := Compile(`mcp.arguments.a == 1 && mcp.arguments["d"] == "x" && "b" in mcp.arguments`)
	if slices.Sort(p.ArgKeys); !slices.Equal(p.ArgKeys, []string{"a", "b", "d"}) || p.AllArgs {
		t.Errorf("ArgKeys %v AllArgs %v", p.ArgKeys, p.AllArgs)
	}
	q, _ := Compile(`mcp.arguments.exists(k, k == "a")`)
	if !q.AllArgs {
		t.Error("a comprehension over the arguments must decode them all")
	}
}
