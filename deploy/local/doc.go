// Package local runs two mcp-authz replicas sharing one Redis behind nginx on loopback:
// run.sh is for a person at a terminal (see README.md), as/ is the demo authorization server
// it starts, and the test in this package runs run.sh and requires every check of it to pass.
package local
