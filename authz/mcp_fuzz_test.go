package authz

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzMCPBody: any body is read or refused, never panics; whenever ReadOperations accepts a
// single message, encoding/json (case-insensitive, last duplicate wins: the reader an upstream
// on Go's standard library uses) sees the same method and tool name; a tools/call of a
// configured tool always requires that tool's scopes.
func FuzzMCPBody(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","NAME":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"delete_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"param\u017f":{"name":"delete_file"}}`,
		`[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}},{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"a"}}]`,
		`{"jsonrpc":"2.0","method":"tools/call","params":"oops"}`, `[]`, `null`, `{`, `"str"`, `[1,2]`, `{"method":1}`,
	} {
		f.Add([]byte(s))
	}
	m := &MCPScopes{Tools: map[string][]string{"delete_file": {"files:write"}}, Methods: map[string][]string{"resources/read": {"files:read"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := ReadOperations(body)
		req := &Request{Method: "POST", Body: body, Headers: map[string]string{"content-type": "application/json"}}
		reqOps, _, serr := requestOperations(req, false)
		if (err == nil) != (serr == nil) {
			t.Fatalf("ReadOperations and requestOperations disagree: %v / %v", err, serr)
		}
		var got []string
		for i := range reqOps {
			got = m.opScopes(&reqOps[i], got)
		}
		if err != nil {
			return
		}
		var std struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if len(ops) == 1 && body[0] == '{' && json.Unmarshal(body, &std) == nil {
			if std.Method != ops[0].Method || ops[0].Method == "tools/call" && std.Params.Name != ops[0].Name {
				t.Fatalf("encoding/json reads %q %q, ReadOperations %+v: %q", std.Method, std.Params.Name, ops[0], body)
			}
		}
		for _, op := range ops {
			if op.Method == "tools/call" && op.Name == "delete_file" && !slices.Contains(got, "files:write") {
				t.Fatalf("delete_file call without files:write: %q → %v", body, got)
			}
		}
	})
}
