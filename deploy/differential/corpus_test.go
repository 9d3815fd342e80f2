package differential

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf16"
)

// A body of the corpus. class groups bodies for the report: every hand-written body is its
// own class; generated ones are classed by the mutations that made them.
type body struct {
	class string
	data  []byte
}

// The modern (2026-07-28) per-request envelope, which the 2.x TypeScript SDK and the Go SDK
// route to their modern path.
const envelope = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"differential","version":"1.0.0"}}`

func call(params string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
}

// handBodies: what an attacker would try first, one class each.
func handBodies() []body {
	del := call(`{"name":"delete_file","arguments":{"path":"/etc/passwd"}}`)
	echo := call(`{"name":"echo","arguments":{"text":"hi"}}`)
	bom := "\xef\xbb\xbf"
	long := strings.Repeat("a", 100_000)
	deep := func(n int) string {
		return call(`{"name":"echo","arguments":{"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`)
	}
	batch := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo"}}`, i+1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	utf16le := func(s string) string {
		var b strings.Builder
		b.WriteString("\xff\xfe")
		for _, u := range utf16.Encode([]rune(s)) {
			b.WriteByte(byte(u))
			b.WriteByte(byte(u >> 8))
		}
		return b.String()
	}
	list := []struct{ class, data string }{
		// Plain operations: every upstream must agree with mcp-authz on these.
		{"plain tools/call delete_file", del},
		{"plain tools/call echo", echo},
		{"plain tools/call unknown tool", call(`{"name":"nope"}`)},
		{"plain prompts/get", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"greet","arguments":{"who":"x"}}}`},
		{"plain resources/read", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///notes.txt"}}`},
		{"plain resources/subscribe", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///notes.txt"}}`},
		{"plain resources/unsubscribe", `{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":"file:///notes.txt"}}`},
		{"plain ping", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{"plain tools/list", `{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}`},
		{"plain initialize", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`},
		{"plain notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{"tools/call as a notification (no id)", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_file"}}`},
		{"a response, no method", `{"jsonrpc":"2.0","id":1,"result":{}}`},
		{"modern envelope tools/call", call(`{"name":"delete_file",` + envelope + `}`)},
		{"modern envelope ping", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{` + envelope + `}}`},
		{"modern envelope NAME variant", call(`{"name":"echo","NAME":"delete_file",` + envelope + `}`)},

		// Case-variant member names (issue 14 §1).
		{"params NAME after name", call(`{"name":"echo","NAME":"delete_file"}`)},
		{"params NAME before name", call(`{"NAME":"delete_file","name":"echo"}`)},
		{"params Name only", call(`{"Name":"delete_file"}`)},
		{"params nAmE after name", call(`{"name":"delete_file","nAmE":"echo"}`)},
		{"top-level Method after method", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"delete_file"}}`},
		{"top-level Method before method", `{"jsonrpc":"2.0","id":1,"Method":"ping","method":"tools/call","params":{"name":"delete_file"}}`},
		{"top-level METHOD only", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"delete_file"}}`},
		{"top-level PARAMS after params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"PARAMS":{"name":"delete_file"}}`},
		{"top-level Params only", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"delete_file"}}`},
		{"top-level paramſ (U+017F) after params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"paramſ":{"name":"delete_file"}}`},
		{"top-level param\\u017f escaped", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"param\u017f":{"name":"delete_file"}}`},
		{"top-level JSONRPC variant", `{"JSONRPC":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"top-level ID variant", `{"jsonrpc":"2.0","ID":1,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"params URI variant", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a","URI":"file:///secret"}}`},

		// Exact duplicates.
		{"duplicate name", call(`{"name":"echo","name":"delete_file"}`)},
		{"duplicate name reversed", call(`{"name":"delete_file","name":"echo"}`)},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete_file"}}`},
		{"duplicate params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"params":{"name":"delete_file"}}`},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"echo"}}`},
		{"duplicate jsonrpc", `{"jsonrpc":"1.0","jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`},
		{"duplicate uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a","uri":"file:///b"}}`},
		{"duplicate arguments", call(`{"name":"echo","arguments":{},"arguments":{"x":1}}`)},

		// Escapes in names and values.
		{"escaped key n\\u0061me", call(`{"n\u0061me":"delete_file"}`)},
		{"escaped key dup name + n\\u0061me", call(`{"name":"echo","n\u0061me":"delete_file"}`)},
		{"escaped key me\\u0074hod", `{"jsonrpc":"2.0","id":1,"me\u0074hod":"tools/call","params":{"name":"delete_file"}}`},
		{"escaped key dup method + me\\u0074hod", `{"jsonrpc":"2.0","id":1,"method":"ping","me\u0074hod":"tools/call","params":{"name":"delete_file"}}`},
		{"escaped key p\\u0061rams", `{"jsonrpc":"2.0","id":1,"method":"tools/call","p\u0061rams":{"name":"delete_file"}}`},
		{"escaped value d\\u0065lete_file", call(`{"name":"d\u0065lete_file"}`)},
		{"escaped value tools\\/call", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"delete_file"}}`},
		{"escaped value \\u0074ools/call", `{"jsonrpc":"2.0","id":1,"method":"\u0074ools/call","params":{"name":"delete_file"}}`},
		{"escaped NUL in name", call(`{"name":"delete_file\u0000"}`)},
		{"escaped key name\\u0000", call(`{"name":"echo","name\u0000":"delete_file"}`)},

		// Surrogates and UTF-8.
		{"lone high surrogate in name", call(`{"name":"delete_file\ud800"}`)},
		{"lone low surrogate in name", call(`{"name":"\udc00delete_file"}`)},
		{"lone surrogate in key", call(`{"name":"echo","name\ud800":"delete_file"}`)},
		{"lone surrogate in method", `{"jsonrpc":"2.0","id":1,"method":"tools/call\udfff","params":{"name":"delete_file"}}`},
		{"surrogate pair in name", call(`{"name":"echo\ud83d\ude00"}`)},
		{"invalid UTF-8 in name", call("{\"name\":\"delete_file\xff\"}")},
		{"invalid UTF-8 in arguments", call("{\"name\":\"echo\",\"arguments\":{\"t\":\"\xc3\x28\"}}")},
		{"overlong UTF-8 slash in method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools\xc0\xafcall\",\"params\":{\"name\":\"delete_file\"}}"},
		{"non-ASCII name délete_file", call(`{"name":"délete_file"}`)},
		{"non-ASCII name NFD", call("{\"name\":\"de\u0301lete_file\"}")},
		{"fullwidth name", call(`{"name":"ｄｅｌｅｔｅ_file"}`)},
		{"name with trailing space", call(`{"name":"delete_file "}`)},
		{"name with leading tab", call(`{"name":"\tdelete_file"}`)},
		{"name upper case", call(`{"name":"DELETE_FILE"}`)},
		{"very long name", call(`{"name":"` + long + `"}`)},
		{"very long method", `{"jsonrpc":"2.0","id":1,"method":"` + long + `"}`},
		{"__proto__ params member", call(`{"__proto__":{"name":"delete_file"}}`)},
		{"name constructor", call(`{"name":"constructor"}`)},
		{"method constructor", `{"jsonrpc":"2.0","id":1,"method":"constructor"}`},
		{"method __proto__", `{"jsonrpc":"2.0","id":1,"method":"__proto__"}`},

		// Byte order marks, whitespace and trailing data.
		{"BOM before object", bom + del},
		{"BOM before batch", bom + "[" + del + "]"},
		{"whitespace around", " \t\r\n" + del + " \t\r\n"},
		{"form feed before", "\f" + del},
		{"vertical tab before", "\v" + del},
		{"NBSP before", "\u00a0" + del},
		{"trailing x", del + "x"},
		{"trailing second object", echo + del},
		{"trailing second object after newline", echo + "\n" + del},
		{"trailing NUL", del + "\x00"},
		{"trailing comma", del[:len(del)-1] + ",}"},
		{"UTF-16LE body", utf16le(del)},
		{"comment inside", `{"jsonrpc":"2.0","id":1,/* c */"method":"tools/call","params":{"name":"delete_file"}}`},
		{"single quotes", `{'jsonrpc':'2.0','id':1,'method':'tools/call','params':{'name':'delete_file'}}`},
		{"truncated", del[:len(del)-3]},
		{"empty body", ``},
		{"only whitespace", "  \n"},
		{"null body", `null`},
		{"string body", `"tools/call"`},

		// Nesting and other places a name could hide.
		{"name only in arguments", call(`{"arguments":{"name":"delete_file"}}`)},
		{"name in nested params", call(`{"name":"echo","params":{"name":"delete_file"}}`)},
		{"name in _meta", call(`{"name":"echo","_meta":{"name":"delete_file"}}`)},
		{"deep arguments 500", deep(500)},
		{"deep arguments 1001", deep(1001)},
		{"deep arguments 5000", deep(5000)},

		// Batches.
		{"batch echo + delete_file", "[" + echo + "," + del + "]"},
		{"batch single", "[" + del + "]"},
		{"batch empty", `[]`},
		{"batch nested", "[[" + del + "]]"},
		{"batch with NAME variant element", "[" + echo + "," + call(`{"name":"echo","NAME":"delete_file"}`) + "]"},
		{"batch with response + request", `[{"jsonrpc":"2.0","id":9,"result":{}},` + del + "]"},
		{"batch with notification + request", `[{"jsonrpc":"2.0","method":"notifications/initialized"},` + del + "]"},
		{"batch with initialize", `[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}},` + del + "]"},
		{"batch with garbage element", "[" + del + ",1]"},
		{"batch 100", batch(100)},
		{"batch 101", batch(101)},
		{"batch with modern envelope element", "[" + call(`{"name":"delete_file",`+envelope+`}`) + "]"},
		{"batch trailing data", "[" + echo + "]" + del},

		// Numbers vs strings and other types.
		{"id string", `{"jsonrpc":"2.0","id":"1","method":"tools/call","params":{"name":"delete_file"}}`},
		{"id float", `{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"id 1e400", `{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"id -0", `{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"id 2^53+1", `{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"id null", `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"id true", `{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"id object", `{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{"name":"delete_file"}}`},
		{"jsonrpc number 2.0", `{"jsonrpc":2.0,"id":1,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"jsonrpc missing", `{"id":1,"method":"tools/call","params":{"name":"delete_file"}}`},
		{"method number", `{"jsonrpc":"2.0","id":1,"method":1,"params":{"name":"delete_file"}}`},
		{"method null", `{"jsonrpc":"2.0","id":1,"method":null,"params":{"name":"delete_file"}}`},
		{"name number", call(`{"name":1}`)},
		{"name array", call(`{"name":["delete_file"]}`)},
		{"name object", call(`{"name":{"name":"delete_file"}}`)},
		{"name null", call(`{"name":null}`)},
		{"name true", call(`{"name":true}`)},
		{"uri number", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":1}}`},
		{"params null", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`},
		{"params null ping", `{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`},
		{"params array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["delete_file"]}`},
		{"params array ping", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`},
		{"params string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"delete_file"}`},
		{"params missing tools/call", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`},
		{"params empty tools/call", call(`{}`)},
		{"method and result", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"},"result":{}}`},
		{"method and error", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"},"error":{"code":1,"message":"x"}}`},

		// Method spellings.
		{"method trailing space", `{"jsonrpc":"2.0","id":1,"method":"tools/call ","params":{"name":"delete_file"}}`},
		{"method upper case", `{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"delete_file"}}`},
		{"method with NUL", `{"jsonrpc":"2.0","id":1,"method":"tools/call\u0000","params":{"name":"delete_file"}}`},
		{"method resources/read with name", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"delete_file","uri":"file:///x"}}`},
	}
	out := make([]body, len(list))
	for i, b := range list {
		out[i] = body{class: b.class, data: []byte(b.data)}
	}
	return out
}

// The generator: a fixed seed, so every run sends the same bodies (a failure names its body
// and reproduces); templates mutated by what a parser differential feeds on.
const (
	genSeed1, genSeed2 = 0x6d63702d, 0x617574687a // "mcp-", "authz"
	genCount           = 2000
)

// node is a JSON value kept as the text the mutations work on: keys and strings are their
// JSON literals (quotes and escapes included), so a mutation can choose the spelling.
type node struct {
	kind    byte // '{', '[', or 0 for a scalar literal
	members []member
	elems   []*node
	lit     string
}

type member struct {
	key string // JSON literal, with quotes
	val *node
}

func obj(ms ...member) *node     { return &node{kind: '{', members: ms} }
func m(k string, v *node) member { return member{key: `"` + k + `"`, val: v} }
func str(s string) *node         { return &node{lit: `"` + s + `"`} }
func lit(s string) *node         { return &node{lit: s} }

func (n *node) clone() *node {
	c := &node{kind: n.kind, lit: n.lit}
	for _, mm := range n.members {
		c.members = append(c.members, member{mm.key, mm.val.clone()})
	}
	for _, e := range n.elems {
		c.elems = append(c.elems, e.clone())
	}
	return c
}

func templates() []*node {
	req := func(method string, params *node) *node {
		ms := []member{m("jsonrpc", str("2.0")), m("id", lit("1")), m("method", str(method))}
		if params != nil {
			ms = append(ms, m("params", params))
		}
		return obj(ms...)
	}
	env := func(ms ...member) *node {
		return obj(append(ms, m("_meta", obj(
			m("io.modelcontextprotocol/protocolVersion", str("2026-07-28")),
			m("io.modelcontextprotocol/clientCapabilities", obj()),
			m("io.modelcontextprotocol/clientInfo", obj(m("name", str("d")), m("version", str("1")))))))...)
	}
	return []*node{
		req("tools/call", obj(m("name", str("delete_file")), m("arguments", obj(m("path", str("/x")))))),
		req("tools/call", obj(m("name", str("echo")), m("arguments", obj(m("text", str("hi")))))),
		req("tools/call", env(m("name", str("delete_file")))),
		req("prompts/get", obj(m("name", str("greet")))),
		req("resources/read", obj(m("uri", str("file:///notes.txt")))),
		req("resources/subscribe", obj(m("uri", str("file:///notes.txt")))),
		req("ping", nil),
		req("tools/list", obj()),
		req("resources/read", env(m("uri", str("file:///notes.txt")))),
	}
}

// Values a duplicate or a replacement takes, by the member it imitates.
var alternatives = map[string][]string{
	`"name"`:    {`"echo"`, `"delete_file"`, `"greet"`},
	`"method"`:  {`"ping"`, `"tools/call"`, `"tools/list"`, `"prompts/get"`},
	`"uri"`:     {`"file:///secret"`, `"file:///notes.txt"`},
	`"params"`:  {`{"name":"delete_file"}`, `{"name":"echo"}`, `{}`},
	`"jsonrpc"`: {`"2.0"`, `"1.0"`},
	`"id"`:      {`1`, `"x"`, `null`},
}

type mutation struct {
	name  string
	apply func(r *rand.Rand, n *node) *node
}

func mutations() []mutation {
	return []mutation{
		{"key-case", func(r *rand.Rand, n *node) *node {
			if mm := pickMember(r, n); mm != nil {
				mm.key = flipCase(r, mm.key)
			}
			return n
		}},
		{"dup", func(r *rand.Rand, n *node) *node {
			if o := pickObject(r, n); o != nil && len(o.members) > 0 {
				src := o.members[r.IntN(len(o.members))]
				d := member{src.key, altValue(r, src)}
				insertMember(r, o, d)
			}
			return n
		}},
		{"case-dup", func(r *rand.Rand, n *node) *node {
			if o := pickObject(r, n); o != nil && len(o.members) > 0 {
				src := o.members[r.IntN(len(o.members))]
				insertMember(r, o, member{flipCase(r, src.key), altValue(r, src)})
			}
			return n
		}},
		{"reorder", func(r *rand.Rand, n *node) *node {
			if o := pickObject(r, n); o != nil {
				r.Shuffle(len(o.members), func(i, j int) { o.members[i], o.members[j] = o.members[j], o.members[i] })
			}
			return n
		}},
		{"escape", func(r *rand.Rand, n *node) *node {
			if r.IntN(2) == 0 {
				if mm := pickMember(r, n); mm != nil {
					mm.key = escapeOne(r, mm.key)
				}
			} else if s := pickString(r, n); s != nil {
				s.lit = escapeOne(r, s.lit)
			}
			return n
		}},
		{"surrogate", func(r *rand.Rand, n *node) *node {
			if s := pickString(r, n); s != nil && len(s.lit) >= 2 {
				sur := []string{`\ud800`, `\udfff`, `\ud83d\ude00`, `\uDBFF`}[r.IntN(4)]
				i := 1 + r.IntN(len(s.lit)-1)
				s.lit = s.lit[:i] + sur + s.lit[i:]
			}
			return n
		}},
		{"retype", func(r *rand.Rand, n *node) *node {
			if mm := pickMember(r, n); mm != nil {
				mm.val = lit([]string{`null`, `1`, `[]`, `["delete_file"]`, `{}`, `true`, `"delete_file"`, `1e999`}[r.IntN(8)])
			}
			return n
		}},
		{"drop", func(r *rand.Rand, n *node) *node {
			if o := pickObject(r, n); o != nil && len(o.members) > 0 {
				i := r.IntN(len(o.members))
				o.members = slices.Delete(o.members, i, i+1)
			}
			return n
		}},
		{"nest", func(r *rand.Rand, n *node) *node {
			if o := pickObject(r, n); o != nil {
				inner := obj(m("name", str("delete_file")), m("method", str("tools/call")))
				insertMember(r, o, member{[]string{`"params"`, `"arguments"`, `"_meta"`, `"request"`}[r.IntN(4)], inner})
			}
			return n
		}},
		{"batch", func(r *rand.Rand, n *node) *node {
			other := obj(m("jsonrpc", str("2.0")), m("id", lit("7")), m("method", str("tools/call")), m("params", obj(m("name", str("echo")))))
			elems := []*node{n}
			switch r.IntN(3) {
			case 1:
				elems = append([]*node{other}, elems...)
			case 2:
				elems = append(elems, other)
			}
			return &node{kind: '[', elems: elems}
		}},
	}
}

// generated returns genCount distinct bodies from the fixed seed: each a template with one to four
// mutations, then whitespace inserted between tokens, and rarely a BOM or trailing data.
func generated() []body {
	r := rand.New(rand.NewPCG(genSeed1, genSeed2))
	tmpl := templates()
	muts := mutations()
	out := make([]body, 0, genCount)
	seen := map[string]bool{}
	for len(out) < genCount {
		n := tmpl[r.IntN(len(tmpl))].clone()
		var names []string
		for range 1 + r.IntN(4) {
			mu := muts[r.IntN(len(muts))]
			n = mu.apply(r, n)
			names = append(names, mu.name)
		}
		var b strings.Builder
		ws := r.IntN(4) == 0
		if ws {
			names = append(names, "whitespace")
		}
		switch r.IntN(40) {
		case 0:
			b.WriteString("\xef\xbb\xbf")
			names = append(names, "bom")
		case 1:
			b.WriteString("\f")
			names = append(names, "bad-whitespace")
		}
		write(&b, r, n, ws)
		switch r.IntN(40) {
		case 0:
			b.WriteString(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file"}}`)
			names = append(names, "trailing-object")
		case 1:
			b.WriteString("\x00")
			names = append(names, "trailing-nul")
		}
		if seen[b.String()] {
			continue
		}
		seen[b.String()] = true
		slices.Sort(names)
		out = append(out, body{class: "gen: " + strings.Join(slices.Compact(names), "+"), data: []byte(b.String())})
	}
	return out
}

