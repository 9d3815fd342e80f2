package authz

import (
	"errors"
	"strings"
)

// errAmbiguousPath: a path that the upstream, or a proxy between us, could resolve to another
// resource than the one we would match.
var errAmbiguousPath = errors.New("ambiguous request path")

// cleanPath returns the path that routing compares: percent-decoded once, then with dot-segments
// removed (RFC 3986 §5.2.4). Paths that two reasonable normalizers could resolve differently are
// refused, whatever the proxy's own settings (normalize_path, merge_slashes,
// path_with_escaped_slashes_action), because mcp-authz must not depend on them:
//   - encoded dots, slashes, backslashes and NULs (%2e %2f %5c %00), raw backslashes, control
//     characters, DEL, a raw '#', and malformed percent escapes;
//   - a path whose meaning changes under a second decoding ("%252e" decodes to "%2e");
//   - a dot-segment carrying a parameter ("..;", ".;": servlet containers strip it, others
//     do not);
//   - empty segments ("//") together with dot-segments: whether "/a//../b" is "/a/b" (RFC 3986)
//     or "/b" (merge_slashes first) depends on the order a proxy applies its rules in.
func cleanPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", errAmbiguousPath
	}
	needDecode, dots := false, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x21 || c == 0x7f || c == '\\' || c == '#':
			return "", errAmbiguousPath
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errAmbiguousPath
			}
			switch b := unhex(p[i+1])<<4 | unhex(p[i+2]); {
			case b == '.' || b == '/' || b == '\\' || b < 0x20 || b == 0x7f:
				return "", errAmbiguousPath
			case b == '%' && i+4 < len(p) && isHex(p[i+3]) && isHex(p[i+4]):
				return "", errAmbiguousPath // "%25xx" means "%xx" to a second decoder
			}
			needDecode = true
			i += 2
		case c == '.':
			if p[i-1] == '/' {
				dots = true
			}
		}
	}
	if dots {
		for _, seg := range strings.Split(p[1:], "/") {
			if name, _, hasParam := strings.Cut(seg, ";"); hasParam && (name == "." || name == "..") {
				return "", errAmbiguousPath
			}
		}
		if strings.Contains(p, "//") && hasDotSegment(p) {
			return "", errAmbiguousPath
		}
	}
	out := p
	if needDecode {
		out = decodeOnce(p)
	}
	if dots {
		out = removeDotSegments(out)
	}
	return out, nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// decodeOnce percent-decodes a path that cleanPath has checked.
func decodeOnce(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}
