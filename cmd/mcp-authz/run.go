package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/config"
	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/authz/service"
	"github.com/mcp-authz/mcp-authz/buildinfo"
	"github.com/mcp-authz/mcp-authz/cmd/mcp-authz/internal/heapfloor"
	"github.com/mcp-authz/mcp-authz/envoy"
)

// heapFloor is the heap headroom the service keeps (package heapfloor): it bounds what the
// tuning can add to a replica's memory, 32 MiB, and saves about a sixth of a cached Check's CPU.
const heapFloor = 32 << 20

// startHeapFloor starts the heap floor unless the operator set GOGC, which is theirs to keep;
// it returns what stops it.
func startHeapFloor(getenv func(string) string) (stop func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	return heapfloor.Start(heapFloor).Stop
}

const usage = `usage:
  mcp-authz serve --config FILE     run the service
  mcp-authz check-config [-envoy ENVOY.yaml] FILE
                                   validate a configuration and print it resolved; with
                                   -envoy, also check that Envoy sends what per-operation
                                   rules read
  mcp-authz demo [flags]            run with an embedded demo authorization server (no IdP, no Redis)
  mcp-authz check [flags]           send one ext_authz Check to a running service and print the answer
  mcp-authz version                 print the version, commit, build date and Go version (also --version)
Run "mcp-authz COMMAND -h" for a command's flags.`

// run is main without the process: every path through it is testable.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve", "demo":
		defer startHeapFloor(getenv)()
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "check-config":
		return checkConfig(args[1:], getenv, stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "check":
		return check(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprint(stdout, buildinfo.Read())
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("serve: --config FILE is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	// SIGHUP reloads the file; an invalid one is refused and the old configuration stays.
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A change of the file (a ConfigMap update, an edit) reloads it too. Polling the file's
	// size and modification time needs no inotify and sees a ConfigMap's symlink swap.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := fileStamp(*path)
	go func() {
		for {
			select {
			case <-hup:
			case <-tick.C:
				now := fileStamp(*path)
				if now == last {
					continue
				}
				last = now
			case <-ctx.Done():
				return
			}
			select {
			case reload <- struct{}{}:
			default: // one pending reload reads the newest file anyway
			}
		}
	}()
	first := true
	load := func() (*config.Config, error) {
		if first {
			first = false
			return cfg, nil
		}
		return config.Load(*path)
	}
	// The level is a LevelVar so that a reload changes it; the format needs a restart.
	level := new(slog.LevelVar)
	log := newLeveledLogger(cfg.Log.Format, level, stderr)
	return service.Run(ctx, load, reload, service.Options{Logger: log, LogLevel: level, Getenv: getenv})
}

func checkConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envoyFile := fs.String("envoy", "", "also check that this Envoy bootstrap sends what per-operation rules read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("check-config: give exactly one configuration file")
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	// Build everything (verifiers, secrets, the core) as serve would, but without Redis:
	// check-config must not touch the network.
	probe := *cfg
	probe.Cache.Redis = nil
	s, err := service.New(&probe, service.Options{Getenv: getenv})
	if err != nil {
		return err
	}
	s.Close()
	out, err := cfg.Marshal()
	if err != nil {
		return err
	}
	var perOp []string
	for i, r := range cfg.Resources {
		if r.MCP != nil && (len(r.MCP.Tools) > 0 || len(r.MCP.Methods) > 0) {
			perOp = append(perOp, fmt.Sprintf("resources[%d].mcp", i))
		}
	}
	if *envoyFile != "" && len(perOp) > 0 {
		src, err := os.ReadFile(*envoyFile)
		if err != nil {
			return fmt.Errorf("-envoy: %v", err)
		}
		problems, err := envoy.CheckPerOperation(src)
		if err != nil {
			return fmt.Errorf("-envoy %s: %v", *envoyFile, err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("-envoy %s: %s has per-operation rules, but:\n  %s", *envoyFile, strings.Join(perOp, ", "), strings.Join(problems, "\n  "))
		}
	}
	fmt.Fprintf(stdout, "# %s: valid. Resolved configuration, defaults included:\n", fs.Arg(0))
	if len(perOp) > 0 {
		// Refused requests are the safe failure, but a proxy that sends no body makes every
		// POST to these resources a 400 for clients that do not send Mcp-Method.
		fmt.Fprintf(stdout, "# note: %s read the MCP operation: the proxy must forward the body (Envoy with_request_body,\n"+
			"#   pack_as_bytes: true) or clients must send Mcp-Method/Mcp-Name; check an Envoy file with -envoy FILE.\n", strings.Join(perOp, ", "))
	}
	fmt.Fprint(stdout, string(out))
	return nil
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o service.DemoOptions
	fs.StringVar(&o.GRPC, "grpc", "127.0.0.1:9191", "ext_authz gRPC listen address")
	fs.StringVar(&o.HTTP, "http", "127.0.0.1:9192", "HTTP listen address (metadata, health)")
	fs.StringVar(&o.AS, "as", "127.0.0.1:9193", "demo authorization server listen address")
	fs.StringVar(&o.Resource, "resource", "http://localhost:8080/mcp", "protected resource identifier")
	level := fs.String("log-level", "info", "debug shows one line per decision")
	fs.StringVar(&o.OTLP, "otlp", "", "send every Check's trace to this OTLP/gRPC endpoint (e.g. Jaeger's 127.0.0.1:4317)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Logger = newLogger(config.Log{Level: *level, Format: "text"}, stderr)
	d, err := service.StartDemo(o)
	if err != nil {
		return err
	}
	d.PrintGuide(stdout)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.Shutdown(sctx)
}

func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9191", "ext_authz gRPC address")
	method := fs.String("method", "POST", "HTTP method of the request to check")
	host := fs.String("host", "localhost:8080", "host (:authority) of the request")
	path := fs.String("path", "/mcp", "path (with query) of the request")
	token := fs.String("token", "", "Bearer token to send (none: no Authorization header)")
	traced := fs.Bool("trace", false, "send a new W3C traceparent and print its trace id (to find the Check in Jaeger)")
	var headers headerFlags
	fs.Var(&headers, "H", `extra request header "name: value" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	h := map[string]string{}
	for _, kv := range headers {
		name, value, ok := strings.Cut(kv, ":")
		if !ok {
			return fmt.Errorf("check: -H %q: want \"name: value\"", kv)
		}
		h[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	if *token != "" {
		h["authorization"] = "Bearer " + *token
	}
	if *traced {
		var id [24]byte
		rand.Read(id[:])
		traceID, spanID := hex.EncodeToString(id[:16]), hex.EncodeToString(id[16:])
		h["traceparent"] = "00-" + traceID + "-" + spanID + "-01"
		fmt.Fprintln(stderr, "trace id:", traceID)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := extauthz.CheckJSON(cctx, *addr, *method, *host, *path, h)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(out))
	return nil
}

// fileStamp identifies a version of a file well enough to notice an edit.
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	return newLeveledLogger(c.Format, level, w)
}

func newLeveledLogger(format string, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
