//go:build pprof

package main

// Built only with `-tags pprof` (bench/README.md, "Profiling"): Go's profiler on a loopback
// port taken from MCP_AUTHZ_PPROF, so a benchmark run can be profiled without shipping a
// profiling endpoint in the release binary.

import (
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("MCP_AUTHZ_PPROF")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "pprof:", err)
		}
	}()
}
