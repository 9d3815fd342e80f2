package authz

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzMCPBody: any body parses or fails closed, never panics; a parseable tools/call of a
// configured tool always requires that tool's scopes.
func FuzzMCPBody(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`,
		`[{"method":"tools/call","params":{"name":"x"}},{"method":"resources/read"}]`,
		`{"method":"tools/call","params":"oops"}`, `[]`, `null`, `{`, `"str"`, `[1,2]`, `{"method":1}`,
	} {
		f.Add([]byte(s))
	}
	m := &MCPScopes{Tools: map[string][]string{"delete_file": {"files:write"}}, Methods: map[string][]string{"resources/read": {"files:read"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &Request{Body: body, Headers: map[string]string{"content-type": "application/json"}}
		got := m.operationScopes(req)
		var one rpcMessage
		if err := json.Unmarshal(body, &one); err == nil && one.Method == "tools/call" && one.Params.Name == "delete_file" && !slices.Contains(got, "files:write") {
			t.Fatalf("delete_file call without files:write: %q → %v", body, got)
		}
	})
}
