// Command noop is the benchmark baseline: an ext_authz v3 server that allows everything with a
// prebuilt response, so a ghz run against it measures gRPC and the load generator alone.
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
)

type server struct {
	authv3.UnimplementedAuthorizationServer
}

var ok = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (server) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return ok, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9291", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, server{})
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		g.GracefulStop()
	}()
	fmt.Println("noop ext_authz on", ln.Addr())
	g.Serve(ln)
}
