package authz

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
)

// MCPScopes maps MCP JSON-RPC operations to the scopes they need, beyond the resource's own
// required scopes (MCP 2025-11-25 and 2026-07-28 "Scope Challenge Handling": a 403 names
// every scope the operation needs, in one challenge).
type MCPScopes struct {
	// Tools: tools/call by params.name. The key "*" applies to any tool not listed.
	Tools map[string][]string
	// Methods: any JSON-RPC method, e.g. "resources/read", "prompts/get".
	Methods map[string][]string
}

// Operation is one MCP JSON-RPC request as an upstream server will dispatch it.
type Operation struct {
	Method string
	// Name is what the operation acts on, as the MCP 2026-07-28 Mcp-Name header carries it
	// (SEP-2243): params.name for tools/call and prompts/get, params.uri for resources/read,
	// resources/subscribe and resources/unsubscribe, params.taskId for the tasks methods.
	Name string
	// Arguments is the JSON text of params.arguments (tools/call), when it was asked for and
	// the body has it.
	Arguments []byte
}

// nameParam says which params member names the operation's target, "" for none.
func nameParam(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return "uri"
	case "tasks/get", "tasks/result", "tasks/cancel":
		return "taskId"
	}
	return ""
}

// errOperation marks a request whose MCP operation cannot be read unambiguously; the
// resource's per-operation rules then deny it (400 invalid_request), never skip it.
var errOperation = errors.New("mcp operation unreadable")

// errHeaderMismatch: the SEP-2243 headers disagree with the body (400, JSON-RPC -32020).
var errHeaderMismatch = errors.New("mcp headers disagree with the body")

// ReadOperations reads the JSON-RPC requests of an MCP POST body the way an upstream MCP server
// will dispatch them, or fails when two reasonable parsers could read it differently:
//   - member names match exactly; a duplicate name anywhere, or a case-variant of a name in
//     a message or its params ("Method", "NAME", "paramſ"), is an error (strictjson);
//   - invalid UTF-8, lone surrogates, trailing data, an empty batch: errors;
//   - jsonrpc must be "2.0", method a string, params an object; the member naming the target
//     (nameParam) must be a string. A message without method (a response) is no operation.
//
// A JSON array is a batch (JSON-RPC 2.0 §6, accepted by the 2025-03-26 SDK servers): one
// Operation per request in it.
func ReadOperations(body []byte) ([]Operation, error) { return readOperations(body, true) }

