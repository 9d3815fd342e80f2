// Package policy compiles and evaluates the conditions of authorization rules: CEL expressions
// (cel.dev/cel-go) over a verified caller and the request's MCP operation. Expressions are
// compiled once, when configuration loads; a Check only evaluates them, within a cost limit.
//
// The variables an expression sees:
//
//	claims     map(string, dyn)  the token's claims that rules name (claims.groups, claims["tenant"])
//	scopes     list(string)      granted scopes
//	client_id, subject, issuer   string
//	mcp        map(string, dyn)  method, name; arguments (tools/call, from the body: {} without one);
//	                             params (the SEP-2243 Mcp-Param-* headers, lower-case names)
//	request    map(string, dyn)  method, path (decoded and normalised once), headers (lower-case
//	                             names, one value each)
//
// Claims are kept with a cached verification only when some rule or identity header names
// them, so an expression must name each claim it reads with a constant: Program.Claims lists
// them for the verifiers.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/go-json-experiment/json/jsontext"
)

// CostLimit bounds one evaluation (CEL's cost units, about one per operation and per list
// element visited): a condition over a huge claim array stops here instead of holding a Check.
// An evaluation that exceeds it fails, and a failed condition denies.
const CostLimit = 10_000

// maxExprLen bounds an expression's source; longer ones are refused when configuration loads.
const maxExprLen = 4096

var (
	envOnce sync.Once
	env     *cel.Env
	envErr  error
)

func celEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		env, envErr = cel.NewEnv(
			cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("scopes", cel.ListType(cel.StringType)),
			cel.Variable("client_id", cel.StringType),
			cel.Variable("subject", cel.StringType),
			cel.Variable("issuer", cel.StringType),
			cel.Variable("mcp", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
			ext.Strings(),
			cel.OptionalTypes(),
		)
	})
	return env, envErr
}

// Program is a compiled condition.
type Program struct {
	src string
	prg cel.Program
	// Claims are the claim names the expression reads.
	Claims []string
	// UsesArguments: the expression reads mcp.arguments, so the body's tool arguments must be
	// read for it. ArgKeys are the arguments it reads by constant names (only those are
	// decoded); AllArgs: it reads the arguments some other way (all are decoded).
	UsesArguments bool
	ArgKeys       []string
	AllArgs       bool
	// UsesScopes: the expression reads scopes (check-config suggests declaring them instead,
	// so that clients can step up).
	UsesScopes bool
	// UsesMCP: the expression reads the MCP operation, which must then be read (else mcp.name
	// is "" and mcp.name != "refund" holds for a refund).
	UsesMCP bool
	// Headers are the request headers the expression reads by constant names; AllHeaders:
	// it reads request.headers some other way. A repeated one is ambiguous.
	Headers    []string
	AllHeaders bool
}

func (p *Program) String() string { return p.src }

// Compile parses and type-checks a condition. The error is CEL's own, meant for check-config.
func Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	if len(src) > maxExprLen {
		return nil, fmt.Errorf("expression longer than %d bytes", maxExprLen)
	}
	e, err := celEnv()
	if err != nil {
		return nil, err
	}
	a, iss := e.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(strings.TrimSpace(iss.Err().Error()))
	}
	// dyn is let through (claims.flags.beta): Eval refuses a value that is not a bool.
	if t := a.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("the expression gives %s; a condition must give a bool", t)
	}
	p := &Program{src: src}
	if err := p.inspect(a.NativeRep()); err != nil {
		return nil, err
	}
	p.prg, err = e.Program(a, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(CostLimit))
	if err != nil {
		return nil, err
	}
	return p, nil
}

