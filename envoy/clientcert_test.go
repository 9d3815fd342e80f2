package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// clientCertProblems lists what keeps a bootstrap from giving mcp-authz the client
// certificates of certificate-bound tokens (RFC 8705): on every listener that requires a
// client certificate, each gRPC ext_authz filter must include it in the CheckRequest
// (include_peer_certificate), and the connection manager must not trust a client's own
// x-forwarded-client-cert. It also returns how many such listeners it saw.
func clientCertProblems(t *testing.T, b *bootstrapv3.Bootstrap) (problems []string, listeners int) {
	t.Helper()
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			ts := fc.GetTransportSocket().GetTypedConfig()
			if ts == nil || !ts.MessageIs(&tlsv3.DownstreamTlsContext{}) {
				continue
			}
			tc := unpack(t, ts, &tlsv3.DownstreamTlsContext{})
			if !tc.GetRequireClientCertificate().GetValue() {
				continue
			}
			listeners++
			if tc.GetCommonTlsContext().GetValidationContext().GetTrustedCa() == nil {
				problems = append(problems, l.GetName()+": require_client_certificate without a trusted_ca to check the certificates against")
			}
			for _, f := range fc.GetFilters() {
				hcm := unpack(t, f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
				switch hcm.GetForwardClientCertDetails() {
				case hcmv3.HttpConnectionManager_SANITIZE, hcmv3.HttpConnectionManager_SANITIZE_SET:
				default:
					problems = append(problems, l.GetName()+": forward_client_cert_details "+hcm.GetForwardClientCertDetails().String()+" passes the client's own x-forwarded-client-cert on")
				}
				for _, hf := range hcm.GetHttpFilters() {
					if !hf.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{}) {
						continue
					}
					ea := unpack(t, hf.GetTypedConfig(), &extauthzv3.ExtAuthz{})
					if ea.GetGrpcService() != nil && !ea.GetIncludePeerCertificate() {
						problems = append(problems, l.GetName()+": ext_authz without include_peer_certificate: mcp-authz cannot check cnf.x5t#S256")
					}
				}
			}
		}
	}
	return problems, listeners
}

// Every shipped bootstrap that asks clients for certificates hands them to mcp-authz, and
// envoy-client-mtls.yaml is one.
func TestClientCertificatesReachMCPAuthz(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	total := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := load(t, src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		problems, n := clientCertProblems(t, b)
		for _, p := range problems {
			t.Errorf("%s: %s", f, p)
		}
		if f == "envoy-client-mtls.yaml" && n != 1 {
			t.Errorf("%s: %d listeners require a client certificate, want 1", f, n)
		}
		total += n
	}
	if total == 0 {
		t.Error("no bootstrap requires client certificates: envoy-client-mtls.yaml is missing")
	}
}

// The check above must catch each mistake, or it proves nothing.
func TestClientCertificateCheckCatchesMistakes(t *testing.T) {
	src, err := os.ReadFile("envoy-client-mtls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"no include_peer_certificate", "include_peer_certificate: true", "include_peer_certificate: false", "include_peer_certificate"},
		{"client XFCC trusted", "          forward_client_cert_details: SANITIZE\n", "          forward_client_cert_details: APPEND_FORWARD\n", "x-forwarded-client-cert"},
		{"no client CA", "trusted_ca: { filename: /etc/envoy/certs/clients-ca.crt }", "trust_chain_verification: ACCEPT_UNTRUSTED", "trusted_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(src), tc.from, tc.to, 1)
			if bad == string(src) {
				t.Fatalf("fixture no longer contains %q", tc.from)
			}
			b, err := load(t, []byte(bad))
			if err != nil {
				t.Fatal(err)
			}
			problems, _ := clientCertProblems(t, b)
			if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Errorf("problems %q, want one about %s", problems, tc.want)
			}
		})
	}
	// Without require_client_certificate nothing is asked of the listener: the listener
	// count says so.
	b, err := load(t, []byte(strings.Replace(string(src), "require_client_certificate: true", "require_client_certificate: false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, n := clientCertProblems(t, b); n != 0 {
		t.Errorf("%d listeners counted without require_client_certificate", n)
	}
}
