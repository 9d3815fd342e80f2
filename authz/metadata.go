package authz

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// prmDoc is the RFC 9728 §2 document. Members with zero values are omitted (§3.2).
type prmDoc struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	ResourcePolicyURI      string   `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI         string   `json:"resource_tos_uri,omitempty"`
	// RFC 9728 §2, for RFC 9449 and RFC 8705: present only where the resource accepts them.
	DPoPAlgs          []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPRequired      bool     `json:"dpop_bound_access_tokens_required,omitempty"`
	TLSCertBoundToken bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

func buildPRM(r *Resource, dpopAlgs []string) ([]byte, error) {
	doc := prmDoc{
		Resource:             r.ID,
		AuthorizationServers: r.AuthorizationServers,
		// Only the Authorization header: query tokens are refused and bodies are not read.
		BearerMethodsSupported: []string{"header"},
		ResourceName:           r.ResourceName,
		ResourceDocumentation:  r.ResourceDocumentation,
		ResourcePolicyURI:      r.ResourcePolicyURI,
		ResourceTOSURI:         r.ResourceTOSURI,
	}
	if r.DPoP != BindingOff {
		doc.DPoPAlgs = dpopAlgs
		doc.DPoPRequired = r.DPoP == BindingRequired
	}
	doc.TLSCertBoundToken = r.MTLSBound != BindingOff
	for _, s := range r.ScopesSupported {
		if s != "offline_access" { // MCP 2026-07-28: never advertised by a resource server
			doc.ScopesSupported = append(doc.ScopesSupported, s)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// metaSet holds the precomputed answers on a metadata path, one per method class.
type metaSet struct {
	get, head, options, notAllowed *Decision
}

var (
	hdrCORSOrigin  = Header{"access-control-allow-origin", "*"}
	hdrCORSMethods = Header{"access-control-allow-methods", "GET, HEAD, OPTIONS"}
	// Browser MCP clients send MCP-Protocol-Version on discovery requests, so a preflight
	// must allow it (the TypeScript SDK retries without it only after a CORS failure).
	hdrCORSHeaders = Header{"access-control-allow-headers", "MCP-Protocol-Version, Content-Type, Authorization"}
	hdrCORSMaxAge  = Header{"access-control-max-age", "86400"}
	hdrAllow       = Header{"allow", "GET, HEAD, OPTIONS"}
	// Metadata changes only with configuration; a short max-age keeps a reload visible soon
	// (RFC 9728 §5.2 lets the server announce changes, but clients refetch only when told).
	hdrMetaCache = Header{"cache-control", "public, max-age=300"}
)

func buildMetaAnswers(prm []byte) metaSet {
	getHeaders := []Header{hdrJSON, hdrMetaCache, hdrCORSOrigin}
	return metaSet{
		get:  &Decision{Status: http.StatusOK, Reason: ReasonMetadata, Headers: getHeaders, Body: prm},
		head: &Decision{Status: http.StatusOK, Reason: ReasonMetadata, Headers: getHeaders},
		options: &Decision{Status: http.StatusNoContent, Reason: ReasonMetadata,
			Headers: []Header{hdrCORSOrigin, hdrCORSMethods, hdrCORSHeaders, hdrCORSMaxAge}},
		notAllowed: &Decision{Status: http.StatusMethodNotAllowed, Reason: ReasonMetadata,
			Headers: []Header{hdrAllow, hdrJSON, hdrCORSOrigin},
			Body:    errorBody("method_not_allowed", "Use GET.")},
	}
}

func (m *metaSet) answer(method string) *Decision {
	switch method {
	case http.MethodGet:
		return m.get
	case http.MethodHead:
		return m.head
	case http.MethodOptions:
		return m.options
	}
	return m.notAllowed
}
