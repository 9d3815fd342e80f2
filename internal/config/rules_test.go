package config

import (
	"slices"
	"strings"
	"testing"
)

const withRules = good + `    rules:
      - name: refund
        match: { tools: [refund] }
        scopes: [payments:write]
        when: '"finance" in claims.groups && claims.tenant == request.headers["x-tenant"]'
        error_description: Refunds are for the finance group.
      - name: docs
        public: true
        match: { methods: [GET], paths: ["/mcp/docs/*"] }
      - name: admin
        match: { mcp_methods: ["admin/*"] }
        when: '"mcp:admin" in scopes'
`

func TestRulesParse(t *testing.T) {
	c, err := Parse([]byte(withRules))
	if err != nil {
		t.Fatal(err)
	}
	// The claims rules read are kept by the verifiers, beside the identity headers' claims.
	if got, want := c.ClaimsFor(), []string{"email", "groups", "tenant"}; !slices.Equal(got, want) {
		t.Errorf("ClaimsFor = %v, want %v", got, want)
	}
	rs := c.AuthzResources()[0].Rules
	if len(rs) != 3 || rs[0].When == nil || !rs[1].Public || rs[2].When == nil {
		t.Fatalf("rules %+v", rs)
	}
	if !c.Resources[0].HasMCPRules() {
		t.Error("HasMCPRules false for a resource with a tools rule")
	}
	notes := c.RuleNotes()
	if len(notes) != 1 || !strings.Contains(notes[0], "resources[0].rules[2].when reads scopes") {
		t.Errorf("notes %q", notes)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(out); err != nil {
		t.Errorf("the resolved configuration does not parse again: %v\n%s", err, out)
	}
}

func TestRulesValidationNamesTheKey(t *testing.T) {
	for body, want := range map[string]string{
		`      - { name: r, match: { tools: [x] }, when: 'claims.x +' }`:     "resources[0].rules[0].when: ERROR",
		`      - { name: r, when: 'subject' }`:                               "resources[0].rules[0].when: the expression gives string",
		`      - { name: r, when: 'claims[subject] == "x"' }`:                "resources[0].rules[0].when: read claims by constant names",
		`      - { name: r, when: 'nosuch == 1' }`:                           "undeclared reference to 'nosuch'",
		`      - { match: { tools: [x] }, scopes: [a] }`:                     "resources[0].rules[0].name: required",
		`      - { name: r, match: { tools: [x] } }`:                         "resources[0].rules[0]: a rule needs scopes, when, or public",
		`      - { name: r, public: true, match: { tools: [x] } }`:           "resources[0].rules[0].public: a public rule matches on",
		`      - { name: r, public: true }`:                                  "resources[0].rules[0].public: a public rule needs",
		`      - { name: r, match: { paths: [/other] }, scopes: [a] }`:       "resources[0].rules[0].match.paths[0]: \"/other\" is not below",
		`      - { name: r, match: { methods: [get] }, scopes: [a] }`:        "resources[0].rules[0].match.methods[0]",
		`      - { name: r, match: { tools: [""] }, scopes: [a] }`:           "resources[0].rules[0].match.tools[0]: empty",
		`      - { name: r, scopes: ["a b"] }`:                               "resources[0].rules[0].scopes[0]",
		`      - { name: r, scopes: [a], error_description: 'say "hi"' }`:    "resources[0].rules[0].error_description",
		`      - { name: r, scopes: [a], wehn: 'true' }`:                     "wehn",
		"      - { name: r, scopes: [a] }\n      - { name: r, scopes: [b] }": "resources[0].rules[1].name: \"r\" is used by another rule",
	} {
		_, err := Parse([]byte(good + "    rules:\n" + body + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n  err = %v\n  want %q", body, err, want)
		}
	}
}
