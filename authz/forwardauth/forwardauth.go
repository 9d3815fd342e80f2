// Package forwardauth is the HTTP front door to the decision core, for proxies that ask an
// HTTP service whether to let a request through: nginx auth_request, Traefik and Caddy
// forward-auth, Envoy's HTTP ext_authz service. It only translates, like extauthz does for
// gRPC: the decision and its challenge are the same.
//
// The proxy tells us about the original request in headers it sets itself:
// X-Forwarded-Method / X-Original-Method, X-Forwarded-Uri / X-Original-URI,
// X-Forwarded-Host (else Host) and X-Forwarded-Proto. The proxy must overwrite any client
// copies of them; the shipped configurations do.
//
// On allow the answer is 200 with the identity headers; the proxy copies them upstream
// (overwriting client copies) and removes the names listed in x-envoy-auth-headers-to-remove
// (Envoy's HTTP ext_authz reads that header; nginx configurations use the same list from
// X-Auth-Remove). On denial the answer carries the decision's status, WWW-Authenticate and body.
//
// The request body, when the proxy sends it (Envoy's with_request_body), is read up to MaxBody
// for per-operation rules; without it, the MCP 2026-07-28 Mcp-Method and Mcp-Name headers
// name the operation, and a rule that needs the operation denies when neither is there.
package forwardauth

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz"
)

// Checker is what the front door needs from the decision core.
type Checker interface {
	Check(ctx context.Context, req *authz.Request) *authz.Decision
}

// Options configure a Handler.
type Options struct {
	// ClientCertHeader names the header in which the proxy that terminated TLS passes the
	// client's certificate (RFC 8705 certificate-bound tokens): Envoy's
	// x-forwarded-client-cert (its Cert= field), or URL-encoded PEM (nginx's
	// $ssl_client_escaped_cert). Read only from TrustedProxies; "" disables.
	ClientCertHeader string
	// TrustedProxies are the peers whose ClientCertHeader is believed.
	TrustedProxies []netip.Prefix
}

// Handler answers forward-auth subrequests with c's decisions.
func Handler(c Checker) http.Handler { return HandlerWith(c, Options{}) }

// HandlerWith is Handler with options.
func HandlerWith(c Checker, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request(r)
		if o.ClientCertHeader != "" {
			req.ClientCert = clientCert(r, o)
		}
		d := c.Check(r.Context(), req)
		h := w.Header()
		for _, hd := range d.Headers {
			h.Set(hd.Name, hd.Value)
		}
		if d.Allow {
			// For the client's response (a new DPoP-Nonce): nginx copies it with
			// auth_request_set, Envoy with allowed_client_headers_on_success.
			for _, hd := range d.ResponseHeaders {
				h.Set(hd.Name, hd.Value)
			}
			// Names the proxy must not pass upstream as the client sent them.
			if len(d.Remove) > 0 {
				list := strings.Join(d.Remove, ", ")
				h.Set("X-Envoy-Auth-Headers-To-Remove", list)
				h.Set("X-Auth-Remove", list)
			}
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(d.Status)
		if r.Method != http.MethodHead {
			w.Write(d.Body)
		}
	})
}

// clientCert reads the client certificate a trusted proxy forwarded; "" when there is none,
// the peer is not trusted, or the header could be read two ways (repeated, several XFCC
// elements), so that a certificate-bound token is then refused.
func clientCert(r *http.Request, o Options) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	trusted := false
	for _, p := range o.TrustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			trusted = true
			break
		}
	}
	vals := r.Header.Values(o.ClientCertHeader)
	if !trusted || len(vals) != 1 {
		return ""
	}
	v := vals[0]
	if !strings.Contains(v, "Cert=") {
		return v // URL-encoded PEM
	}
	// XFCC: elements separated by commas (one per proxy hop), fields by semicolons; Cert is
	// quoted URL-encoded PEM. Only a single element is unambiguous.
	cert := ""
	inQuote := false
	start := 0
	var fields []string
	for i := 0; i <= len(v); i++ {
		if i == len(v) || !inQuote && (v[i] == ';' || v[i] == ',') {
			fields = append(fields, v[start:i])
			if i < len(v) && v[i] == ',' {
				return ""
			}
			start = i + 1
			continue
		}
		if v[i] == '"' {
			inQuote = !inQuote
		}
	}
	for _, f := range fields {
		k, val, _ := strings.Cut(f, "=")
		if strings.EqualFold(strings.TrimSpace(k), "Cert") {
			if cert != "" {
				return ""
			}
			cert = strings.Trim(val, `"`)
		}
	}
	return cert
}

// MaxBody is how much of a forwarded request body is read; a longer body counts as cut short,
// which per-operation rules refuse.
const MaxBody = 1 << 20

// Request rebuilds the original request from the proxy's headers and body.
func Request(r *http.Request) *authz.Request {
	first := func(names ...string) string {
		for _, n := range names {
			if v := r.Header.Get(n); v != "" {
				return v
			}
		}
		return ""
	}
	req := &authz.Request{
		Method:  first("X-Forwarded-Method", "X-Original-Method"),
		Host:    first("X-Forwarded-Host"),
		Path:    first("X-Forwarded-Uri", "X-Original-Uri"),
		Scheme:  first("X-Forwarded-Proto"),
		ID:      first("X-Request-Id"),
		Headers: make(map[string]string, len(r.Header)),
	}
	if req.Method == "" {
		req.Method = r.Method
	}
	if req.Host == "" {
		req.Host = r.Host
	}
	if req.Path == "" {
		req.Path = r.URL.RequestURI()
	}
	for name, vals := range r.Header {
		// Joined with "," as Envoy joins repeated headers, so two Authorization headers
		// look like two credentials (invalid_request), not one.
		n := strings.ToLower(name)
		req.Headers[n] = strings.Join(vals, ",")
		if len(vals) > 1 {
			req.Repeated = append(req.Repeated, n)
		}
	}
	if r.Body != nil && r.ContentLength != 0 {
		b, _ := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if len(b) > MaxBody {
			b, req.BodyTruncated = b[:MaxBody], true
		}
		req.Body = b
	}
	return req
}
