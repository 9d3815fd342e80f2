// Command mcp-authz is an Envoy external-authorization service that enforces OAuth 2.1 access
// tokens for MCP servers and other HTTP APIs.
//
//	mcp-authz serve --config FILE     run the service
//	mcp-authz check-config FILE       validate a configuration and print it resolved
//	mcp-authz doctor FILE             also ask the authorization servers whether it fits them
//	mcp-authz demo                    run with an embedded demo authorization server
//	mcp-authz check [flags]           send one Check to a running service and print the answer
//	mcp-authz token [flags]           get an access token (-dpop-key: a DPoP-bound one) and print it
//	mcp-authz dpop-key FILE           write a new private DPoP key (JWK) and print its thumbprint
//	mcp-authz version                 print the build: version, commit, date, Go version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var exit exitCode
	if errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, "mcp-authz:", err)
		os.Exit(exit.code)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcp-authz:", err)
		// doctor tells "fix the configuration" from "the authorization server is down".
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(1)
	}
}
