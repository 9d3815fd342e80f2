package authz

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/policy"
)

// Rule narrows access to a resource for the requests it matches. Every rule that matches a
// request applies (a conjunction): adding a rule can only take access away, never grant it,
// and the order of rules decides only which failing rule a denial names. The one exception
// is Public, which lets matching requests through without a token.
//
// A rule matches when each of its non-empty match lists has an entry matching the request
// (entries are globs: "*" matches any run of characters).
type Rule struct {
	Name string

	Methods []string // HTTP methods (exact, upper-case)
	Paths   []string // the request path, decoded and normalised once (cleanPath)

	// MCP match lists: a rule with any of them matches only MCP operations (a POST whose
	// JSON-RPC body, or SEP-2243 headers, name them), each operation of a batch on its own.
	MCPMethods []string // JSON-RPC methods ("tools/call", "resources/*")
	Tools      []string // tools/call by params.name
	Resources  []string // resources/read, /subscribe, /unsubscribe by params.uri
	Prompts    []string // prompts/get by params.name

	// Public: requests the rule matches need no token. Only with Methods and Paths.
	Public bool
	// Scopes the matched request needs beyond the resource's; missing ones get a 403
	// insufficient_scope naming every scope the operation needs (a step-up).
	Scopes []string
	// When is a condition on the caller and the operation; false (or an evaluation error)
	// gives a 403 without insufficient_scope: another token with more scopes would not help.
	When *policy.Program
	// Description is the public error_description of this rule's denials; "" for the
	// generic one.
	Description string
}

// mcpOnly says whether the rule matches MCP operations only.
func (r *Rule) mcpOnly() bool {
	return len(r.MCPMethods)+len(r.Tools)+len(r.Resources)+len(r.Prompts) > 0
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if policy.Glob(p, s) {
			return true
		}
	}
	return false
}

func (r *Rule) matchRequest(method, path string) bool {
	if len(r.Methods) > 0 && !anyGlob(r.Methods, method) {
		return false
	}
	return len(r.Paths) == 0 || anyGlob(r.Paths, path)
}

// matchOp: op is nil for a request that carries no MCP operation.
func (r *Rule) matchOp(op *Operation) bool {
	if !r.mcpOnly() {
		return true
	}
	if op == nil {
		return false
	}
	if len(r.MCPMethods) > 0 && !anyGlob(r.MCPMethods, op.Method) {
		return false
	}
	if len(r.Tools) > 0 && (op.Method != "tools/call" || !anyGlob(r.Tools, op.Name)) {
		return false
	}
	if len(r.Prompts) > 0 && (op.Method != "prompts/get" || !anyGlob(r.Prompts, op.Name)) {
		return false
	}
	if len(r.Resources) > 0 && (nameParam(op.Method) != "uri" || !anyGlob(r.Resources, op.Name)) {
		return false
	}
	return true
}

// compiledRules is a route's rules, prepared once.
type compiledRules struct {
	list []Rule
	// public: the indexes of public rules, tried before a token is looked at.
	public []int
	// readsOps: some rule needs the request's MCP operations.
	readsOps bool
	// readsArgs: some condition reads mcp.arguments.
	readsArgs bool
	// headers: the request headers conditions read (allHeaders: any of them).
	headers    []string
	allHeaders bool
	// denied[i] is rule i's 403 for a failed condition.
	denied []*Decision
}

func (rt *route) compileRules() error {
	cr := &rt.rules
	cr.list = rt.Rules
	for i := range rt.Rules {
		r := &rt.Rules[i]
		if r.Public {
			if r.mcpOnly() || len(r.Scopes) > 0 || r.When != nil {
				return fmt.Errorf("rule %q: a public rule matches on methods and paths only", r.Name)
			}
			cr.public = append(cr.public, i)
		}
		if r.mcpOnly() {
			cr.readsOps = true
		}
		for j, p := range r.Paths {
			if !strings.Contains(p, "*") {
				c, err := configPath(p)
				if err != nil {
					return fmt.Errorf("rule %q: path %q: %v", r.Name, p, err)
				}
				r.Paths[j] = c
			}
		}
		if r.When != nil && r.When.UsesArguments {
			cr.readsArgs = true
		}
		if r.When != nil && r.When.UsesMCP {
			cr.readsOps = true
		}
		if r.When != nil {
			cr.allHeaders = cr.allHeaders || r.When.AllHeaders
			for _, h := range r.When.Headers {
				if !slices.Contains(cr.headers, h) {
					cr.headers = append(cr.headers, h)
				}
			}
		}
		desc := r.Description
		if desc == "" {
			desc = descPolicy
		}
		cr.denied = append(cr.denied, &Decision{
			Status: http.StatusForbidden, Reason: ReasonPolicy, Resource: rt.Name,
			Headers: rt.policyHeaders(), Body: errorBody("access_denied", desc),
		})
	}
	return nil
}

