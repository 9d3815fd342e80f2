package config

import (
	"strings"
	"testing"
)

const upstreamBase = `
issuers:
  - issuer: https://as.example.com
resources:
  - name: mcp
    resource: https://mcp.example.com/mcp
    upstream_credentials:
`

func indent(block string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.Trim(block, "\n"), "\n") {
		b.WriteString("      " + l + "\n")
	}
	return b.String()
}

func TestUpstreamCredentialsValid(t *testing.T) {
	for name, block := range map[string]string{
		"token_exchange": `
token_exchange:
  audience: [https://api.example.com]
  scopes: [api:read]
  act_header: x-mcp-act
  client:
    client_id: mcp-authz
    client_secret: {env: X_SECRET}`,
		"private_key_jwt": `
token_exchange:
  resource: [https://api.example.com/v1]
  requested_token_type: urn:ietf:params:oauth:token-type:jwt
  client:
    client_id: mcp-authz
    auth_method: private_key_jwt
    private_key: {file: /etc/mcp-authz/key.pem}`,
		"client_credentials": `
client_credentials:
  issuer: https://as.example.com
  scopes: [api:read]
  client: {client_id: svc, client_secret: {file: /run/secret}, auth_method: client_secret_post}`,
		"static": `
header: x-api-key
prefix: ""
static:
  value: {env: LEGACY_TOKEN}`,
	} {
		if _, err := Parse([]byte(upstreamBase + indent(block))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Each mistake is named by its key, with the fix.
func TestUpstreamCredentialsErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct{ block, want string }{
		{`
static: {value: {env: A}}
client_credentials: {issuer: https://as.example.com, client: {client_id: a, client_secret: {env: B}}}`,
			"resources[0].upstream_credentials: set exactly one of token_exchange, client_credentials or static (found 2)"},
		{`
token_exchange:
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange: name the downstream API"},
		{`
token_exchange:
  audience: [api]
  client: {client_id: a}`,
			"resources[0].upstream_credentials.token_exchange.client.client_secret: required with auth_method client_secret_basic"},
		{`
token_exchange:
  audience: [api]
  client: {client_id: a, auth_method: private_key_jwt, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange.client.private_key: required with auth_method private_key_jwt"},
		{`
token_exchange:
  audience: [api]
  client: {client_id: a, auth_method: tls_client_auth, client_secret: {env: B}}`,
			`resources[0].upstream_credentials.token_exchange.client.auth_method: "tls_client_auth": use client_secret_basic`},
		{`
token_exchange:
  audience: [api]
  requested_token_type: urn:ietf:params:oauth:token-type:refresh_token
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange.requested_token_type"},
		{`
token_exchange:
  audience: [api]
  scopes: ["a b"]
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange.scopes[0]"},
		{`
token_exchange:
  resource: [api.example.com]
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange.resource[0]"},
		{`
token_exchange:
  audience: [api]
  act_header: authorization
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange.act_header"},
		{`
client_credentials:
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.client_credentials.issuer: required"},
		{`
static: {value: {}}`,
			"resources[0].upstream_credentials.static.value: required"},
		{`
static: {value: {env: A, file: /x}}`,
			"resources[0].upstream_credentials.static.value: give env or file, not both"},
		{`
header: X-Api-Key
static: {value: {env: A}}`,
			"resources[0].upstream_credentials.header"},
		{`
token_exchange:
  audiance: [api]
  client: {client_id: a, client_secret: {env: B}}`,
			"resources[0].upstream_credentials.token_exchange.audiance (line 9): unknown key; did you mean audience?"},
	} {
		_, err := Parse([]byte(upstreamBase + indent(c.block)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n got: %v\nwant: %s", c.block, err, c.want)
		}
	}
}

func TestUpstreamCredentialsRefuseForwardAuthorization(t *testing.T) {
	cfg := strings.Replace(upstreamBase, "    upstream_credentials:\n", "    forward_authorization: true\n    upstream_credentials:\n", 1) +
		indent("static: {value: {env: A}}")
	_, err := Parse([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), "resources[0].upstream_credentials: forward_authorization: true would pass the caller's token") {
		t.Fatalf("got %v", err)
	}
}
