package differential

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// execution is one thing an upstream did for a body: its dispatch of a request (what its
// own parser made of the body) or a registered handler running. The Node programs report
// the same shape (record.mjs).
type execution struct {
	Method    string  `json:"method"`
	Name      *string `json:"name"`
	Via       string  `json:"via"`       // "dispatch" or "handler"
	IllFormed bool    `json:"illFormed"` // a string with a lone surrogate (Node)
	NonString bool    `json:"nonString"` // the name member was no string; Name holds its JSON
}

// recorder keeps what each case made the Go SDK execute, by the X-Diff-Case header the SDK
// hands its handlers (RequestExtra.Header).
type recorder struct {
	mu   sync.Mutex
	exec map[string][]execution
}

func newRecorder() *recorder { return &recorder{exec: map[string][]execution{}} }

func (r *recorder) add(req mcp.Request, method string, name *string, via string) {
	c := "(no case)"
	if ex := req.GetExtra(); ex != nil && ex.Header != nil {
		c = ex.Header.Get("X-Diff-Case")
	}
	r.mu.Lock()
	r.exec[c] = append(r.exec[c], execution{Method: method, Name: name, Via: via})
	r.mu.Unlock()
}

// take hands over the record and starts a new one.
func (r *recorder) take() map[string][]execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.exec
	r.exec = map[string][]execution{}
	return out
}

func ptr(s string) *string { return &s }

// newGoServer is an MCP server of the Go SDK with the same tools, resource template and
// prompt as the Node programs, recording into rec.
func newGoServer(rec *recorder) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "differential-go", Version: "1.0.0"}, &mcp.ServerOptions{
		SubscribeHandler: func(_ context.Context, req *mcp.SubscribeRequest) error {
			rec.add(req, "resources/subscribe", ptr(req.Params.URI), "handler")
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, req *mcp.UnsubscribeRequest) error {
			rec.add(req, "resources/unsubscribe", ptr(req.Params.URI), "handler")
			return nil
		},
	})
	schema := json.RawMessage(`{"type":"object"}`)
	for _, name := range []string{"delete_file", "echo"} {
		s.AddTool(&mcp.Tool{Name: name, Description: name, InputSchema: schema},
			func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				rec.add(req, "tools/call", ptr(name), "handler")
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
			})
	}
	s.AddResourceTemplate(&mcp.ResourceTemplate{Name: "file", URITemplate: "file:///{path}"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			rec.add(req, "resources/read", ptr(req.Params.URI), "handler")
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet"}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		rec.add(req, "prompts/get", ptr("greet"), "handler")
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}}, nil
	})
	// The SDK's own dispatch, after its own decoding: method and the params it decoded.
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			var name *string
			switch p := req.GetParams().(type) {
			case *mcp.CallToolParamsRaw:
				name = ptr(p.Name)
			case *mcp.GetPromptParams:
				name = ptr(p.Name)
			case *mcp.ReadResourceParams:
				name = ptr(p.URI)
			case *mcp.SubscribeParams:
				name = ptr(p.URI)
			case *mcp.UnsubscribeParams:
				name = ptr(p.URI)
			}
			rec.add(req, method, name, "dispatch")
			return next(ctx, method, req)
		}
	})
	return s
}

// goHandler is the Go SDK's Streamable HTTP handler around one recording server.
func goHandler(rec *recorder, stateless bool) http.Handler {
	srv := newGoServer(rec)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: stateless, JSONResponse: true})
}
