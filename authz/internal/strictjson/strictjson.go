// Package strictjson reads JSON that a security decision depends on: JSON-RPC bodies, JWT
// headers and payloads, introspection answers and authorization-server metadata.
//
// encoding/json matches member names case-insensitively, with Unicode folding ("ſ" is "s",
// "K" is "k"), and the last of two duplicates wins. Other parsers (JavaScript's JSON.parse and
// zod, Python, Go's JSON v2) match exactly and keep the first or the last. A gate that reads
// {"name":"a","NAME":"b"} differently from the upstream that acts on it can be talked past,
// so here such a document is an error, never a choice:
//   - member names match exactly (github.com/go-json-experiment/json, the JSON v2 prototype);
//   - a duplicate member name anywhere in the document is an error (RFC 8259 §4 leaves
//     duplicates to the implementation; RFC 7493 I-JSON forbids them);
//   - two names in one object that are equal under Unicode simple case folding are an error
//     (in every object for Unmarshal, in the object read for Object);
//   - invalid UTF-8, and escapes of lone surrogates, are errors (RFC 7493 §2.1);
//   - the document is exactly one value, with nothing but white space after it.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ErrAmbiguous marks a document that two reasonable parsers could read differently.
var ErrAmbiguous = errors.New("ambiguous JSON")

// Unmarshal decodes data into v after Check. Struct fields match member names exactly
// (JSON v2's default); unknown members are ignored.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// Check reports whether data is one unambiguous JSON value: valid syntax and UTF-8, no
// duplicate names, and no two names in any one object that differ only in case.
//
// It runs on every uncached token verification (JWT header and payload, introspection
// answers), so its state is pooled and names are compared as folded bytes, without a
// string or a map per name; objects with many names switch to a set (see checker.name).
func Check(data []byte) error {
	c := checkers.Get().(*checker)
	err := c.check(data)
	c.rd.Reset(nil) // drop the caller's bytes
	if len(data) <= maxPooled {
		c.dec.Reset(&c.rd)
		checkers.Put(c)
	}
	return err
}

// maxPooled: a checker that read a bigger document holds buffers that size; it is dropped
// rather than kept for the next, usually small, document.
const maxPooled = 64 << 10

// linearNames is how many names of one object are compared one by one before they move to
// a set: cheaper than a map for the few members of real tokens, and no quadratic cost for an
// object with thousands.
const linearNames = 16

var checkers = sync.Pool{New: func() any {
	c := new(checker)
	c.dec = jsontext.NewDecoder(&c.rd)
	return c
}}

// checker is the reusable state of one Check.
type checker struct {
	rd      bytes.Reader
	dec     *jsontext.Decoder
	keys    []byte  // folded names of the open objects' linear frames, back to back
	ends    []int   // end offset in keys of each of those names
	frames  []frame // open objects and arrays, outermost first
	scratch []byte  // unescaped name
}

type frame struct {
	object bool
	ends   int                 // where this object's names start in checker.ends …
	keys   int                 // … and in checker.keys
	set    map[string]struct{} // folded names, once there are more than linearNames
}

func (c *checker) check(data []byte) error {
	c.rd.Reset(data)
	c.dec.Reset(&c.rd)
	c.keys, c.ends, c.frames = c.keys[:0], c.ends[:0], c.frames[:0]
	values := 0
	for {
		if len(c.frames) == 0 && values == 1 {
			// The one value is complete: only the end of the input may follow.
			switch _, err := c.dec.ReadToken(); {
			case err == io.EOF:
				return nil
			case err != nil:
				return wrap(err)
			}
			return fmt.Errorf("%w: more than one value", ErrAmbiguous)
		}
		switch c.dec.PeekKind() {
		case '{', '[':
			tok, err := c.dec.ReadToken()
			if err != nil {
				return wrap(err)
			}
			if len(c.frames) == 0 {
				values++
			}
			c.frames = append(c.frames, frame{object: tok.Kind() == '{', ends: len(c.ends), keys: len(c.keys)})
		case '}', ']':
			if _, err := c.dec.ReadToken(); err != nil {
				return wrap(err)
			}
			f := c.frames[len(c.frames)-1]
			c.keys, c.ends = c.keys[:f.keys], c.ends[:f.ends]
			c.frames = c.frames[:len(c.frames)-1]
		default: // a scalar or a member name; anything else fails in ReadValue
			v, err := c.dec.ReadValue()
			if err != nil {
				return wrap(err)
			}
			n := len(c.frames)
			if n == 0 {
				values++
				continue
			}
			// A string read directly inside an object, at a name position, is a member name.
			if f := &c.frames[n-1]; f.object {
				if _, l := c.dec.StackIndex(c.dec.StackDepth()); l%2 == 1 {
					if err := c.name(f, v); err != nil {
						return err
					}
				}
			}
		}
	}
}

// name records the member name raw (still quoted) in object f, or reports that the object
// already has a name equal to it under simple case folding.
func (c *checker) name(f *frame, raw jsontext.Value) error {
	name := []byte(raw[1 : len(raw)-1])
	if bytes.IndexByte(name, '\\') >= 0 {
		var err error
		if c.scratch, err = jsontext.AppendUnquote(c.scratch[:0], raw); err != nil {
			return wrap(err)
		}
		name = c.scratch
	}
	start := len(c.keys)
	c.keys = appendFold(c.keys, name)
	key := c.keys[start:]
	if f.set != nil {
		_, dup := f.set[string(key)]
		c.keys = c.keys[:start]
		if dup {
			return fmt.Errorf("%w: member %q repeats a name that differs only in case", ErrAmbiguous, name)
		}
		f.set[string(key)] = struct{}{}
		return nil
	}
	prev := f.keys
	for _, end := range c.ends[f.ends:] {
		if bytes.Equal(c.keys[prev:end], key) {
			return fmt.Errorf("%w: member %q repeats a name that differs only in case", ErrAmbiguous, name)
		}
		prev = end
	}
	c.ends = append(c.ends, len(c.keys))
	if len(c.ends)-f.ends > linearNames {
		f.set = make(map[string]struct{}, 4*linearNames)
		prev := f.keys
		for _, end := range c.ends[f.ends:] {
			f.set[string(c.keys[prev:end])] = struct{}{}
			prev = end
		}
		c.keys, c.ends = c.keys[:f.keys], c.ends[:f.ends]
	}
	return nil
}

// appendFold appends name with every rune mapped to the smallest rune of its simple-folding
// orbit (the reference in check_ref_test.go does the same with strings). name is valid UTF-8
// (the decoder checked it).
func appendFold(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		b := name[i]
		if b < utf8.RuneSelf {
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A' // the smallest of {A, a}, {K, k, U+212A}, {S, s, U+017F} …
			}
			dst = append(dst, b)
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		i += size
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		dst = utf8.AppendRune(dst, min)
	}
	return dst
}

// String decodes a JSON string value. ok is false for any other kind of value.
func String(v jsontext.Value) (s string, ok bool) {
	if v.Kind() != '"' {
		return "", false
	}
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

func wrap(err error) error {
	return fmt.Errorf("%w: %v", ErrAmbiguous, err)
}
