package differential

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/mcp-authz/mcp-authz/authz"
)

// FuzzReadOperationsGoSDK compares authz.ReadOperations with the Go SDK in-process: its
// JSON-RPC decoder (jsonrpc.DecodeMessage) must see the method mcp-authz read, and its
// Streamable HTTP handler (stateless, the whole dispatch path, handlers recording) may
// execute only operations mcp-authz read. The seed corpus (the hand-written bodies and the
// first generated ones) runs in every `go test`; `go test -fuzz FuzzReadOperationsGoSDK`
// searches further.
func FuzzReadOperationsGoSDK(f *testing.F) {
	for _, b := range handBodies() {
		f.Add(b.data)
	}
	for _, b := range generated()[:400] {
		f.Add(b.data)
	}
	rec := newRecorder()
	h := goHandler(rec, true)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := authz.ReadOperations(data)
		if err != nil {
			return
		}
		if msg, derr := jsonrpc.DecodeMessage(data); derr == nil {
			if req, ok := msg.(*jsonrpc.Request); ok && (len(ops) != 1 || ops[0].Method != req.Method) {
				t.Fatalf("the Go SDK's jsonrpc.DecodeMessage reads method %q, mcp-authz read %v\nbody: %s", req.Method, ops, quote(data))
			}
		}
		r := authzResult{ops: ops}
		for _, sep := range []bool{false, true} {
			if sep && !modernSingle(data, r) {
				continue
			}
			// A case of its own: a notification's handler may still run after the response.
			c := "fuzz-" + strconv.FormatInt(n.Add(1), 10)
			req := httptest.NewRequest("POST", "/", bytes.NewReader(data))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("X-Diff-Case", c)
			if sep {
				name, ok := rawName(ops[0].Name)
				if !ok || !headerSafe(ops[0].Method) {
					continue
				}
				req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
				req.Header.Set("Mcp-Method", ops[0].Method)
				if _, ok := nameOf[ops[0].Method]; ok {
					req.Header.Set("Mcp-Name", name)
				}
			}
			// A body the SDK never answers would stall the fuzzer silently; it fails instead.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.WithContext(ctx))
			late := ctx.Err()
			cancel()
			if late != nil {
				t.Fatalf("the Go SDK did not answer within 10 s\nbody: %s\nmcp-authz: %s", quote(data), authzSays(r))
			}
			exec := rec.take()[c]
			if p := violation(ops, exec); p != "" {
				t.Fatalf("the Go SDK (SEP-2243 headers: %v) executed what mcp-authz did not read (%s)\nbody: %s\nmcp-authz: %s\nexecuted: %s\nHTTP %d %s",
					sep, p, quote(data), authzSays(r), describe(exec), w.Code, short(w.Body.String()))
			}
		}
	})
}

// legacyOperations is the reader mcp-authz had before issue 14 (encoding/json into a struct:
// member names matched case-insensitively, with Unicode folding, the last one winning),
// extended to read params.uri. The differential test runs it against the same upstream
// results to show that it would have failed there.
func legacyOperations(data []byte) ([]authz.Operation, error) {
	type msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"params"`
	}
	body := bytes.TrimLeft(data, " \t\r\n")
	var msgs []msg
	var err error
	if len(body) > 0 && body[0] == '[' {
		err = json.Unmarshal(body, &msgs)
	} else {
		var one msg
		err = json.Unmarshal(body, &one)
		msgs = []msg{one}
	}
	if err != nil {
		return nil, fmt.Errorf("legacy: %w", err)
	}
	ops := make([]authz.Operation, len(msgs))
	for i, m := range msgs {
		ops[i].Method = m.Method
		switch nameOf[m.Method] {
		case "name":
			ops[i].Name = m.Params.Name
		case "uri":
			ops[i].Name = m.Params.URI
		}
	}
	return ops, nil
}
