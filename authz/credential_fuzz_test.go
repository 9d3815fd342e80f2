package authz

import (
	"context"
	"strings"
	"testing"
)

// FuzzCredential feeds arbitrary Authorization headers and query strings through extraction
// and the whole Check. Properties: no panic; a token is only ever extracted when it is a
// b64token; nothing but "good" is ever allowed; every 401 and 403 carries a Bearer challenge.
func FuzzCredential(f *testing.F) {
	for _, s := range []string{
		"", "Bearer good", "bearer good", "BEARER   good  ", "Bearer", "Bearer ", "Bearer a b",
		"Bearer good, Bearer good", "Bearer good,Basic x", "Basic dXNlcjpwdw==", "DPoP good",
		"Bearer t\u00f6ken", "Bearer =abc", "Bearer abc==", "Bearer abc=d", "Bearer\tgood",
		"Bearergood", ",", "Bearer good\x00", "Bearer " + strings.Repeat("A", 20000),
	} {
		f.Add(s, "", true)
	}
	f.Add("", "access_token=good", false)
	f.Add("Bearer good", "a=1&access%5ftoken=x", true)
	f.Add("Bearer good", "%zz=&&=", true)

	a := testAuthorizer(f, nil)
	f.Fuzz(func(t *testing.T, authz, query string, present bool) {
		tok, res := extractBearer(authz, present, query)
		if res == credToken && (!isB64Token(tok) || len(tok) > maxTokenLen) {
			t.Fatalf("extracted a non-b64token %q from %q", tok, authz)
		}
		if res != credToken && tok != "" {
			t.Fatalf("result %d with a token", res)
		}
		h := map[string]string{}
		if present {
			h["authorization"] = authz
		}
		path := "/mcp"
		if query != "" {
			path += "?" + query
		}
		d := a.Check(context.Background(), &Request{Method: "POST", Host: "mcp.example.com", Path: path, Headers: h})
		if d.Allow && d.Reason == ReasonAllow && tok != "good" && tok != "admin" && tok != "upperaud" && tok != "badheader" {
			t.Fatalf("allowed token %q", tok)
		}
		if (d.Status == 401 || d.Status == 403) && !strings.HasPrefix(headerOf(d, "www-authenticate"), "Bearer ") {
			t.Fatalf("%d without Bearer challenge", d.Status)
		}
	})
}