// readOperations: wantArgs keeps a copy of each tools/call's arguments (policy conditions on
// mcp.arguments); without it nothing of the body is copied but strings.
func readOperations(body []byte, wantArgs bool) ([]Operation, error) {
	// One pooled pass checks the whole body: syntax, UTF-8, duplicates and case-variant
	// names at every depth (tool arguments included: a tool on Go's encoding/json would read
	// them differently from one on JSON.parse). After it, exact-name decoding is unambiguous.
	if err := strictjson.Check(body); err != nil {
		return nil, fmt.Errorf("%w: %v", errOperation, err)
	}
	r := readers.Get().(*rpcReader)
	defer func() {
		r.rd.Reset(nil) // drop the caller's bytes
		readers.Put(r)
	}()
	r.rd.Reset(body)
	r.dec.Reset(&r.rd, checked)
	r.wantArgs = wantArgs
	if r.dec.PeekKind() != '[' {
		m, err := r.message()
		if err != nil {
			return nil, err
		}
		op, isReq, err := m.operation()
		if err != nil || !isReq {
			return nil, err
		}
		return []Operation{op}, nil
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("%w: %v", errOperation, err)
	}
	var ops []Operation
	n := 0
	for r.dec.PeekKind() != ']' {
		m, err := r.message()
		if err != nil {
			return nil, err
		}
		n++
		op, isReq, err := m.operation()
		if err != nil {
			return nil, err
		}
		if isReq {
			ops = append(ops, op)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty batch", errOperation)
	}
	return ops, nil
}

// rpcReader reads the few members a decision needs in one pass, with no reflection: a body is
// read on every Check of a resource with per-operation rules.
type rpcReader struct {
	rd       bytes.Reader
	dec      *jsontext.Decoder
	wantArgs bool
}

var readers = sync.Pool{New: func() any {
	r := new(rpcReader)
	r.dec = jsontext.NewDecoder(&r.rd, checked)
	return r
}}

// checked skips what strictjson.Check has already refused (duplicates, bad UTF-8), so the
// reading pass does not do that work twice.
var checked = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// rpcMessage is what a decision reads of a JSON-RPC message. Each member records whether it was
// present and of the right JSON type: a null method or params is not an absent one (the Go SDK
// reads "method":null as the method "").
type rpcMessage struct {
	JSONRPC, Method member
	Params          rpcParams
}

type rpcParams struct {
	present, object   bool
	Name, URI, TaskID member
	Arguments         []byte
}

// member is a JSON member that must be a string where it is read.
type member struct {
	present, isString bool
	s                 string
}

func (r *rpcReader) message() (m rpcMessage, err error) {
	if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return m, fmt.Errorf("%w: a message is not an object", errOperation)
	}
	for r.dec.PeekKind() != '}' {
		name, err := r.name()
		if err != nil {
			return m, err
		}
		switch string(name) { // no allocation: the compiler compares the bytes
		case "jsonrpc":
			m.JSONRPC, err = r.member()
		case "method":
			m.Method, err = r.member()
		case "params":
			m.Params.present = true
			if r.dec.PeekKind() != '{' {
				err = r.dec.SkipValue()
				break
			}
			m.Params.object = true
			r.dec.ReadToken()
			for err == nil && r.dec.PeekKind() != '}' {
				var pn []byte
				if pn, err = r.name(); err != nil {
					break
				}
				switch string(pn) {
				case "name":
					m.Params.Name, err = r.member()
				case "uri":
					m.Params.URI, err = r.member()
				case "taskId":
					m.Params.TaskID, err = r.member()
				case "arguments":
					if !r.wantArgs {
						err = r.dec.SkipValue()
						break
					}
					var v jsontext.Value
					if v, err = r.dec.ReadValue(); err == nil {
						m.Params.Arguments = bytes.Clone(v)
					}
				default:
					err = r.dec.SkipValue()
				}
			}
			if err == nil {
				_, err = r.dec.ReadToken()
			}
		default:
			err = r.dec.SkipValue()
		}
		if err != nil {
			return m, fmt.Errorf("%w: %v", errOperation, err)
		}
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return m, fmt.Errorf("%w: %v", errOperation, err)
	}
	return m, nil
}

// name reads a member name, unescaped ("n\u0061me" is "name" to every parser).
func (r *rpcReader) name() ([]byte, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errOperation, err)
	}
	return unquote(v)
}

func (r *rpcReader) member() (member, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return member{}, err
	}
	m := member{present: true}
	if v.Kind() == '"' {
		var b []byte
		b, err = unquote(v)
		m.isString, m.s = true, string(b)
	}
	return m, err
}

// unquote returns a JSON string's content: a slice of v, valid until the decoder's next read,
// when nothing is escaped, else a new unescaped copy.
func unquote(v jsontext.Value) ([]byte, error) {
	if len(v) >= 2 && bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errOperation, err)
	}
	return b, nil
}

func (m *rpcMessage) operation() (op Operation, isRequest bool, err error) {
	if !m.JSONRPC.isString || m.JSONRPC.s != "2.0" {
		return op, false, fmt.Errorf("%w: jsonrpc is not \"2.0\"", errOperation)
	}
	if !m.Method.present {
		return op, false, nil // a response
	}
	if !m.Method.isString {
		return op, false, fmt.Errorf("%w: method is not a string", errOperation)
	}
	if m.Params.present && !m.Params.object {
		return op, false, fmt.Errorf("%w: params is not an object", errOperation)
	}
	op.Method = m.Method.s
	var target member
	switch nameParam(op.Method) {
	case "":
		return op, true, nil
	case "name":
		target = m.Params.Name
	case "uri":
		target = m.Params.URI
	case "taskId":
		target = m.Params.TaskID
	}
	if !target.isString {
		return op, false, fmt.Errorf("%w: %s without a string target in params", errOperation, op.Method)
	}
	op.Name = target.s
	if op.Method == "tools/call" {
		op.Arguments = m.Params.Arguments
	}
	return op, true, nil
}