func write(b *strings.Builder, r *rand.Rand, n *node, ws bool) {
	space := func() {
		if ws && r.IntN(3) == 0 {
			b.WriteString([]string{" ", "\t", "\r\n", "\n  "}[r.IntN(4)])
		}
	}
	space()
	switch n.kind {
	case '{':
		b.WriteByte('{')
		for i, mm := range n.members {
			if i > 0 {
				b.WriteByte(',')
			}
			space()
			b.WriteString(mm.key)
			space()
			b.WriteByte(':')
			write(b, r, mm.val, ws)
		}
		space()
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, e := range n.elems {
			if i > 0 {
				b.WriteByte(',')
			}
			write(b, r, e, ws)
		}
		space()
		b.WriteByte(']')
	default:
		b.WriteString(n.lit)
	}
	space()
}

// walk visits every object and every string literal below n.
func walk(n *node, objs *[]*node, strs *[]*node) {
	switch n.kind {
	case '{':
		*objs = append(*objs, n)
		for _, mm := range n.members {
			walk(mm.val, objs, strs)
		}
	case '[':
		for _, e := range n.elems {
			walk(e, objs, strs)
		}
	default:
		if strings.HasPrefix(n.lit, `"`) {
			*strs = append(*strs, n)
		}
	}
}

func pickObject(r *rand.Rand, n *node) *node {
	var objs, strs []*node
	walk(n, &objs, &strs)
	if len(objs) == 0 {
		return nil
	}
	return objs[r.IntN(len(objs))]
}

