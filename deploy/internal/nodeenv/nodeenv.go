// Package nodeenv finds what the Node.js-based end-to-end tests (deploy/interop,
// deploy/differential) run: a program on PATH, Node.js itself, and the npm packages their
// package-lock.json pins. What is missing skips the test locally and fails it under CI=true,
// so CI cannot pass by testing nothing.
package nodeenv

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Need finds a program on PATH or at one of alt, or skips the test (fails it under CI=true)
// saying how to get it.
func Need(t testing.TB, name, how string, alt ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range alt {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "%s is missing: %s", name, how)
	return ""
}

// Missing skips, except under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true makes this a failure)", args...)
	}
	t.Skipf(format, args...)
}

// Node checks that the node at path is Node.js 20 or newer, which the pinned packages need.
func Node(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	if major < 20 {
		Missing(t, "node %s is too old: the pinned packages need Node.js >= 20", v)
	}
}

// Modules checks that ./node_modules holds exactly the versions ./package-lock.json pins for
// every dependency in ./package.json (a stale install would test other versions than the ones
// named), and returns them by package. dir names the directory in the fix it prints.
func Modules(t testing.TB, dir string) map[string]string {
	t.Helper()
	var pkg struct{ Dependencies map[string]string }
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	ReadJSON(t, "package.json", &pkg)
	ReadJSON(t, "package-lock.json", &lock)
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(pkg.Dependencies)) {
		want := lock.Packages["node_modules/"+name].Version
		var got struct{ Version string }
		b, err := os.ReadFile(filepath.Join("node_modules", name, "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &got)
		}
		if err != nil || got.Version != want {
			Missing(t, "%s/node_modules lacks %s %s (has %q): npm ci --prefix %s", dir, name, want, got.Version, dir)
		}
		out[name] = want
	}
	return out
}

// ReadJSON decodes the JSON file at path into v, or fails the test.
func ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