// requestOperations finds the MCP operations of a request for per-operation rules: from the
// body when the proxy forwarded it, else from the MCP 2026-07-28 Mcp-Method / Mcp-Name headers
// (SEP-2243). Body and headers must agree. ok is false for requests that carry no MCP
// operation (anything but POST).
func requestOperations(req *Request, wantArgs bool) (ops []Operation, ok bool, err error) {
	if req.Method != "POST" {
		return nil, false, nil
	}
	for _, n := range req.Repeated {
		switch n {
		case "mcp-method", "mcp-name", "content-type", "content-length", "content-encoding", "transfer-encoding":
			return nil, true, fmt.Errorf("%w: header %s repeated", errOperation, n)
		}
	}
	hMethod, hasMethod := req.Headers["mcp-method"]
	hName, hasName := req.Headers["mcp-name"]
	// A proxy that sends headers as one map (Envoy without header_map) joins repeats with ",",
	// so Repeated cannot say so; no JSON-RPC method, tool or prompt name has a comma (resource
	// URIs may, and are compared whole).
	if strings.IndexByte(hMethod, ',') >= 0 || hasName && nameParam(hMethod) == "name" && strings.IndexByte(hName, ',') >= 0 {
		return nil, true, fmt.Errorf("%w: a repeated Mcp-Method or Mcp-Name header", errOperation)
	}
	if hasName {
		if hName, err = decodeHeaderValue(hName); err != nil {
			return nil, true, err
		}
	}
	if req.MCP != nil && req.MCP.Method != filterResponse {
		fop, ferr := req.MCP.operation()
		if ferr != nil {
			return nil, true, ferr
		}
		if len(req.Body) == 0 {
			// Envoy's MCP filter read the body for us: its reading is the operation, and the
			// SEP-2243 headers must agree with it as they must with a body.
			if (hasMethod || hasName) && (!hasMethod || fop.Method != hMethod || hasName != (nameParam(hMethod) != "") || hasName && fop.Name != hName) {
				return nil, true, errHeaderMismatch
			}
			return []Operation{fop}, true, nil
		}
		defer func() {
			// Both: the filter's reading and ours must name the same single operation.
			if err == nil && (len(ops) != 1 || ops[0].Method != fop.Method || ops[0].Name != fop.Name) {
				ops, err = nil, fmt.Errorf("%w: Envoy's MCP filter and the body disagree", errOperation)
			}
		}()
	}
	if len(req.Body) == 0 {
		// No body reached us (the proxy does not forward it, or nginx auth_request): the
		// headers are all there is. An upstream on the 2026-07-28 revision validates them
		// against the body (SEP-2243), so a lie there is refused upstream.
		if !hasMethod {
			return nil, true, fmt.Errorf("%w: no body and no Mcp-Method header", errOperation)
		}
		op := Operation{Method: hMethod}
		if nameParam(hMethod) != "" {
			if !hasName {
				return nil, true, fmt.Errorf("%w: Mcp-Name missing for %s", errOperation, hMethod)
			}
			op.Name = hName
		} else if hasName {
			return nil, true, fmt.Errorf("%w: Mcp-Name for %s", errOperation, hMethod)
		}
		return []Operation{op}, true, nil
	}
	if err := jsonBody(req); err != nil {
		return nil, true, err
	}
	if ops, err = readOperations(req.Body, wantArgs); err != nil {
		return nil, true, err
	}
	// On the 2026-07-28 revision the headers are required, not optional (SEP-2243): a body
	// whose request names its method without Mcp-Method is what an upstream on that revision
	// refuses too. A 2025 client sends neither the version nor the headers.
	if !hasMethod && len(ops) > 0 && modernProtocol(req.Headers["mcp-protocol-version"]) {
		return nil, true, errHeaderMismatch
	}
	if hasMethod || hasName {
		if len(ops) != 1 || !hasMethod || ops[0].Method != hMethod || hasName != (nameParam(hMethod) != "") || hasName && ops[0].Name != hName {
			return nil, true, errHeaderMismatch
		}
	}
	return ops, true, nil
}

// modernProtocol: the MCP-Protocol-Version header names the 2026-07-28 revision or a later
// one (revisions are dates, so they order as strings).
func modernProtocol(v string) bool {
	v = strings.TrimSpace(v)
	return len(v) == len("2026-07-28") && v >= "2026-07-28"
}

// filterResponse is the method Envoy's MCP filter gives a JSON-RPC response.
const filterResponse = "__jsonrpc_response"

