// Command as runs the demo authorization server (package demoas) on its own, for
// deploy/local/run.sh: `mcp-authz demo` embeds the same server but draws its introspection
// secret per run and keeps it to itself, while replicas started with `mcp-authz serve` need
// to be given it. Demo only: it issues tokens to anyone who knows the published client
// secret "demo-secret", and keeps everything in memory.
//
//	MCP_AUTHZ_INTROSPECTION_SECRET=… as -addr 127.0.0.1:9193 -resource http://127.0.0.1:8080/mcp
//
// Endpoints: those of demoas (RFC 8414 metadata, JWKS, /token for clients "demo" (JWT) and
// "demo-opaque" (opaque), /introspect for client "mcp-authz" with the secret above), plus
// POST /revoke (RFC 7009, for the demo clients) and GET /counts (requests per endpoint, JSON).
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

const clientSecret = "demo-secret"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "as:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:9193", "listen address; the issuer is http://ADDR")
	resource := flag.String("resource", "http://127.0.0.1:8080/mcp", "the resource tokens are issued for")
	flag.Parse()
	secret := os.Getenv("MCP_AUTHZ_INTROSPECTION_SECRET")
	if len(secret) < 16 {
		return errors.New("MCP_AUTHZ_INTROSPECTION_SECRET must hold the introspection client's secret (16 bytes or more)")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	scopes := []string{"mcp:tools", "mcp:read"}
	as, err := demoas.New(demoas.Config{
		Issuer: issuer,
		Clients: []demoas.Client{
			{ID: "demo", Secret: clientSecret, Scopes: scopes},
			{ID: "demo-opaque", Secret: clientSecret, Scopes: scopes, Opaque: true},
		},
		Resources:            []string{*resource},
		DefaultResource:      *resource,
		IntrospectionClients: map[string]string{"mcp-authz": secret},
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", as.Handler())
	// RFC 7009 token revocation: the client authenticates; the answer is 200 whether or not
	// the token was known (§2.2).
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		id, pw, ok := r.BasicAuth()
		if !ok || (id != "demo" && id != "demo-opaque") || subtle.ConstantTimeCompare([]byte(pw), []byte(clientSecret)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="demoas"`)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		as.Revoke(r.PostForm.Get("token"))
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(as.Counts())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("demo authorization server %s (clients demo, demo-opaque; secret %s)\n", issuer, clientSecret)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
