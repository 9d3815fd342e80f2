package authz

// Request is what a proxy tells us about one HTTP request. Adapters fill it; nothing in it has
// been validated.
type Request struct {
	Method string
	Scheme string // as the proxy saw it, for logs only: challenges are built from configuration
	Host   string // :authority, possibly with a port
	Path   string // path as sent, query string included (Envoy leaves it inside :path)
	// Headers has lower-case names. A header sent more than once arrives joined with ",", as
	// Envoy joins them.
	Headers map[string]string
	// Repeated names the headers (lower-case) that arrived more than once, joined in Headers.
	// A header whose meaning depends on being single (Content-Type, Mcp-Method) is then
	// ambiguous: two parsers may take the first, the last, or the joined value.
	Repeated []string
	Body     []byte // optional: only when the proxy forwards it
	// BodyTruncated: the adapter received more body than it reads (Envoy says so with the
	// x-envoy-auth-partial-body header instead).
	BodyTruncated bool
	ID            string // request id for logs (x-request-id)
	// MCP is the operation Envoy's MCP filter (envoy.filters.http.mcp) read from the body,
	// when the ext_authz filter forwards that metadata namespace; nil otherwise.
	MCP *FilterOperation
	// ClientCert is the client's TLS certificate, URL-encoded PEM, as the proxy that
	// terminated TLS forwards it (Envoy: include_peer_certificate); "" when there is none.
	ClientCert string
}

// FilterOperation is what Envoy's MCP filter puts in its dynamic metadata: the JSON-RPC
// method and params (RFC-less: Envoy's own parse of the body).
type FilterOperation struct {
	Method string
	// Name and URI are params.name and params.uri when they are strings.
	Name, URI string
	HasName   bool
	HasURI    bool
	Arguments []byte // JSON text of params.arguments, nil when absent
}

func (r *Request) header(name string) (string, bool) {
	v, ok := r.Headers[name]
	return v, ok
}

// splitPath separates the path from its query string.
func splitPath(p string) (path, query string) {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i], p[i+1:]
		}
	}
	return p, ""
}
