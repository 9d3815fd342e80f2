# The opa-jwt scenario's policy: the same work as mcp-authz on the jwt-cached workload, written
# the way OPA-Envoy's documentation does it. Verify the RS256 JWT against the authorization
# server's JWKS (data.bench.jwks, fetched by the bench driver at startup: no http.send per request),
# check iss, aud (the resource), exp/nbf, typ at+jwt and that the scope has mcp:tools, route on
# host and path like mcp-authz's resource, then allow with the same identity headers and the
# caller's Authorization removed; anything else is a 401 with a Bearer challenge.
package envoy.authz

import rego.v1

http_req := input.attributes.request.http

result := {
	"allowed": true,
	"headers": {
		"x-auth-subject": claims.sub,
		"x-auth-client-id": claims.client_id,
		"x-auth-scopes": claims.scope,
	},
	"request_headers_to_remove": ["authorization"],
} if allow

result := {
	"allowed": false,
	"http_status": 401,
	"headers": {
		"www-authenticate": sprintf(`Bearer error="invalid_token", scope="%s", resource_metadata="%s"`, [data.bench.scope, data.bench.metadata]),
		"cache-control": "no-store",
	},
	"body": `{"error":"invalid_token"}`,
} if not allow

allow if {
	http_req.host == data.bench.host
	startswith(http_req.path, data.bench.path)
	claims.sub
}

bearer := t if {
	parts := split(http_req.headers.authorization, " ")
	count(parts) == 2
	lower(parts[0]) == "bearer"
	t := parts[1]
}

claims := payload if {
	[valid, header, payload] := io.jwt.decode_verify(bearer, {
		"cert": data.bench.jwks,
		"iss": data.bench.issuer,
		"aud": data.bench.resource,
		"alg": "RS256",
	})
	valid
	header.typ == "at+jwt"
	data.bench.scope in split(payload.scope, " ")
}