// inspect finds the claims an expression reads, and refuses reads it cannot name: with
// claims[x] for a computed x, mcp-authz could not know which claims to keep.
func (p *Program) inspect(a *ast.AST) error {
	// claims, request.headers and mcp.arguments are maps whose members a condition should
	// name by constants; each occurrence either is such a read or counts as a read of the
	// whole map.
	claims := &namedReads{is: func(e ast.Expr) bool { return isIdent(e, "claims") }}
	headers := &namedReads{is: func(e ast.Expr) bool { return isField(e, "request", "headers") }, lower: true}
	args := &namedReads{is: func(e ast.Expr) bool { return isField(e, "mcp", "arguments") }}
	maps := []*namedReads{claims, headers, args}
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		for _, m := range maps {
			if m.is(e) {
				m.uses++
			}
		}
		switch e.Kind() {
		case ast.IdentKind:
			switch e.AsIdent() {
			case "scopes":
				p.UsesScopes = true
			case "mcp":
				p.UsesMCP = true
			}
		case ast.SelectKind:
			s := e.AsSelect()
			for _, m := range maps {
				if m.is(s.Operand()) {
					m.add(s.FieldName())
				}
			}
			if isField(e, "mcp", "arguments") {
				p.UsesArguments = true
			}
		case ast.CallKind:
			c := e.AsCall()
			xs := c.Args()
			if len(xs) != 2 {
				return
			}
			// The map and the member name: claims["x"], claims.?x, claims[?"x"]; "x" in claims.
			container, name := xs[0], xs[1]
			switch c.FunctionName() {
			case operators.Index, operators.OptIndex, operators.OptSelect:
				if isIdent(container, "mcp") {
					if n, ok := constName(name); !ok || n == "arguments" {
						p.UsesArguments = true
						p.AllArgs = true // mcp["arguments"]: not followed member by member
					}
				}
			case operators.In:
				container, name = xs[1], xs[0]
			default:
				return
			}
			for _, m := range maps {
				if n, ok := constName(name); ok && m.is(container) {
					m.add(n)
				}
			}
		}
	}))
	if claims.uses != claims.named {
		return errors.New(`read claims by constant names only (claims.groups, claims["tenant"], has(claims.x), "x" in claims), so mcp-authz knows which claims to keep`)
	}
	p.Claims, p.Headers, p.ArgKeys = claims.names, headers.names, args.names
	slices.Sort(p.Claims)
	slices.Sort(p.Headers)
	p.AllHeaders = headers.uses != headers.named
	p.AllArgs = p.AllArgs || args.uses != args.named
	return nil
}

// namedReads collects the constant member names read of one map variable.
type namedReads struct {
	is          func(ast.Expr) bool // the map expression
	lower       bool                // names are case-insensitive (header names)
	uses, named int                 // occurrences of the map; those that were reads of a named member
	names       []string
}

func (m *namedReads) add(n string) {
	m.named++
	if m.lower {
		n = strings.ToLower(n)
	}
	if !slices.Contains(m.names, n) {
		m.names = append(m.names, n)
	}
}

func isIdent(e ast.Expr, name string) bool {
	return e.Kind() == ast.IdentKind && e.AsIdent() == name
}

// isField reports whether e is the field selection ident.field (request.headers).
func isField(e ast.Expr, ident, field string) bool {
	if e.Kind() != ast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return s.FieldName() == field && isIdent(s.Operand(), ident)
}

func constName(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// Input is what a condition is evaluated against. Claims hold each kept claim's JSON text.
type Input struct {
	Claims   map[string]string
	Scopes   []string
	ClientID string
	Subject  string
	Issuer   string

	Method    string // MCP JSON-RPC method, "" for a request with no MCP operation
	Name      string // the operation's target (tool, prompt, resource URI)
	Arguments []byte // JSON text of params.arguments, nil when absent or not read
	Params    map[string]string

	HTTPMethod string
	Path       string
	Headers    map[string]string

	claims map[string]any // decoded on first use, kept for the other rules of the Check
	args   map[string]any // likewise for Arguments
	// mcpVal and reqVal are the mcp and request variables, built once per Check (mcpVal
	// without arguments until a program reads them: mcpArgs).
	mcpVal, reqVal ref.Val
	mcpArgs        bool
	// prog is the program being evaluated: which arguments it reads decides what is decoded
	// (decoding them costs more than the rest of a condition).
	prog     *Program
	wantArgs bool
	// argsTried: the argument names looked for so far (argsAll: all of them).
	argsTried []string
	argsAll   bool
}

// Eval runs the condition. Any failure (a claim the token lacks, a type mismatch, the cost
// limit) is an error, and the caller denies on it.
func (p *Program) Eval(in *Input) (bool, error) {
	in.wantArgs, in.prog = p.UsesArguments, p
	v, _, err := p.prg.Eval(activation{in})
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition gave %s, not a bool", v.Type())
	}
	return bool(b), nil
}

