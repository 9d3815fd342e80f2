package authz

import "github.com/mcp-authz/mcp-authz/authz/identity"

// Reason classifies a decision. The mapping from Reason to status and challenge lives in
// challenge.go, and golden files pin it.
type Reason uint8

const (
	ReasonAllow             Reason = iota + 1 // token good for this resource
	ReasonPublic                              // public path: no token needed
	ReasonMetadata                            // RFC 9728 metadata answered directly
	ReasonPreflight                           // CORS preflight let through
	ReasonMissingToken                        // 401, challenge without error= (RFC 6750 §3.1)
	ReasonInvalidRequest                      // 400 invalid_request
	ReasonInvalidToken                        // 401 invalid_token
	ReasonInsufficientScope                   // 403 insufficient_scope, scope="…"
	ReasonUnavailable                         // no verifier could decide; 401 or 503 by config
	ReasonNoRoute                             // no protected resource matches
	ReasonInternal                            // recovered fault: 503
	ReasonPolicy                              // 403 without a challenge: a rule's condition refused the caller
	ReasonUpstream                            // 403 without a challenge: the upstream credential was refused
)

var reasonNames = [...]string{
	ReasonAllow:             "allow",
	ReasonPublic:            "public",
	ReasonMetadata:          "metadata",
	ReasonPreflight:         "preflight",
	ReasonMissingToken:      "missing_token",
	ReasonInvalidRequest:    "invalid_request",
	ReasonInvalidToken:      "invalid_token",
	ReasonInsufficientScope: "insufficient_scope",
	ReasonUnavailable:       "unavailable",
	ReasonNoRoute:           "no_route",
	ReasonInternal:          "internal",
	ReasonPolicy:            "policy_denied",
	ReasonUpstream:          "upstream_credential_refused",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "unknown"
}

// Header is one HTTP header field.
type Header struct{ Name, Value string }

// Verification tiers (Decision.Tier).
const (
	TierL1    = "l1"
	TierRedis = "redis"
	TierIdP   = "idp"
	TierStale = "stale"
)

// Decision is the answer to one Request. Precomputed denials are shared between requests and
// must be treated as read-only.
type Decision struct {
	Allow  bool
	Status int // HTTP status of a denial; 200 for a metadata answer given in place of the upstream
	Reason Reason
	// Headers: on allow, set on the upstream request, replacing any client-sent copy; on
	// denial, set on the response to the client.
	Headers []Header
	// Remove: on allow, header names removed from the upstream request.
	Remove []string
	// ResponseHeaders: on allow, added to the response the client gets (a new DPoP-Nonce).
	ResponseHeaders []Header
	// Binding: on allow at a resource that accepts sender-constrained tokens, how the token
	// was bound (dpop, mtls, dpop+mtls, bearer); "" elsewhere.
	Binding string
	Body    []byte // denial body

	Resource string             // name of the matched resource, "" when none
	Identity *identity.Identity // on allow with a token
	// Operation is the request's MCP operation (the first of a batch), nil when it carries
	// none or it was not read; Batch is the number of operations when more than one. For
	// decision logs and Envoy's dynamic metadata; Arguments are never kept here.
	Operation *Operation
	Batch     int
	// Tier says where a token's verification came from: TierL1, TierRedis, TierIdP (verified
	// now), TierStale; "" when no token was verified. For logs, spans and metrics.
	Tier string
	// Err is the private detail of a denial (logs and spans only, never the response).
	Err error
	// Shared is nonzero for a precomputed answer that many requests receive: within one
	// Authorizer, equal values mean the same status, headers and body, so an adapter may
	// convert it once. The values come from configuration (a few per resource, and at most
	// maxStepUp step-up challenges per resource), never from traffic; 0 for anything built
	// for one request.
	Shared uint32
}
