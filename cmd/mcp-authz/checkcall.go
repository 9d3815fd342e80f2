package main

import (
	"context"
	"fmt"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// sendCheck sends one CheckRequest over plaintext gRPC, as Envoy would.
func sendCheck(ctx context.Context, addr string, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", addr, err)
	}
	return resp, nil
}

// describeCheck turns a CheckResponse into indented JSON, whether it allows, the HTTP status
// of a denial (0 when it has none) and the DPoP-Nonce of a use_dpop_nonce denial.
func describeCheck(resp *authv3.CheckResponse) (out []byte, allowed bool, status int, nonce string, err error) {
	out, err = protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
	if d := resp.GetDeniedResponse(); d != nil {
		var wantsNonce bool
		for _, h := range d.GetHeaders() {
			switch k, v := h.GetHeader().GetKey(), h.GetHeader().GetValue(); {
			case strings.EqualFold(k, "dpop-nonce"):
				nonce = v
			case strings.EqualFold(k, "www-authenticate") && strings.Contains(v, `error="use_dpop_nonce"`):
				wantsNonce = true
			}
		}
		if !wantsNonce {
			nonce = ""
		}
		return out, false, int(d.GetStatus().GetCode()), nonce, err
	}
	// Envoy decides by the gRPC status alone; an OK status is an allow.
	return out, resp.GetStatus().GetCode() == 0, 0, "", err
}