// policyHeaders: a policy denial carries no challenge. WWW-Authenticate on a 403 with
// insufficient_scope sends MCP clients into a step-up, and without it names nothing the client
// could do: the token is fine, the caller is not allowed.
func (rt *route) policyHeaders() []Header {
	h := []Header{hdrJSON, hdrNoStore}
	if rt.corsAnyOrigin {
		h = append(h, hdrCORSOrigin)
	}
	return h
}

// publicByRule says whether a public rule lets the request through without a token.
func (rt *route) publicByRule(method, path string) bool {
	for _, i := range rt.rules.public {
		if rt.rules.list[i].matchRequest(method, path) {
			return true
		}
	}
	return false
}

// opView is what authorize knows of a request once its operations are read.
type opView struct {
	method, path string
	ops          []Operation
	hasOps       bool
	params       map[string]string
}

// ruleScopes returns the scopes the matched rules add for op, and the description of the
// first matched rule with scopes that has one.
func (rt *route) ruleScopes(v *opView, op *Operation, out []string) ([]string, string) {
	desc := ""
	for i := range rt.rules.list {
		r := &rt.rules.list[i]
		if r.Public || len(r.Scopes) == 0 || !r.matchRequest(v.method, v.path) || !r.matchOp(op) {
			continue
		}
		out = append(out, r.Scopes...)
		if desc == "" {
			desc = r.Description
		}
	}
	return out, desc
}

// ruleConditions evaluates the conditions of the rules matching op; it returns the denial of
// the first that fails, nil when all hold.
func (rt *route) ruleConditions(v *opView, op *Operation, req *Request, id *identity.Identity) (*Decision, error) {
	var in *policy.Input
	for i := range rt.rules.list {
		r := &rt.rules.list[i]
		if r.When == nil || !r.matchRequest(v.method, v.path) || !r.matchOp(op) {
			continue
		}
		if in == nil {
			in = &policy.Input{
				Claims: id.Claims, Scopes: id.Scopes, ClientID: id.ClientID, Subject: id.Subject,
				Issuer: id.Issuer, Params: v.params,
				HTTPMethod: v.method, Path: v.path, Headers: req.Headers,
			}
			if op != nil {
				in.Method, in.Name, in.Arguments = op.Method, op.Name, op.Arguments
			}
		}
		ok, err := r.When.Eval(in)
		if err != nil {
			return rt.rules.denied[i], fmt.Errorf("rule %q: condition failed to evaluate: %w", r.Name, err)
		}
		if !ok {
			return rt.rules.denied[i], fmt.Errorf("rule %q: condition is false", r.Name)
		}
	}
	return nil, nil
}

// repeatedHeaderRead: a header a condition reads arrived more than once, so the upstream may
// act on another copy than the one the condition saw.
func (cr *compiledRules) repeatedHeaderRead(req *Request) error {
	for _, n := range req.Repeated {
		if cr.allHeaders || slices.Contains(cr.headers, n) {
			return fmt.Errorf("%w: header %s, which a rule reads, repeated", errOperation, n)
		}
	}
	return nil
}

// mcpParams reads the SEP-2243 Mcp-Param-* headers (custom parameter headers mirrored from
// tool arguments), names lower-case without the prefix. A repeated one is ambiguous.
func mcpParams(req *Request) (map[string]string, error) {
	var out map[string]string
	for n, v := range req.Headers {
		name, ok := strings.CutPrefix(n, "mcp-param-")
		if !ok {
			continue
		}
		for _, r := range req.Repeated {
			if r == n {
				return nil, fmt.Errorf("%w: header %s repeated", errOperation, n)
			}
		}
		d, err := decodeHeaderValue(v)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = d
	}
	return out, nil
}
