// Command cpuscale measures how much CPU throughput this machine really has on more than one
// vCPU: it runs a fixed CPU-bound Go workload (JSON encode and decode) on one thread for
// -d and prints the operations done. The bench driver runs it alone on CPU 0, then one copy on
// CPU 0 and one on CPU 1 at once: on a machine with two real cores the pair does twice the
// work of one; on a VM whose two vCPUs share a physical core (SMT siblings, or an overcommitted
// host) it does much less, and then a load generator on "the other" CPU slows the server too.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"time"
)

func main() {
	d := flag.Duration("d", 2*time.Second, "how long to run")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	v := map[string]any{"sub": "bench-user", "scope": "mcp:tools mcp:read", "aud": []string{"http://localhost:8080/mcp"}, "exp": 1764000000}
	n := 0
	for start := time.Now(); time.Since(start) < *d; {
		for range 100 {
			b, _ := json.Marshal(v)
			var m map[string]any
			json.Unmarshal(b, &m)
			n++
		}
	}
	fmt.Println(n)
}
