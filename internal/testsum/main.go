// Command testsum reads `go test -json` on stdin, prints what a plain `go test` prints (a
// line per package, and the output of failing tests), then every skipped test with the
// reason it gave, and exits non-zero if anything failed. A skip is otherwise invisible
// without -v: a package whose tests skipped for a missing tool still prints "ok".
//
//	go test -race -count=1 -json ./... | go run ./internal/testsum
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if !summarize(os.Stdin, os.Stdout) {
		os.Exit(1)
	}
}

// event is one line of test2json's output (go doc test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type key struct{ pkg, test string }

// summarize copies in's results to out and reports whether every package passed.
func summarize(in io.Reader, out io.Writer) bool {
	var (
		buf     = map[key][]string{} // a running test's output, shown only if it fails
		skipped []string
		failed  bool
		seen    bool
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line) // not an event: go test's own complaint
			continue
		}
		seen = true
		k := key{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" {
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			failed = true
		case e.Test == "" && e.Action == "skip":
			// A package without test files: go test's "?" line already said so.
		case e.Action == "output":
			buf[k] = append(buf[k], e.Output)
		case e.Action == "fail":
			fmt.Fprint(out, strings.Join(buf[k], ""))
			delete(buf, k)
		case e.Action == "skip":
			skipped = append(skipped, fmt.Sprintf("  %s %s: %s", e.Package, e.Test, skipReason(buf[k])))
			delete(buf, k)
		case e.Action == "pass":
			delete(buf, k)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testsum:", err)
		return false
	}
	if !seen {
		fmt.Fprintln(out, "testsum: no test results on stdin (did go test fail to start?)")
		return false
	}
	if len(skipped) > 0 {
		fmt.Fprintf(out, "\n%d skipped (run with CI=true to turn a missing tool into a failure):\n%s\n", len(skipped), strings.Join(skipped, "\n"))
	}
	return !failed
}

// skipReason is what the test logged before skipping: the indented lines of its output.
func skipReason(lines []string) string {
	var r []string
	for _, l := range lines {
		if strings.HasPrefix(l, "    ") {
			r = append(r, strings.TrimSpace(l))
		}
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return strings.Join(r, " ")
}
