package differential

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

// The same rules as deploy/interop: a missing tool skips locally, fails under CI=true.

// need finds a program, or skips the test (fails it under CI=true) saying how to get it.
func need(t *testing.T, name, how string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is missing: %s", name, how)
	}
	return p
}

// missing skips, except under CI=true: CI must not pass by testing nothing.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true makes this a failure)", args...)
	}
	t.Skipf(format, args...)
}

func checkNode(t *testing.T, node string) {
	t.Helper()
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	if major < 20 {
		missing(t, "node %s is too old: the pinned packages need Node.js >= 20", v)
	}
}

// checkModules: node_modules holds exactly the versions package-lock.json pins, for every
// dependency in package.json (a stale install would test other SDK versions than the ones
// named). It returns them, by package.
func checkModules(t *testing.T) map[string]string {
	t.Helper()
	var pkg struct{ Dependencies map[string]string }
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	readJSON(t, "package.json", &pkg)
	readJSON(t, "package-lock.json", &lock)
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(pkg.Dependencies)) {
		want := lock.Packages["node_modules/"+name].Version
		var got struct{ Version string }
		b, err := os.ReadFile(filepath.Join("node_modules", name, "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &got)
		}
		if err != nil || got.Version != want {
			missing(t, "deploy/differential/node_modules lacks %s %s (has %q): npm ci --prefix deploy/differential", name, want, got.Version)
		}
		out[name] = want
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