// noParams stands for a request without Mcp-Param-* headers; CEL never modifies a map.
var noParams = map[string]string{}

// activation resolves the variables lazily: most rules read one or two of them.
type activation struct{ in *Input }

func (a activation) Parent() interpreter.Activation { return nil }

func (a activation) ResolveName(name string) (any, bool) {
	in := a.in
	switch name {
	case "claims":
		return in.decodedClaims(), true
	case "scopes":
		if in.Scopes == nil {
			return []string{}, true
		}
		return in.Scopes, true
	case "client_id":
		return in.ClientID, true
	case "subject":
		return in.Subject, true
	case "issuer":
		return in.Issuer, true
	case "mcp":
		if in.mcpVal != nil && (!in.wantArgs || in.mcpArgs && in.argsCover(in.prog)) {
			return in.mcpVal, true
		}
		m := map[string]any{"method": in.Method, "name": in.Name}
		if in.wantArgs {
			in.decodeArgs(in.prog)
			m["arguments"] = in.args
			in.mcpArgs = true
		}
		if in.Params != nil {
			m["params"] = in.Params
		} else {
			m["params"] = noParams
		}
		in.mcpVal = types.DefaultTypeAdapter.NativeToValue(m)
		return in.mcpVal, true
	case "request":
		if in.reqVal == nil {
			h := in.Headers
			if h == nil {
				h = map[string]string{}
			}
			in.reqVal = types.DefaultTypeAdapter.NativeToValue(map[string]any{
				"method": in.HTTPMethod, "path": in.Path, "headers": h,
			})
		}
		return in.reqVal, true
	}
	return nil, false
}

// argsCover says whether the arguments decoded so far include what p reads.
func (in *Input) argsCover(p *Program) bool {
	if in.argsAll {
		return true
	}
	if p.AllArgs {
		return false
	}
	for _, k := range p.ArgKeys {
		if !slices.Contains(in.argsTried, k) {
			return false
		}
	}
	return true
}

// decodeArgs decodes the tool arguments p reads into in.args: the members it names, or all of
// them. A tools/call's arguments are often large (documents, queries) and rules read a few.
func (in *Input) decodeArgs(p *Program) {
	if in.args == nil {
		in.args = map[string]any{}
	}
	if in.argsCover(p) || len(in.Arguments) == 0 {
		return
	}
	if p.AllArgs {
		in.argsAll = true
		if o, ok := decodeJSON(in.Arguments).(map[string]any); ok {
			in.args = o
		}
		return
	}
	n := len(in.argsTried)
	for _, k := range p.ArgKeys {
		if !slices.Contains(in.argsTried, k) {
			in.argsTried = append(in.argsTried, k)
		}
	}
	decodeMembers(in.Arguments, in.argsTried[n:], in.args)
}

func (in *Input) decodedClaims() ref.Val {
	if in.claims == nil {
		in.claims = make(map[string]any, len(in.Claims))
		for k, raw := range in.Claims {
			// The text came from a token payload or an introspection answer that was read
			// strictly (no duplicate or case-variant names): plain decoding is unambiguous.
			if v, ok := simpleJSON(raw); ok {
				in.claims[k] = v
			} else if v := decodeJSON([]byte(raw)); v != nil {
				in.claims[k] = v
			}
		}
	}
	return types.DefaultTypeAdapter.NativeToValue(in.claims)
}

// decodeJSON decodes JSON text into the values CEL adapts (map[string]any, []any, string,
// bool, int64, float64), nil for null or text that is not JSON. Numbers without a fraction
// become ints, so that claims.level + 1 and mcp.arguments.count * 2 type-check as users write
// them; CEL compares ints and doubles with each other either way. It reads tokens with no
// reflection: it runs for each claim and the arguments a Check's conditions read.
func decodeJSON(raw []byte) any {
	d := decoders.Get().(*decoder)
	defer func() {
		d.rd.Reset(nil)
		decoders.Put(d)
	}()
	d.rd.Reset(raw)
	d.dec.Reset(&d.rd)
	v, err := d.value(0)
	if err != nil {
		return nil
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil // trailing data
	}
	return v
}