func (f *FilterOperation) operation() (Operation, error) {
	op := Operation{Method: f.Method}
	if op.Method == "" {
		return op, fmt.Errorf("%w: Envoy's MCP filter metadata has no method", errOperation)
	}
	switch nameParam(op.Method) {
	case "name":
		if !f.HasName {
			return op, fmt.Errorf("%w: %s without params.name in Envoy's MCP filter metadata", errOperation, op.Method)
		}
		op.Name = f.Name
	case "uri":
		if !f.HasURI {
			return op, fmt.Errorf("%w: %s without params.uri in Envoy's MCP filter metadata", errOperation, op.Method)
		}
		op.Name = f.URI
	case "taskId":
		return op, fmt.Errorf("%w: %s from Envoy's MCP filter metadata is not supported", errOperation, op.Method)
	}
	if op.Method == "tools/call" {
		op.Arguments = f.Arguments
	}
	return op, nil
}

// jsonBody refuses a body that an upstream could read as something else than the JSON we
// read: exactly one Content-Type, application/json with at most charset=utf-8 (MCP Streamable
// HTTP), no content coding, and not cut short by the proxy.
func jsonBody(req *Request) error {
	ct, ok := req.Headers["content-type"]
	if !ok || !isJSONMediaType(ct) {
		return fmt.Errorf("%w: content type is not application/json", errOperation)
	}
	if ce, ok := req.Headers["content-encoding"]; ok && !strings.EqualFold(strings.TrimSpace(ce), "identity") {
		return fmt.Errorf("%w: content-encoding %q", errOperation, ce)
	}
	// Envoy's with_request_body.allow_partial_message marks a body it cut at max_request_bytes.
	if req.BodyTruncated || strings.EqualFold(req.Headers["x-envoy-auth-partial-body"], "true") {
		return fmt.Errorf("%w: body truncated by the proxy", errOperation)
	}
	if cl, ok := req.Headers["content-length"]; ok && cl != itoa(len(req.Body)) {
		return fmt.Errorf("%w: body of %d bytes, content-length %q", errOperation, len(req.Body), cl)
	}
	if !utf8.Valid(req.Body) {
		return fmt.Errorf("%w: body is not UTF-8", errOperation)
	}
	return nil
}

// isJSONMediaType accepts "application/json" and "application/json; charset=utf-8" (any case,
// optional quotes), and nothing else: not a list, not another parameter, not +json types.
func isJSONMediaType(v string) bool {
	typ, params, _ := strings.Cut(v, ";")
	if !strings.EqualFold(strings.Trim(typ, " \t"), "application/json") {
		return false
	}
	if params == "" {
		return true
	}
	name, val, ok := strings.Cut(strings.Trim(params, " \t"), "=")
	if !ok || !strings.EqualFold(strings.TrimRight(name, " \t"), "charset") {
		return false
	}
	val = strings.TrimLeft(val, " \t")
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	return strings.EqualFold(val, "utf-8")
}

// decodeHeaderValue undoes SEP-2243's encoding of values that are not safe header text:
// "=?base64?<standard base64 of the UTF-8 value>?=".
func decodeHeaderValue(v string) (string, error) {
	const pre, suf = "=?base64?", "?="
	if !strings.HasPrefix(v, pre) {
		return v, nil
	}
	if !strings.HasSuffix(v, suf) || len(v) < len(pre)+len(suf) {
		return "", fmt.Errorf("%w: malformed base64 header value", errOperation)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(v[len(pre) : len(v)-len(suf)])
	if err != nil || !utf8.Valid(b) {
		return "", fmt.Errorf("%w: malformed base64 header value", errOperation)
	}
	return string(b), nil
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// opScopes returns the scopes one MCP operation needs beyond the resource's required scopes:
// its method's, and for tools/call the named tool's (or those of "*").
func (m *MCPScopes) opScopes(op *Operation, out []string) []string {
	if m == nil || op == nil {
		return out
	}
	out = append(out, m.Methods[op.Method]...)
	if op.Method == "tools/call" {
		if s, ok := m.Tools[op.Name]; ok {
			out = append(out, s...)
		} else {
			out = append(out, m.Tools["*"]...)
		}
	}
	return out
}

// unionScopes: base first, then extras not already present, in a stable order so the
// challenge for one operation is the same every time.
func unionScopes(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	out := append([]string(nil), base...)
	seen := make(map[string]bool, len(base)+len(extra))
	for _, s := range base {
		seen[s] = true
	}
	var add []string
	for _, s := range extra {
		if !seen[s] {
			seen[s] = true
			add = append(add, s)
		}
	}
	sortStrings(add)
	return append(out, add...)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
