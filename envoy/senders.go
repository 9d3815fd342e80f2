package envoy

import (
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// CheckSenderConstrained reads an Envoy bootstrap (YAML or JSON) and reports, one problem a
// line, what keeps its ext_authz filters from giving mcp-authz what sender-constrained tokens
// need: with dpop, the HTTP service must forward the DPoP header (the gRPC service sends every
// header); with mtls, the gRPC service must include the client certificate
// (include_peer_certificate), and the HTTP service, which cannot, must forward an
// x-forwarded-client-cert that Envoy itself sets (forward_client_cert_details: SANITIZE_SET
// with set_current_client_cert_details.cert). An empty list means it sends what is needed.
func CheckSenderConstrained(src []byte, dpop, mtls bool) ([]string, error) {
	return eachExtAuthz(src, func(where string, hcm *hcmv3.HttpConnectionManager, ea *extauthzv3.ExtAuthz) []string {
		return checkSenders(where, hcm, ea, dpop, mtls)
	})
}

func checkSenders(where string, hcm *hcmv3.HttpConnectionManager, ea *extauthzv3.ExtAuthz, dpop, mtls bool) []string {
	var out []string
	hs := ea.GetHttpService()
	if hs == nil {
		if mtls && !ea.GetIncludePeerCertificate() {
			out = append(out, where+": no include_peer_certificate: mcp-authz gets no client certificate to compare with cnf.x5t#S256, and refuses every certificate-bound token")
		}
		return out
	}
	allowed := map[string]bool{}
	for _, m := range hs.GetAuthorizationRequest().GetAllowedHeaders().GetPatterns() {
		allowed[m.GetExact()] = true
	}
	if dpop && !allowed["dpop"] {
		out = append(out, where+`: http_service.authorization_request.allowed_headers lacks "dpop": mcp-authz gets no DPoP proof, and refuses every DPoP request`)
	}
	if mtls {
		if !allowed["x-forwarded-client-cert"] {
			out = append(out, where+`: http_service.authorization_request.allowed_headers lacks "x-forwarded-client-cert": mcp-authz gets no client certificate`)
		}
		if hcm.GetForwardClientCertDetails() != hcmv3.HttpConnectionManager_SANITIZE_SET || !hcm.GetSetCurrentClientCertDetails().GetCert() {
			out = append(out, where+": the connection manager does not set x-forwarded-client-cert itself (forward_client_cert_details: SANITIZE_SET, set_current_client_cert_details: {cert: true})")
		}
	}
	return out
}
