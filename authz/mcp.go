package authz

import (
	"bytes"
	"encoding/json"
	"strings"
)

// MCPScopes maps MCP JSON-RPC operations to the scopes they need, beyond the resource's own
// required scopes (MCP 2025-11-25 and 2026-07-28 "Scope Challenge Handling": a 403 names
// every scope the operation needs, in one challenge).
type MCPScopes struct {
	// Tools: tools/call by params.name. The key "*" applies to any tool not listed.
	Tools map[string][]string
	// Methods: any JSON-RPC method, e.g. "resources/read", "prompts/get".
	Methods map[string][]string
}

// rpcMessage is the part of a JSON-RPC request that decides scopes.
type rpcMessage struct {
	Method string `json:"method"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

// operationScopes returns the scopes the request's MCP messages need, beyond the resource's
// required scopes, and whether the body was considered at all.
//
// The rule for bodies, documented in the README:
//   - no body, or a body that is not declared JSON: only the resource's scopes apply;
//   - a JSON-RPC message or batch: each message's method scopes, and for tools/call the named
//     tool's scopes (or those of "*"); a batch needs the union;
//   - a body declared JSON that does not parse (malformed, or cut off because it exceeded the
//     proxy's max_request_bytes): fail closed, the request needs every scope any configured
//     operation needs.
func (m *MCPScopes) operationScopes(req *Request) []string {
	if m == nil || len(req.Body) == 0 || !jsonContent(req.Headers["content-type"]) {
		return nil
	}
	body := bytes.TrimLeft(req.Body, " \t\r\n")
	var msgs []rpcMessage
	var err error
	if len(body) > 0 && body[0] == '[' {
		err = json.Unmarshal(body, &msgs)
	} else {
		var one rpcMessage
		err = json.Unmarshal(body, &one)
		msgs = []rpcMessage{one}
	}
	if err != nil {
		return m.all()
	}
	var out []string
	for _, msg := range msgs {
		out = append(out, m.Methods[msg.Method]...)
		if msg.Method == "tools/call" {
			if s, ok := m.Tools[msg.Params.Name]; ok {
				out = append(out, s...)
			} else {
				out = append(out, m.Tools["*"]...)
			}
		}
	}
	return out
}

func (m *MCPScopes) all() []string {
	var out []string
	for _, s := range m.Tools {
		out = append(out, s...)
	}
	for _, s := range m.Methods {
		out = append(out, s...)
	}
	return out
}

func jsonContent(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "application/json") || strings.Contains(ct, "+json")
}

// unionScopes: base first, then extras not already present, in a stable order so the
// challenge for one operation is the same every time.
func unionScopes(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	out := append([]string(nil), base...)
	seen := make(map[string]bool, len(base)+len(extra))
	for _, s := range base {
		seen[s] = true
	}
	var add []string
	for _, s := range extra {
		if !seen[s] {
			seen[s] = true
			add = append(add, s)
		}
	}
	sortStrings(add)
	return append(out, add...)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
