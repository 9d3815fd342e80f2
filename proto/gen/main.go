// Command gen writes authz.protoset (see package proto).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mcp-authz/mcp-authz/proto"
)

func main() {
	out := flag.String("o", "authz.protoset", "output file")
	flag.Parse()
	b, err := proto.Protoset()
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
