package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var lineRE = regexp.MustCompile(`line (\d+)`)

// nameKeys rewrites yaml.v3's decode errors, which give only line numbers, so each names the
// key path at that line (e.g. "resources[0].scopes.required"), as every other config error does.
// The document is src, or root when src is nil.
func nameKeys(src []byte, root *yaml.Node, err error) error {
	if root == nil {
		root = new(yaml.Node)
		if yaml.Unmarshal(src, root) != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	msg := lineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(m[len("line "):])
		if p := pathAtLine(root, n, ""); p != "" {
			return m + " (" + p + ")"
		}
		return m
	})
	msg = strings.TrimPrefix(msg, "yaml: ")
	return fmt.Errorf("config: %s", msg)
}

// pathAtLine finds the deepest key whose key or scalar value sits on line.
func pathAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := pathAtLine(c, line, prefix); p != "" {
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
			if deeper := pathAtLine(v, line, p); deeper != "" {
				return deeper
			}
			if k.Line == line {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if deeper := pathAtLine(c, line, p); deeper != "" {
				return deeper
			}
		}
	case yaml.ScalarNode:
		if n.Line == line {
			return prefix
		}
	}
	return ""
}
