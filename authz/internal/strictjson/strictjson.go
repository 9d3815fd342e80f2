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
func Check(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	// One fold set per open object; nil for arrays.
	var stack []map[string]struct{}
	values := 0
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF && values == 1 {
			return nil
		}
		if err != nil {
			return wrap(err)
		}
		if len(stack) == 0 {
			if values++; values > 1 {
				return fmt.Errorf("%w: more than one value", ErrAmbiguous)
			}
		}
		switch tok.Kind() {
		case '{':
			stack = append(stack, map[string]struct{}{})
			continue
		case '[':
			stack = append(stack, nil)
			continue
		case '}', ']':
			stack = stack[:len(stack)-1]
			continue
		}
		// A string token directly inside an object, at a name position, is a member name.
		n := len(stack)
		if n == 0 || stack[n-1] == nil || tok.Kind() != '"' {
			continue
		}
		if _, l := dec.StackIndex(dec.StackDepth()); l%2 == 1 {
			name := tok.String()
			k := foldKey(name)
			if _, dup := stack[n-1][k]; dup {
				return fmt.Errorf("%w: member %q repeats a name that differs only in case", ErrAmbiguous, name)
			}
			stack[n-1][k] = struct{}{}
		}
	}
}

// Member is one member of an object, its value still raw.
type Member struct {
	Name  string
	Value jsontext.Value
}

// Object reads one JSON object's members in order. The whole value is checked for syntax,
// UTF-8 and duplicate names at every depth; names that differ only in case are checked in
// this object only (callers call Object again for each nested object they read).
func Object(data []byte) ([]Member, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, wrap(err)
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrAmbiguous)
	}
	var out []Member
	seen := map[string]struct{}{}
	for dec.PeekKind() != '}' {
		nt, err := dec.ReadToken()
		if err != nil {
			return nil, wrap(err)
		}
		// A token is valid only until the next read.
		name := nt.String()
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, wrap(err)
		}
		// raw is valid only until the next read: slice the same bytes out of data instead.
		end := dec.InputOffset()
		v := jsontext.Value(data[end-int64(len(raw)) : end])
		k := foldKey(name)
		if _, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: member %q repeats a name that differs only in case", ErrAmbiguous, name)
		}
		seen[k] = struct{}{}
		out = append(out, Member{Name: name, Value: v})
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, wrap(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the object", ErrAmbiguous)
	}
	return out, nil
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

// foldKey maps every rune to the smallest rune of its simple-folding orbit, so two names are
// equal under folding exactly when their keys are equal.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// ASCII letters' orbits: {A, a} and also {K, k, U+212A}, {S, s, U+017F}; the smallest
		// member is always the upper-case ASCII letter.
		b := []byte(s)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b)
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		out = append(out, min)
	}
	return string(out)
}

// Array reads one JSON array's elements, raw and in order, after the same checks as Object
// makes of the whole value (syntax, UTF-8, duplicate names at every depth, trailing data).
func Array(data []byte) ([]jsontext.Value, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, wrap(err)
	}
	if tok.Kind() != '[' {
		return nil, fmt.Errorf("%w: not an array", ErrAmbiguous)
	}
	var out []jsontext.Value
	for dec.PeekKind() != ']' {
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, wrap(err)
		}
		end := dec.InputOffset()
		out = append(out, jsontext.Value(data[end-int64(len(raw)):end]))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, wrap(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the array", ErrAmbiguous)
	}
	return out, nil
}
