package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

func TestCommandCalls(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_get:calls=1200,usec=2400,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_set:calls=30,usec=90,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=99,usec=990,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_dbsize:calls=7,usec=7,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_ping:calls=5,usec=5,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n"
	if got := commandCalls(info); got != 1230 {
		t.Fatalf("commandCalls = %d, want get+set = 1230 (the driver's own info/dbsize and pings left out)", got)
	}
}

func TestDecisions(t *testing.T) {
	m := `# HELP mcp_authz_decisions_total Decisions.
# TYPE mcp_authz_decisions_total counter
mcp_authz_decisions_total{decision="allow",resource="r"} 900
mcp_authz_decisions_total{decision="deny",reason="invalid_token",resource="r"} 50
mcp_authz_decisions_total{decision="deny",reason="missing_token",resource="r"} 50
mcp_authz_decisions_totally_other 7
go_memstats_heap_inuse_bytes 1.048576e+07
`
	allow, total := decisions(m)
	// The metric whose name merely starts the same is another metric.
	if allow != 900 || total != 1000 {
		t.Fatalf("decisions = %v allow of %v, want 900 of 1000", allow, total)
	}
	if v, ok := metricValue(m, "go_memstats_heap_inuse_bytes"); !ok || v != 10485760 {
		t.Fatalf("heap = %v, %v", v, ok)
	}
}

// The counters come from a real redis-server over RESP.
func TestRedisCmdAgainstRedis(t *testing.T) {
	bin := testenv.Tool(t, "redis-server", "apt-get install -y redis-server")
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	if err := testenv.WaitAddr(ctx, addr, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := redisCmd(addr, "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	info0, err := redisCmd(addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := redisCmd(addr, "SET", fmt.Sprintf("k%d", i), "a value with spaces\r\nand a line break"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := redisCmd(addr, "GET", "k1"); err != nil || got != "a value with spaces\r\nand a line break" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	info1, err := redisCmd(addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	if d := commandCalls(info1) - commandCalls(info0); d != 4 {
		t.Fatalf("3 SETs and a GET counted as %d commands", d)
	}
	if n, err := redisCmd(addr, "DBSIZE"); err != nil || n != "3" {
		t.Fatalf("DBSIZE = %q, %v", n, err)
	}
	mem, err := redisCmd(addr, "INFO", "memory")
	if err != nil || infoField(mem, "used_memory") <= 0 {
		t.Fatalf("used_memory of %q: %v", mem[:min(len(mem), 80)], err)
	}
	if _, err := redisCmd(addr, "NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "ERR") {
		t.Fatalf("an error reply: %v", err)
	}
}

// Every /count is asked on a new connection: the stand-in AS counts it, and the run subtracts
// exactly one per query.
func TestGetCountsUsesANewConnectionEachTime(t *testing.T) {
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"introspect": 7, "conns": %d}`, conns)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns++
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	a, err := getCounts(addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := getCounts(addr)
	if err != nil {
		t.Fatal(err)
	}
	if a.Introspect != 7 || b.Conns-a.Conns != 1 {
		t.Fatalf("counts %+v then %+v: want one new connection per query", a, b)
	}
}
