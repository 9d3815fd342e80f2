package config

import (
	"fmt"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/policy"
)

// Rule narrows access to a resource for the requests it matches (authz.Rule has the
// semantics: every matching rule applies; public rules let requests through without a token).
type Rule struct {
	Name  string    `yaml:"name"`
	Match RuleMatch `yaml:"match"`
	// Public: matching requests need no token (match on methods and paths only).
	Public bool `yaml:"public,omitempty"`
	// Scopes the matched requests need beyond the resource's (a 403 step-up when missing).
	Scopes []string `yaml:"scopes,omitempty"`
	// When is a CEL condition (authz/policy documents its variables); false denies with a 403
	// that does not ask for more scopes.
	When string `yaml:"when,omitempty"`
	// ErrorDescription is the public error_description of this rule's denials.
	ErrorDescription string `yaml:"error_description,omitempty"`

	prog *policy.Program // compiled by Validate
}

// RuleMatch: every non-empty list must have an entry matching the request; entries are globs
// where * matches any run of characters.
type RuleMatch struct {
	Methods    []string `yaml:"methods,omitempty"`     // HTTP methods
	Paths      []string `yaml:"paths,omitempty"`       // request paths, below the resource's path_prefix
	MCPMethods []string `yaml:"mcp_methods,omitempty"` // JSON-RPC methods
	Tools      []string `yaml:"tools,omitempty"`       // tools/call names
	Resources  []string `yaml:"resources,omitempty"`   // resources/read (subscribe, unsubscribe) URIs
	Prompts    []string `yaml:"prompts,omitempty"`     // prompts/get names
}

func (m *RuleMatch) mcp() bool {
	return len(m.MCPMethods)+len(m.Tools)+len(m.Resources)+len(m.Prompts) > 0
}

// validateRules checks resources[i].rules and compiles their conditions.
func validateRules(bad func(string, string, ...any), key string, r *Resource) {
	names := map[string]bool{}
	for j := range r.Rules {
		rule := &r.Rules[j]
		rk := fmt.Sprintf("%s.rules[%d]", key, j)
		switch {
		case rule.Name == "":
			bad(rk+".name", "required: a name for logs and denials, e.g. refund-finance-only")
		case names[rule.Name]:
			bad(rk+".name", "%q is used by another rule of this resource", rule.Name)
		}
		names[rule.Name] = true
		m := &rule.Match
		for k, meth := range m.Methods {
			if meth == "" || strings.ToUpper(meth) != meth || strings.ContainsAny(meth, " \t\",") {
				bad(fmt.Sprintf("%s.match.methods[%d]", rk, k), "%q: an HTTP method in upper case, e.g. POST", meth)
			}
		}
		for k, p := range m.Paths {
			if !strings.HasPrefix(p, "/") {
				bad(fmt.Sprintf("%s.match.paths[%d]", rk, k), "%q must start with /", p)
			} else if lit, _, star := strings.Cut(p, "*"); !underPrefix(lit, r.PathPrefix) && !(star && strings.HasPrefix(r.PathPrefix, lit)) {
				bad(fmt.Sprintf("%s.match.paths[%d]", rk, k), "%q is not below the resource's path_prefix %q: it could never match", p, r.PathPrefix)
			}
		}
		for _, l := range []struct {
			name string
			list []string
		}{{"mcp_methods", m.MCPMethods}, {"tools", m.Tools}, {"resources", m.Resources}, {"prompts", m.Prompts}} {
			for k, v := range l.list {
				if v == "" {
					bad(fmt.Sprintf("%s.match.%s[%d]", rk, l.name, k), "empty: use * for any")
				}
			}
		}
		for k, sc := range rule.Scopes {
			if !scopeTokenOK(sc) || sc == "offline_access" {
				bad(fmt.Sprintf("%s.scopes[%d]", rk, k), "%q is not a scope a resource can require", sc)
			}
		}
		if rule.When != "" {
			p, err := policy.Compile(rule.When)
			if err != nil {
				bad(rk+".when", "%s", strings.ReplaceAll(err.Error(), "\n", "\n    "))
			}
			rule.prog = p
		}
		if rule.Public {
			if m.mcp() || len(rule.Scopes) > 0 || rule.When != "" {
				bad(rk+".public", "a public rule matches on match.methods and match.paths only, and has no scopes or when: it lets requests through without a token")
			}
			if len(m.Methods)+len(m.Paths) == 0 {
				bad(rk+".public", "a public rule needs match.methods or match.paths: without them the whole resource would be public")
			}
		} else if len(rule.Scopes) == 0 && rule.When == "" {
			bad(rk, "a rule needs scopes, when, or public: true; as written it changes nothing")
		}
		if d := rule.ErrorDescription; d != "" && !descriptionOK(d) {
			bad(rk+".error_description", "use printable ASCII without quotes or backslashes (RFC 6750 §3), at most 200 characters")
		}
	}
}

func underPrefix(p, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	prefix = strings.TrimSuffix(prefix, "/")
	// p is the literal part before any "*": "/mcp/admin*" is below "/mcp" as "/mcp/admin" is.
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// descriptionOK: RFC 6750 §3 error_description characters (%x20-21 / %x23-5B / %x5D-7E).
func descriptionOK(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// RuleNotes are check-config's advice on valid rules that may not do what their author means.
func (c *Config) RuleNotes() []string {
	var out []string
	for i, r := range c.Resources {
		for j, rule := range r.Rules {
			if rule.prog != nil && rule.prog.UsesScopes {
				out = append(out, fmt.Sprintf("resources[%d].rules[%d].when reads scopes: a failed condition is a 403 without a step-up; list scopes a client can obtain under scopes: instead, so clients are asked for them", i, j))
			}
		}
	}
	return out
}

func authzRules(rules []Rule) []authz.Rule {
	var out []authz.Rule
	for _, r := range rules {
		if r.When != "" && r.prog == nil {
			// A Config that Validate has not seen (built in code): compile here, and let a
			// condition that does not compile deny rather than vanish.
			p, err := policy.Compile(r.When)
			if err != nil {
				p, _ = policy.Compile("false")
			}
			r.prog = p
		}
		out = append(out, authz.Rule{
			Name: r.Name, Methods: r.Match.Methods, Paths: r.Match.Paths,
			MCPMethods: r.Match.MCPMethods, Tools: r.Match.Tools, Resources: r.Match.Resources,
			Prompts: r.Match.Prompts, Public: r.Public, Scopes: r.Scopes, When: r.prog,
			Description: r.ErrorDescription,
		})
	}
	return out
}

// HasMCPRules says whether a resource's rules read the MCP operation.
func (r *Resource) HasMCPRules() bool {
	for _, rule := range r.Rules {
		if rule.Match.mcp() || rule.prog != nil && rule.prog.UsesMCP {
			return true
		}
	}
	return false
}