func pickMember(r *rand.Rand, n *node) *member {
	var objs, strs []*node
	walk(n, &objs, &strs)
	var all []*member
	for _, o := range objs {
		for i := range o.members {
			all = append(all, &o.members[i])
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all[r.IntN(len(all))]
}

func pickString(r *rand.Rand, n *node) *node {
	var objs, strs []*node
	walk(n, &objs, &strs)
	if len(strs) == 0 {
		return nil
	}
	return strs[r.IntN(len(strs))]
}

func insertMember(r *rand.Rand, o *node, mm member) {
	o.members = slices.Insert(o.members, r.IntN(len(o.members)+1), mm)
}

func altValue(r *rand.Rand, src member) *node {
	if alts, ok := alternatives[src.key]; ok {
		return lit(alts[r.IntN(len(alts))])
	}
	return src.val.clone()
}

// flipCase changes the case of one letter of a JSON string literal, or turns an s into
// U+017F or a k into U+212A (both fold to ASCII under Unicode simple case folding).
func flipCase(r *rand.Rand, literal string) string {
	var idx []int
	for i := 1; i < len(literal)-1; i++ {
		c := literal[i]
		if c == '\\' {
			i++ // keep escapes intact
			continue
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return literal
	}
	i := idx[r.IntN(len(idx))]
	c := literal[i]
	switch {
	case c == 's' && r.IntN(3) == 0:
		return literal[:i] + "ſ" + literal[i+1:]
	case c == 'k' && r.IntN(3) == 0:
		return literal[:i] + "\u212a" + literal[i+1:]
	case c >= 'a' && c <= 'z':
		return literal[:i] + string(c-32) + literal[i+1:]
	default:
		return literal[:i] + string(c+32) + literal[i+1:]
	}
}

// escapeOne writes one ASCII character of a JSON string literal as \uXXXX (hex case chosen
// at random): the same string to a JSON parser, different bytes to a scanner.
func escapeOne(r *rand.Rand, literal string) string {
	var idx []int
	for i := 1; i < len(literal)-1; i++ {
		if literal[i] == '\\' {
			i++
			continue
		}
		if literal[i] < 0x80 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return literal
	}
	i := idx[r.IntN(len(idx))]
	esc := fmt.Sprintf(`\u%04x`, literal[i])
	if r.IntN(2) == 0 {
		esc = fmt.Sprintf(`\u%04X`, literal[i])
	}
	return literal[:i] + esc + literal[i+1:]
}
