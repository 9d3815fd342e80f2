package policy

import "testing"

// FuzzEval: hostile claim text, tool arguments and header values never crash an evaluation,
// and a condition either holds, fails, or errs (which denies).
func FuzzEval(f *testing.F) {
	progs := []*Program{}
	for _, src := range []string{
		`"finance" in claims.groups && mcp.arguments.amount <= 1000`,
		`request.path.startsWith("/t/" + claims.tenant + "/")`,
		`claims.?level.orValue(0) > 2 || has(mcp.params.region)`,
		`claims.groups.exists(g, g.matches("^fin.*"))`,
		`request.headers["x-tenant"] == claims.tenant`,
	} {
		p, err := Compile(src)
		if err != nil {
			f.Fatal(err)
		}
		progs = append(progs, p)
	}
	f.Add(`["finance"]`, `"acme"`, `{"amount":5}`, "acme", "/t/acme/x")
	f.Add(`[[[[[[[[[[1]]]]]]]]]]`, `null`, `{"amount":1e400}`, "", "")
	f.Add(`{"a":`, `"\ud800"`, `[1,2`, "\x00", "/t/")
	f.Add(`[1,"a",{"b":[]}]`, `12345678901234567890`, `{"amount":"1000"}`, "x", "/t/x/")
	f.Fuzz(func(t *testing.T, groups, tenant, args, hdr, path string) {
		for _, p := range progs {
			in := &Input{
				Claims:    map[string]string{"groups": groups, "tenant": tenant, "level": tenant},
				Arguments: []byte(args), Params: map[string]string{"region": hdr},
				Path: path, Headers: map[string]string{"x-tenant": hdr},
			}
			p.Eval(in)
		}
	})
}
