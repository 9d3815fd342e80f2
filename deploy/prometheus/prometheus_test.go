// Package prometheus_test checks the alerting rules with Prometheus's own tools: promtool's
// rule check and unit tests, and a real Prometheus that scrapes a running mcp-authz and
// evaluates every alert and every Grafana dashboard query.
package prometheus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/internal/service"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// need finds a tool of Debian's prometheus package; without it the test skips, except in CI,
// where .ci/run installs it and its absence is a failure.
func need(t *testing.T, name string) string {
	t.Helper()
	return testenv.Tool(t, name, "apt-get install -y --no-install-recommends prometheus")
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := need(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", "mcp-authz.rules.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// mcp-authz.rules.test.yaml: each alert fires on the series that should raise it, and not on
// healthy ones.
func TestPromtoolTestRules(t *testing.T) {
	promtool := need(t, "promtool")
	out, err := exec.Command(promtool, "test", "rules", "mcp-authz.rules.test.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %d %s", u, resp.StatusCode, b)
	}
	return nil
}

// A real Prometheus scrapes the demo's mcp-authz, loads the rules, and evaluates every alert
// and every dashboard query without error.
func TestPrometheusScrapesAndEvaluates(t *testing.T) {
	prom := need(t, "prometheus")
	d, err := service.StartDemo(service.DemoOptions{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", AS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	// A few decisions, so the decision and latency series exist.
	conn, err := grpc.NewClient(d.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 3 {
		if _, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), extauthz.NewCheckRequest("POST", "localhost:8080", "/mcp", nil)); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	rules, err := filepath.Abs("mcp-authz.rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [%q]\nscrape_configs:\n  - job_name: mcp-authz\n    static_configs: [{targets: [%q]}]\n", rules, d.HTTPAddr())
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644)
	web := testenv.FreeAddr(t)
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	api := "http://" + web + "/api/v1/"

	// Wait for one scrape of the build info and one evaluation of every rule.
	var rulesAnswer struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
					Query                   string
					LastEvaluation          time.Time
				}
			}
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for ; ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape mcp-authz and evaluate the rules; its log:\n%s", logs.String())
		}
		var q struct {
			Data struct{ Result []any }
		}
		if getJSON(api+"query?query=mcp_authz_build_info", &q) != nil || len(q.Data.Result) == 0 {
			continue
		}
		if getJSON(api+"rules", &rulesAnswer) != nil || len(rulesAnswer.Data.Groups) == 0 {
			continue
		}
		evaluated := true
		for _, g := range rulesAnswer.Data.Groups {
			for _, r := range g.Rules {
				evaluated = evaluated && !r.LastEvaluation.IsZero() && r.LastEvaluation.Year() > 2000
			}
		}
		if evaluated {
			break
		}
	}
	n := 0
	var exprs []string
	for _, g := range rulesAnswer.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %q, error %q", r.Name, r.Health, r.LastError)
			}
			exprs = append(exprs, r.Query)
		}
	}
	if n < 7 {
		t.Errorf("Prometheus loaded %d rules", n)
	}

	// Every query of the Grafana dashboard, with Grafana's variables as Grafana would fill them.
	dash, err := os.ReadFile("../grafana/mcp-authz-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dj struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dash, &dj); err != nil {
		t.Fatal(err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$resource", ".*")
	for _, p := range dj.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, grafana.Replace(tg.Expr))
		}
	}
	if len(exprs) < n+10 {
		t.Fatalf("read only %d dashboard queries", len(exprs)-n)
	}
	leftover := regexp.MustCompile(`\$\w+`)
	for _, e := range exprs {
		if v := leftover.FindString(e); v != "" {
			t.Errorf("unfilled Grafana variable %s in %s", v, e)
			continue
		}
		var ans struct {
			Status, Error string
		}
		if err := getJSON(api+"query?query="+url.QueryEscape(e), &ans); err != nil || ans.Status != "success" {
			t.Errorf("query %s: %v %s", e, err, ans.Error)
		}
	}
	// The scrape reached the decisions the Checks above made.
	var dec struct {
		Data struct{ Result []any }
	}
	if err := getJSON(api+"query?query="+url.QueryEscape(`mcp_authz_decisions_total{reason="missing_token"}`), &dec); err != nil || len(dec.Data.Result) == 0 {
		t.Errorf("no decisions scraped: %v", err)
	}
}
