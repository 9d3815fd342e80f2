// Command slowas is the benchmark's stand-in authorization server: RFC 8414 metadata and an
// RFC 7662 introspection endpoint that waits a fixed -latency, then says any token is active
// for -resource with -scope, issued by -issuer, for -ttl. It counts what it serves:
//
//	GET /count  →  {"introspect": N, "conns": M}
//
// (introspection calls, and TCP connections accepted, since start), so a benchmark can tell how
// many IdP calls and new connections its Checks cost.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9280", "listen address")
	latency := flag.Duration("latency", 20*time.Millisecond, "fixed delay before every introspection answer")
	issuer := flag.String("issuer", "", `issuer identifier; default "http://" + the listen address`)
	resource := flag.String("resource", "http://localhost:8080/mcp", "aud of every token")
	scope := flag.String("scope", "mcp:tools", "scope of every token")
	ttl := flag.Duration("ttl", time.Hour, "tokens expire this long after they are introspected")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slowas:", err)
		os.Exit(1)
	}
	iss := *issuer
	if iss == "" {
		iss = "http://" + ln.Addr().String()
	}
	var calls, conns atomic.Int64
	meta, _ := json.Marshal(map[string]any{
		"issuer":                   iss,
		"introspection_endpoint":   iss + "/introspect",
		"token_endpoint":           iss + "/token",
		"response_types_supported": []string{"code"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
	mux := http.NewServeMux()
	metaH := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(meta)
	}
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", metaH)
	mux.HandleFunc("GET /.well-known/openid-configuration", metaH)
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		time.Sleep(*latency)
		now := time.Now()
		b, _ := json.Marshal(map[string]any{
			"active": true, "iss": iss, "aud": *resource, "scope": *scope,
			"sub": "bench-user", "client_id": "bench-client", "token_type": "Bearer",
			"iat": now.Unix(), "exp": now.Add(*ttl).Unix(),
		})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"introspect":%d,"conns":%d}`+"\n", calls.Load(), conns.Load())
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		srv.Close()
	}()
	fmt.Printf("slowas %s on %s, latency %s\n", iss, ln.Addr(), *latency)
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "slowas:", err)
		os.Exit(1)
	}
}
