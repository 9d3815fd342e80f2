package bench

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Every listener run.sh starts is placed from the port base, so -P moves all of them (a fixed
// 9191 collided with a running demo).
func TestRunShPortsFollowTheBase(t *testing.T) {
	src, err := os.ReadFile("run.sh")
	if err != nil {
		t.Fatal(err)
	}
	fixed := regexp.MustCompile(`(127\.0\.0\.1|localhost):[0-9]+`)
	for i, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range fixed.FindAllString(line, -1) {
			// The one fixed port left is the request's Host, localhost:8080, which nothing listens on;
			// and the OPA config template's port, rewritten from the base on the same line.
			if m == "localhost:8080" || strings.Contains(line, `sed "s/127.0.0.1:9198/127.0.0.1:$((PB+7))/"`) {
				continue
			}
			t.Errorf("run.sh:%d: fixed port %q; derive it from $PB", i+1, m)
		}
	}
}

// A port base that would put a listener outside 1024–65535 is refused before anything starts.
func TestRunShRefusesABadBase(t *testing.T) {
	for _, base := range []string{"80", "65500", "x"} {
		out, err := exec.Command("bash", "run.sh", "-P", base).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "-P "+base) {
			t.Errorf("-P %s: %v\n%s", base, err, out)
		}
	}
}
