package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultHTTPListen is listen.http when the file has no such key: without the HTTP listener
// there is no metadata document, no /readyz and no /metrics, which nobody omits on purpose.
// An explicit `http: ""` still disables it.
const DefaultHTTPListen = "127.0.0.1:9192"

var unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)

// describeTypeErrors rewrites yaml.v3's per-field errors in the file's own terms: an unknown
// key is named by its path with the nearest valid key, instead of "field algoritms not found
// in type config.Issuer"; any other is given its key path.
func describeTypeErrors(root *yaml.Node, te *yaml.TypeError) []error {
	var errs []error
	for _, msg := range te.Errors {
		m := unknownFieldRE.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, nameKeys(nil, root, fmt.Errorf("%s", msg)))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		key, typ := m[2], m[3]
		path := keyAt(root, line, key, "")
		if path == "" {
			path = key
		}
		parent := strings.TrimSuffix(strings.TrimSuffix(path, key), ".")
		where := "the top level"
		if parent != "" {
			where = parent
		}
		valid := keysOf[typ]
		if near := nearest(key, valid); near != "" {
			errs = append(errs, fmt.Errorf("config: %s (line %d): unknown key; did you mean %s? (%s takes: %s)", path, line, near, where, strings.Join(valid, ", ")))
		} else {
			errs = append(errs, fmt.Errorf("config: %s (line %d): unknown key; %s takes: %s", path, line, where, strings.Join(valid, ", ")))
		}
	}
	return errs
}

// keysOf lists the YAML keys of every struct type in the file's schema, by the name yaml.v3
// gives the type in its errors ("config.Issuer").
var keysOf = func() map[string][]string {
	m := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || m[t.String()] != nil {
			return
		}
		var keys []string
		m[t.String()] = keys // marks it seen before recursing
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			keys = append(keys, name)
			walk(f.Type)
		}
		m[t.String()] = keys
	}
	walk(reflect.TypeFor[Config]())
	return m
}()

// nearest is the valid key closest to key by edit distance, if it is close enough to be the
// likely intent: within a third of the key's length, and at least 2 edits allowed.
func nearest(key string, valid []string) string {
	best, bestD := "", len(key)/3
	if bestD < 2 {
		bestD = 2
	}
	for _, v := range valid {
		if d := editDistance(strings.ToLower(key), v); d <= bestD && (best == "" || d < editDistance(strings.ToLower(key), best)) {
			best = v
		}
	}
	// A key that differs only by "-" for "_" or letter case is the same key.
	if alt := strings.ReplaceAll(strings.ToLower(key), "-", "_"); slices.Contains(valid, alt) {
		return alt
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyAt is the path of the mapping key named key on line.
func keyAt(n *yaml.Node, line int, key, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := keyAt(c, line, key, prefix); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if k.Line == line && k.Value == key {
				return p
			}
			if deeper := keyAt(v, line, key, p); deeper != "" {
				return deeper
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if deeper := keyAt(c, line, key, fmt.Sprintf("%s[%d]", prefix, i)); deeper != "" {
				return deeper
			}
		}
	}
	return ""
}

// hasKey reports whether the document has the key path (e.g. "listen", "http").
func hasKey(root *yaml.Node, path ...string) bool {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}
