// Command noop is the benchmark baseline: an ext_authz v3 server that answers every Check with
// one prebuilt response, so a ghz run against it measures gRPC and the load generator alone.
//
// By default that response is an empty OK. With -response it is a CheckResponse read from a
// protojson file, such as mcp-authz's own allow or 401 captured with `mcp-authz check`: a
// "replay" baseline that costs the same bytes on the wire and in the client without deciding
// anything, which separates what the response costs from what the decision costs.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

type server struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (s server) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.resp, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9291", "listen address")
	respFile := flag.String("response", "", "protojson CheckResponse to answer with (default: an empty OK)")
	flag.Parse()
	resp := &authv3.CheckResponse{
		Status:       &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}
	if *respFile != "" {
		b, err := os.ReadFile(*respFile)
		if err == nil {
			resp = &authv3.CheckResponse{}
			err = protojson.Unmarshal(b, resp)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "noop: -response:", err)
			os.Exit(2)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, server{resp: resp})
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		g.GracefulStop()
	}()
	fmt.Println("noop ext_authz on", ln.Addr())
	g.Serve(ln)
}