// simpleJSON decodes the shapes most claims have (a string without escapes, an array of such
// strings, a small integer, true, false) without a decoder; ok is false for anything else,
// which decodeJSON then reads. raw is compact or not; JSON whitespace is allowed around
// array elements.
func simpleJSON(raw string) (any, bool) {
	switch {
	case raw == "true":
		return true, true
	case raw == "false":
		return false, true
	case len(raw) >= 2 && raw[0] == '"':
		s, rest, ok := simpleString(raw)
		return s, ok && rest == ""
	case len(raw) >= 2 && raw[0] == '[':
		l := []any{}
		rest := skipWS(raw[1:])
		if rest != "" && rest[0] == ']' {
			return l, skipWS(rest[1:]) == ""
		}
		for {
			s, r, ok := simpleString(rest)
			if !ok {
				return nil, false
			}
			l = append(l, s)
			r = skipWS(r)
			switch {
			case r == "":
				return nil, false
			case r[0] == ',':
				rest = skipWS(r[1:])
			case r[0] == ']':
				return l, skipWS(r[1:]) == ""
			default:
				return nil, false
			}
		}
	case len(raw) > 0 && len(raw) <= 15 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		if raw == "-" || len(raw) > 1 && (raw[0] == '0' || raw[0] == '-' && raw[1] == '0') {
			return nil, false // leading zeros and "-0…" go to the decoder
		}
		var n int64
		for i, c := range []byte(raw) {
			if i == 0 && c == '-' {
				continue
			}
			if c < '0' || c > '9' {
				return nil, false
			}
			n = n*10 + int64(c-'0')
		}
		if raw[0] == '-' {
			n = -n
		}
		return n, true
	}
	return nil, false
}

// simpleString reads a JSON string at the start of s that has no escapes and no control
// characters (strictjson has checked the UTF-8).
func simpleString(s string) (string, string, bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], s[i+1:], true
		case c == '\\' || c < 0x20:
			return "", "", false
		}
	}
	return "", "", false
}

func skipWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	return s
}

// decodeMembers decodes the named members of a JSON object into out, skipping the others
// without building them. Text that is not one JSON object decodes nothing.
func decodeMembers(raw []byte, names []string, out map[string]any) {
	d := decoders.Get().(*decoder)
	defer func() {
		d.rd.Reset(nil)
		decoders.Put(d)
	}()
	d.rd.Reset(raw)
	d.dec.Reset(&d.rd)
	if tok, err := d.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return
	}
	// The text was read strictly before (a body checked by strictjson): a member decoded
	// before an error would be decoded the same way after it.
	for d.dec.PeekKind() != '}' {
		k, err := d.dec.ReadToken()
		if err != nil {
			return
		}
		name := k.String()
		if !slices.Contains(names, name) {
			if d.dec.SkipValue() != nil {
				return
			}
			continue
		}
		v, err := d.value(1)
		if err != nil {
			return
		}
		out[name] = v
	}
}

// maxDepth bounds nesting (the decoder's own limit is higher): claims are at most 4 KiB, and
// a condition has no use for deeper arguments.
const maxDepth = 64

type decoder struct {
	rd  bytes.Reader
	dec *jsontext.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := new(decoder)
	d.dec = jsontext.NewDecoder(&d.rd)
	return d
}}

var errDepth = errors.New("nested too deeply")

func (d *decoder) value(depth int) (any, error) {
	if depth >= maxDepth {
		return nil, errDepth
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't', 'f':
		return tok.Bool(), nil
	case '"':
		return tok.String(), nil
	case '0':
		f, err := tok.Float()
		if err != nil {
			return nil, err // out of range: 1e400
		}
		if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case '[':
		l := []any{}
		for d.dec.PeekKind() != ']' {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := d.dec.ReadToken()
		return l, err
	case '{':
		m := map[string]any{}
		for d.dec.PeekKind() != '}' {
			k, err := d.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := k.String() // before the next read voids k
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[name] = v
		}
		_, err := d.dec.ReadToken()
		return m, err
	}
	return nil, fmt.Errorf("unexpected %v", tok.Kind())
}

// Glob reports whether s matches pattern, where "*" matches any run of characters (also "/")
// and every other character only itself.
func Glob(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	// Iterative matching with one backtrack point: linear in practice, never exponential.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
