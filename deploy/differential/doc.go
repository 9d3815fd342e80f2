// Package differential checks that mcp-authz reads a JSON-RPC body the way the real MCP
// server SDKs do: every body of a corpus (hand-written attacks plus a seeded generator's
// mutations) goes through authz.ReadOperations and, over loopback HTTP, to servers of the
// TypeScript SDK 1.x and 2.x (Node programs sdk1.mjs and sdk2.mjs, versions pinned by
// package-lock.json: `npm ci --prefix deploy/differential`) and of the Go SDK (in-process).
// Whenever mcp-authz accepts a body, no upstream may execute an operation it did not read.
// README.md says what this proves and what it does not.
package differential
