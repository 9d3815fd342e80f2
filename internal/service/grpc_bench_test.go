package service

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// noopServer is bench/noop's server: the gRPC cost alone.
type noopServer struct {
	authv3.UnimplementedAuthorizationServer
}

var noopOK = &authv3.CheckResponse{Status: &rpcstatus.Status{},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}

func (noopServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return noopOK, nil
}

// replayServer answers every Check with one fixed response: mcp-authz's own allow, captured.
type replayServer struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (r replayServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return r.resp, nil
}

func benchGRPC(b *testing.B, addr string, req *authv3.CheckRequest) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := authv3.NewAuthorizationClient(conn)
	if r, err := c.Check(context.Background(), req); err != nil || r.GetOkResponse() == nil {
		b.Fatal(r, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := c.Check(context.Background(), req); err != nil || r.GetOkResponse() == nil {
				b.Error(r, err)
				return
			}
		}
	})
}

// BenchmarkGRPCNoop and BenchmarkGRPCCachedJWT are one pair: the same request over real gRPC
// on loopback, client and server in this process, so their ratio is mcp-authz's cost over
// gRPC's for a cached decision (bench/cmd/run measures the same across processes).
func BenchmarkGRPCNoop(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, noopServer{})
	go g.Serve(ln)
	defer g.Stop()
	_, tok := benchService(b, 1000)
	benchGRPC(b, ln.Addr().String(), benchReq(tok))
}

func BenchmarkGRPCCachedJWT(b *testing.B) {
	s, tok := benchServiceFull(b, 1000)
	benchGRPC(b, s.GRPCAddr(), benchReq(tok))
}

// BenchmarkGRPCReplayAllow: gRPC plus the bytes of mcp-authz's allow response (identity
// headers, headers to remove), without deciding anything. Between Noop and CachedJWT, it
// splits the gap into "a bigger response" and "the decision".
func BenchmarkGRPCReplayAllow(b *testing.B) {
	s, tok := benchServiceFull(b, 1000)
	resp, err := s.ext.Check(context.Background(), benchReq(tok))
	if err != nil || resp.GetOkResponse() == nil {
		b.Fatal(resp, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, replayServer{resp: resp})
	go g.Serve(ln)
	defer g.Stop()
	benchGRPC(b, ln.Addr().String(), benchReq(tok))
}
