package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// NewCheckRequest builds a CheckRequest the way Envoy fills one: lower-case headers with the
// HTTP/2 pseudo-headers, host and path (query included) in their own fields too.
func NewCheckRequest(method, host, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": host, ":path": path, ":method": method}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: &corev3.Address{}},
		Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, Headers: h, Protocol: "HTTP/1.1",
		}},
	}}
}

// CheckJSON sends one Check over plaintext gRPC and returns the CheckResponse as indented JSON
// (the `mcp-authz check` command), with whether the request was allowed and, for a denial, the
// HTTP status the client would get (0 when the response has none).
func CheckJSON(ctx context.Context, addr, method, host, path string, headers map[string]string) (out []byte, allowed bool, status int, err error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, false, 0, err
	}
	defer conn.Close()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, NewCheckRequest(method, host, path, headers))
	if err != nil {
		return nil, false, 0, fmt.Errorf("check %s: %w", addr, err)
	}
	out, err = protojson.Marshal(resp)
	out = indentJSON(out)
	if d := resp.GetDeniedResponse(); d != nil {
		return out, false, int(d.GetStatus().GetCode()), err
	}
	// Envoy decides by the gRPC status alone; an OK status is an allow.
	return out, resp.GetStatus().GetCode() == 0, 0, err
}

// indentJSON re-indents protojson's output with encoding/json: protojson varies its spacing
// on purpose (from build to build), and scripts and tests read this output.
func indentJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return b
	}
	return out.Bytes()
}
