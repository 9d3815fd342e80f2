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
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/buildinfo"
	"github.com/mcp-authz/mcp-authz/cmd/mcp-authz/internal/heapfloor"
	"github.com/mcp-authz/mcp-authz/envoy"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/service"
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
  mcp-authz serve --config FILE     run the service (FILE alone works too, in every command)
  mcp-authz check-config [-envoy ENVOY.yaml] --config FILE
                                   validate a configuration and print it resolved; with
                                   -envoy, also check that Envoy sends what per-operation
                                   rules read
  mcp-authz doctor [-token-file F] FILE
                                   (or check-config --online) also ask every issuer for its
                                   metadata, keys and introspection, try a sample token, and
                                   report each mismatch with its fix; exit 2: fix the config,
                                   3: an authorization server could not be asked
  mcp-authz demo [flags]            run with an embedded demo authorization server (no IdP, no Redis)
  mcp-authz check [--config FILE] [flags]
                                   send one ext_authz Check to a running service and print the
                                   answer; exit 0 allowed, 2 denied 401, 3 denied 403, 4 other denial
  mcp-authz token [flags]           get an access token (client_credentials; defaults: the demo's) and print it
  mcp-authz dpop-key [-alg A] FILE  write a new private DPoP key (JWK) for token and check -dpop-key
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
		if rest, online := onlineFlag(args[1:]); online {
			return doctor(ctx, rest, getenv, stdout, stderr)
		}
		return checkConfig(args[1:], getenv, stdout, stderr)
	case "doctor":
		return doctor(ctx, args[1:], getenv, stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "check":
		return check(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return token(ctx, args[1:], getenv, stdout, stderr)
	case "dpop-key":
		return newDPoPKey(args[1:], stdout, stderr)
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
	flagPath := fs.String("config", "", "configuration file (YAML); or give it as the argument")
	if err := fs.Parse(args); err != nil {
		return err
	}
	file, err := configFile("serve", *flagPath, fs.Args())
	if err != nil {
		return err
	}
	path := &file
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
	envoyFile := fs.String("envoy", "", "also check that this Envoy bootstrap sends what per-operation rules and sender-constrained tokens (dpop, mtls_bound) need")
	flagPath := fs.String("config", "", "configuration file (YAML); or give it as the argument")
	if err := fs.Parse(args); err != nil {
		return err
	}
	file, err := configFile("check-config", *flagPath, fs.Args())
	if err != nil {
		return err
	}
	cfg, err := config.Load(file)
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
		} else if r.HasMCPRules() {
			perOp = append(perOp, fmt.Sprintf("resources[%d].rules", i))
		}
	}
	var dpopKeys, mtlsKeys []string
	for i, r := range cfg.Resources {
		if r.DPoP == config.BindingAllowed || r.DPoP == config.BindingRequired {
			dpopKeys = append(dpopKeys, fmt.Sprintf("resources[%d].dpop", i))
		}
		if r.MTLSBound == config.BindingAllowed || r.MTLSBound == config.BindingRequired {
			mtlsKeys = append(mtlsKeys, fmt.Sprintf("resources[%d].mtls_bound", i))
		}
	}
	if *envoyFile != "" && len(perOp)+len(dpopKeys)+len(mtlsKeys) > 0 {
		src, err := os.ReadFile(*envoyFile)
		if err != nil {
			return fmt.Errorf("-envoy: %v", err)
		}
		if len(perOp) > 0 {
			problems, err := envoy.CheckPerOperation(src)
			if err != nil {
				return fmt.Errorf("-envoy %s: %v", *envoyFile, err)
			}
			if len(problems) > 0 {
				return fmt.Errorf("-envoy %s: %s has per-operation rules, but:\n  %s", *envoyFile, strings.Join(perOp, ", "), strings.Join(problems, "\n  "))
			}
		}
		if len(dpopKeys)+len(mtlsKeys) > 0 {
			problems, err := envoy.CheckSenderConstrained(src, len(dpopKeys) > 0, len(mtlsKeys) > 0)
			if err != nil {
				return fmt.Errorf("-envoy %s: %v", *envoyFile, err)
			}
			if len(problems) > 0 {
				return fmt.Errorf("-envoy %s: %s accept sender-constrained tokens, but:\n  %s", *envoyFile, strings.Join(append(dpopKeys, mtlsKeys...), ", "), strings.Join(problems, "\n  "))
			}
		}
	}
	fmt.Fprintf(stdout, "# %s: valid. Resolved configuration, defaults included:\n", file)
	fmt.Fprint(stdout, profileComments(cfg))
	if len(perOp) > 0 {
		// Refused requests are the safe failure, but a proxy that sends no body makes every
		// POST to these resources a 400 for clients that do not send Mcp-Method.
		fmt.Fprintf(stdout, "# note: %s read the MCP operation: the proxy must forward the body (Envoy with_request_body,\n"+
			"#   pack_as_bytes: true) or clients must send Mcp-Method/Mcp-Name; check an Envoy file with -envoy FILE.\n", strings.Join(perOp, ", "))
	}
	for _, n := range cfg.RuleNotes() {
		fmt.Fprintf(stdout, "# note: %s\n", n)
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

// Exit statuses of `check`, one per outcome, so a script can branch on the answer; 1 stays
// "no answer" (a usage or connection error), as for every other command.
const (
	exitAllowed   = 0
	exitDenied401 = 2
	exitDenied403 = 3
	exitDenied    = 4 // any other denial: 400, 503, …
)

// exitCode is an error that main turns into a particular exit status.
type exitCode struct {
	code int
	msg  string
}

func (e exitCode) Error() string { return e.msg }

func check(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file: the address, host and path default to its listen.grpc and first resource, and the answer names the resource that matched")
	addr := fs.String("addr", "127.0.0.1:9191", "ext_authz gRPC address")
	method := fs.String("method", "POST", "HTTP method of the request to check")
	host := fs.String("host", "localhost:8080", "host (:authority) of the request")
	path := fs.String("path", "/mcp", "path (with query) of the request")
	token := fs.String("token", "", "Bearer token to send (none: no Authorization header)")
	traced := fs.Bool("trace", false, "send a new W3C traceparent and print its trace id (to find the Check in Jaeger)")
	keyFile := fs.String("dpop-key", "", "send -token as \"Authorization: DPoP\" with a new DPoP proof signed by this private key `file` (JWK or PEM)")
	htu := fs.String("htu", "", "the proof's htu (default: the resource's origin from -config, else http://HOST, and -path without its query)")
	certFile := fs.String("cert", "", "PEM client certificate `file` to put in attributes.source.certificate, as Envoy does for an mTLS client (include_peer_certificate)")
	var headers headerFlags
	fs.Var(&headers, "H", `extra request header "name: value" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var key *dpopKey
	if *keyFile != "" {
		if *token == "" {
			return errors.New("check: -dpop-key needs -token: a DPoP proof goes with a token")
		}
		var err error
		if key, err = loadDPoPKey(*keyFile); err != nil {
			return fmt.Errorf("check: -dpop-key %v", err)
		}
	}
	var cert string
	if *certFile != "" {
		var err error
		if cert, err = peerCertificate(*certFile); err != nil {
			return fmt.Errorf("check: -cert %v", err)
		}
	}
	if *cfgPath != "" || fs.NArg() > 0 {
		f, err := configFile("check", *cfgPath, fs.Args())
		if err != nil {
			return err
		}
		*cfgPath = f
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var route func(host, path string) (string, bool)
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		probe := *cfg
		probe.Cache.Redis = nil // routing needs no Redis, and check must not touch it
		s, err := service.New(&probe, service.Options{Getenv: getenv})
		if err != nil {
			return err
		}
		defer s.Close()
		route = s.Route
		if !set["addr"] {
			*addr = dialable(cfg.Listen.GRPC)
		}
		if r := cfg.Resources[0]; !set["host"] || !set["path"] {
			h, p := resourceHostPath(r.Resource)
			if !set["host"] {
				*host = h
			}
			if !set["path"] {
				*path = p
			}
		}
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
	origin := "http://" + *host
	if *traced {
		var id [24]byte
		rand.Read(id[:])
		traceID, spanID := hex.EncodeToString(id[:16]), hex.EncodeToString(id[16:])
		h["traceparent"] = "00-" + traceID + "-" + spanID + "-01"
		fmt.Fprintln(stderr, "trace id:", traceID)
	}
	if route != nil {
		if res, ok := route(*host, *path); ok {
			if u, err := url.Parse(res); err == nil && u.Scheme != "" && u.Host != "" {
				origin = u.Scheme + "://" + u.Host // htu is built from the configured URL, not Host
			}
			fmt.Fprintf(stderr, "%s %s%s matches resource %s in %s\n", *method, *host, *path, res, *cfgPath)
		} else {
			fmt.Fprintf(stderr, "%s %s%s matches no resource in %s: expect 403 access_denied (set -host and -path to a resource's)\n", *method, *host, *path, *cfgPath)
		}
	}
	if *htu == "" {
		*htu = origin + *path
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var nonce string
	var (
		out     []byte
		allowed bool
		status  int
	)
	// A service that wants a DPoP nonce answers 401 use_dpop_nonce with a DPoP-Nonce header;
	// like a client, check then sends one more proof with it (RFC 9449 §9).
	for attempt := 0; ; attempt++ {
		if key != nil {
			h["authorization"] = "DPoP " + *token
			p, err := key.proof(*method, *htu, *token, nonce, time.Now())
			if err != nil {
				return fmt.Errorf("check: -htu: %v", err)
			}
			h["dpop"] = p
		}
		req := extauthz.NewCheckRequest(*method, *host, *path, h)
		if cert != "" {
			req.Attributes.Source.Certificate = cert
		}
		resp, err := sendCheck(cctx, *addr, req)
		if err != nil {
			return err
		}
		var n string
		out, allowed, status, n, err = describeCheck(resp)
		if err != nil {
			return err
		}
		if key != nil && attempt == 0 && status == 401 && n != "" {
			fmt.Fprintln(stderr, "the service asked for a DPoP nonce (use_dpop_nonce): checking again with a proof that carries it")
			nonce = n
			continue
		}
		break
	}
	fmt.Fprintln(stdout, string(out))
	switch {
	case allowed:
		return nil
	case status == 401:
		return exitCode{exitDenied401, "denied: 401"}
	case status == 403:
		return exitCode{exitDenied403, "denied: 403"}
	default:
		return exitCode{exitDenied, fmt.Sprintf("denied: %d", status)}
	}
}

// dialable turns a listen address into one to dial: an unspecified host is this machine.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// resourceHostPath is the host and path a client calling resource sends.
func resourceHostPath(resource string) (host, path string) {
	u, err := url.Parse(resource)
	if err != nil || u.Host == "" {
		return "localhost:8080", "/mcp"
	}
	path = u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return u.Host, path
}

// configFile takes the configuration file from --config FILE or a lone FILE argument, so that
// every command accepts both forms.
func configFile(cmd, flagPath string, args []string) (string, error) {
	switch {
	case len(args) > 1:
		return "", fmt.Errorf("%s: give one configuration file, not %d arguments", cmd, len(args))
	case len(args) == 1 && flagPath != "" && args[0] != flagPath:
		return "", fmt.Errorf("%s: two configuration files (--config %s and %s): give one", cmd, flagPath, args[0])
	case len(args) == 1:
		return args[0], nil
	case flagPath != "":
		return flagPath, nil
	}
	return "", fmt.Errorf("%s: a configuration file is required: %s --config FILE (or %s FILE)", cmd, cmd, cmd)
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
	// slog's JSON handler writes a duration as integer nanoseconds ("retry_in":1000000000),
	// which a reader has to count digits to understand; the text handler already writes "1s".
	opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
