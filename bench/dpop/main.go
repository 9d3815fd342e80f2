// Command dpop serves the benchmark's DPoP scenario: mcp-authz (the real service) with one
// resource that requires DPoP, trusting an in-process demo authorization server, and writes a
// ghz data file of Check requests, each with the same DPoP-bound access token (cached after
// the first Check) and its own ES256 proof made with go-jose.
//
// ghz sends the file's requests round-robin, so proofs come back once the file is used up.
// The service therefore remembers one proof (dpop.replay_memory: 1) and accepts iat within
// an hour: every Check still verifies its proof's signature, checks htm, htu, iat and ath, and
// records the jti (a map insert and delete), which is what a DPoP Check costs beyond the
// cached token, except the shared replay store's Redis round trip (measured in process by
// BenchmarkCheckCachedDPoPRedis against BenchmarkCheckCachedDPoP). Do not copy this
// configuration: with a one-proof memory, a captured proof is replayable.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/dpop/dpoptest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
	"github.com/mcp-authz/mcp-authz/internal/service"
)

const resource = "http://localhost:8080/mcp"

func main() {
	grpcAddr := flag.String("grpc", "127.0.0.1:9209", "ext_authz listen address")
	httpAddr := flag.String("http", "127.0.0.1:9309", "metrics listen address")
	data := flag.String("data", "dpop.data", "ghz data file to write")
	n := flag.Int("n", 2000, "distinct proofs in the data file")
	flag.Parse()
	if err := run(*grpcAddr, *httpAddr, *data, *n); err != nil {
		fmt.Fprintln(os.Stderr, "dpop:", err)
		os.Exit(1)
	}
}

func run(grpcAddr, httpAddr, data string, n int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	as, err := demoas.New(demoas.Config{Issuer: issuer, Resources: []string{resource}, DefaultResource: resource,
		Clients: []demoas.Client{{ID: "bench", Secret: "bench", Scopes: []string{"mcp:tools"}}}})
	if err != nil {
		return err
	}
	go http.Serve(ln, as.Handler())

	cfg := &config.Config{
		Listen:    config.Listen{GRPC: grpcAddr, HTTP: httpAddr},
		Log:       config.Log{Level: "warn", Format: "text", Decisions: "off"},
		Dev:       config.Dev{AllowHTTP: true},
		Issuers:   []config.Issuer{{Issuer: issuer}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:tools"}}, DPoP: config.BindingRequired}},
		DPoP:      config.DPoP{ReplayMemory: 1, IATWindow: config.Duration(time.Hour)},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	s, err := service.New(cfg, service.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}

	key := dpoptest.NewKey()
	tok, err := as.Mint(map[string]any{"iss": issuer, "sub": "bench-user", "aud": resource, "client_id": "bench",
		"iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Hour).Unix(), "jti": "bench", "scope": "mcp:tools mcp:read",
		"cnf": map[string]any{"jkt": key.JKT()}}, demoas.MintOptions{})
	if err != nil {
		return err
	}
	type req = map[string]any
	reqs := make([]req, n)
	now := time.Now()
	for i := range reqs {
		reqs[i] = req{"attributes": req{"request": req{"http": req{"method": "POST", "host": "localhost:8080", "path": "/mcp",
			"headers": map[string]string{"authorization": "DPoP " + tok, "dpop": key.Proof("POST", resource, tok, now, nil)}}}}}
	}
	b, err := json.Marshal(reqs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(data, b, 0o644); err != nil {
		return err
	}
	fmt.Println("ready")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(sctx)
}
