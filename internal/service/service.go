// Package service wires mcp-authz together from a configuration: verifiers, the decision
// core, the ext_authz gRPC listener with its health service, and the HTTP listener for
// Protected Resource Metadata (RFC 9728) and health. Its lifecycle is explicit: New builds,
// Start binds and serves, Shutdown drains.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/authz/introspect"
	"github.com/mcp-authz/mcp-authz/authz/jwt"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/telemetry"
)

// authzServiceName is what Envoy and Kubernetes probes ask the gRPC health service about.
const authzServiceName = "envoy.service.auth.v3.Authorization"

// Service is one running mcp-authz.
type Service struct {
	cfg         *config.Config
	log         *slog.Logger
	opts        Options
	live        atomic.Pointer[state] // swapped whole on reload; in-flight Checks keep theirs
	cache       *cache.Tiered
	redis       redis.UniversalClient
	adminToken  string
	metrics     *telemetry.Metrics
	denials     denialLog // the rate-limited "token refused" lines
	stopTracing func(context.Context) error

	ext    *extauthz.Server
	grpc   *grpc.Server
	health *health.Server
	http   *http.Server

	grpcLn, httpLn net.Listener
	wg             sync.WaitGroup
	draining       atomic.Bool // /readyz answers 503 from the start of the drain
	warmCtx        context.Context
	stopWarm       context.CancelFunc
}

// state is what a configuration reload replaces.
type state struct {
	cfg  *config.Config
	core *authz.Authorizer
	jwts []*jwt.Verifier
	// intros: the introspection verifiers, for their circuit breakers' state in metrics.
	intros []*introspect.Verifier
	// ext is core as the gRPC adapter decides with it (budgeted, with the converted shared
	// answers), so that live is the one pointer a reload swaps.
	ext *extauthz.Core
}

func newState(cfg *config.Config, core *authz.Authorizer, jwts []*jwt.Verifier, intros []*introspect.Verifier) *state {
	st := &state{cfg: cfg, core: core, jwts: jwts, intros: intros}
	st.ext = extauthz.NewCore(budgeted{st})
	return st
}

func (s *Service) warm(jwts []*jwt.Verifier) {
	if s.warmCtx == nil {
		return
	}
	for _, v := range jwts {
		go func() {
			if err := v.Warm(s.warmCtx); err != nil {
				s.log.Warn("issuer keys not loaded yet; will retry on demand", "issuer", v.Issuer(), "error", err)
			}
		}()
	}
}

// Reload switches to a new configuration without dropping in-flight Checks: the new core is
// built completely first, then swapped in atomically. On any error nothing changes and the
// old configuration keeps serving. What the core reads (issuers, resources, keys, scopes,
// unavailable, check_timeout, shutdown, log.decisions) applies on the next Check, and
// log.level at once when Options.LogLevel is set. Listeners, log format, tracing, the cache
// and its Redis connection, and the admin token stay as they were started: each changed key
// among them is named in a warning as needing a restart.
func (s *Service) Reload(cfg *config.Config) error {
	cfg.ApplyDefaults()
	old := s.live.Load()
	core, jwts, intros, err := buildCore(cfg, s.opts, s.cache)
	if err != nil {
		return err
	}
	if keys := restartOnly(old.cfg, cfg, s.opts.LogLevel != nil); len(keys) > 0 {
		s.log.Warn("reload: these settings change only on restart; the running values stay", "keys", strings.Join(keys, ", "))
	}
	if s.opts.LogLevel != nil {
		s.opts.LogLevel.Set(logLevel(cfg.Log.Level))
	}
	// One store: the new state carries its own adapter core (newState), so the responses the
	// adapter converted for the old core's shared answers, whose numbers the new core gives out
	// again, go with the old state.
	s.live.Store(newState(cfg, core, jwts, intros))
	s.warm(jwts)
	s.log.Info("configuration reloaded", "resources", len(cfg.Resources), "issuers", len(cfg.Issuers))
	return nil
}

// restartOnly names, by configuration key, every setting that differs between a and b and is
// read only at start.
func restartOnly(a, b *config.Config, liveLevel bool) []string {
	var keys []string
	keys = changedKeys(keys, "listen", reflect.ValueOf(a.Listen), reflect.ValueOf(b.Listen))
	keys = changedKeys(keys, "log.format", reflect.ValueOf(a.Log.Format), reflect.ValueOf(b.Log.Format))
	if !liveLevel {
		keys = changedKeys(keys, "log.level", reflect.ValueOf(a.Log.Level), reflect.ValueOf(b.Log.Level))
	}
	keys = changedKeys(keys, "tracing", reflect.ValueOf(a.Tracing), reflect.ValueOf(b.Tracing))
	keys = changedKeys(keys, "cache", reflect.ValueOf(a.Cache), reflect.ValueOf(b.Cache))
	keys = changedKeys(keys, "admin", reflect.ValueOf(a.Admin), reflect.ValueOf(b.Admin))
	keys = changedKeys(keys, "forward_auth", reflect.ValueOf(a.ForwardAuth), reflect.ValueOf(b.ForwardAuth))
	keys = changedKeys(keys, "dpop.replay_memory", reflect.ValueOf(a.DPoP.ReplayMemory), reflect.ValueOf(b.DPoP.ReplayMemory))
	return keys
}

// changedKeys walks two values of one configuration type and appends the dotted YAML key of
// every leaf that differs. It compares references (env and file names), never secret values.
func changedKeys(keys []string, key string, a, b reflect.Value) []string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				keys = append(keys, key)
			}
			return keys
		}
		return changedKeys(keys, key, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			keys = changedKeys(keys, key+"."+name, a.Field(i), b.Field(i))
		}
		return keys
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		keys = append(keys, key)
	}
	return keys
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// maxReserve is the most of a caller's deadline a Check keeps for writing its answer back.
const maxReserve = 250 * time.Millisecond

// budgeted decides with one configuration's core, within the Check's budget: check_timeout,
// or less when the caller's own deadline comes first (Envoy sends its ext_authz timeout as
// grpc-timeout). An IdP that hangs then ends as the configured unavailable answer, with its
// challenge, while the proxy still waits for it, instead of the proxy's bare 503. The key
// fetch or introspection that overran goes on for the Checks after it.
type budgeted struct{ st *state }

func (b budgeted) Check(ctx context.Context, r *authz.Request) *authz.Decision {
	st := b.st
	budget := st.cfg.CheckTimeout.D()
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if b := left - min(left/5, maxReserve); budget == 0 || b < budget {
			budget = max(b, time.Nanosecond) // an already spent budget still bounds the Check
		}
	}
	if budget > 0 {
		bc := &budgetCtx{Context: ctx, deadline: time.Now().Add(budget)}
		defer bc.stop()
		ctx = bc
	}
	return st.core.Check(ctx, r)
}

// budgetCtx is its parent with an earlier deadline, whose timer and channel are made only once
// something waits on it: a Check answered from the in-process cache never does, and so pays
// one allocation instead of context.WithDeadline's timer and channel.
type budgetCtx struct {
	context.Context
	deadline time.Time
	once     sync.Once
	inner    context.Context // parent.WithDeadline, once needed
	cancel   context.CancelFunc
	made     atomic.Bool
}

func (c *budgetCtx) make() context.Context {
	c.once.Do(func() {
		c.inner, c.cancel = context.WithDeadline(c.Context, c.deadline)
		c.made.Store(true)
	})
	if c.inner == nil { // stopped before anything waited: the Check is over
		return stoppedCtx
	}
	return c.inner
}

var stoppedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *budgetCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *budgetCtx) Done() <-chan struct{}       { return c.make().Done() }
func (c *budgetCtx) Err() error                  { return c.make().Err() }

// Value answers from the deadline context once it exists, so that context.Cause and children
// derived from this one see it.
func (c *budgetCtx) Value(key any) any {
	if c.made.Load() {
		return c.inner.Value(key)
	}
	return c.Context.Value(key)
}

func (c *budgetCtx) stop() {
	c.once.Do(func() {}) // nothing made after this
	if c.cancel != nil {
		c.cancel()
	}
}

// liveCore is budgeted for the HTTP front doors, recording each decision (metrics, decision
// log) as the gRPC adapter does.
type liveCore struct{ s *Service }

func (l liveCore) Check(ctx context.Context, r *authz.Request) *authz.Decision {
	start := time.Now()
	d := budgeted{l.s.live.Load()}.Check(ctx, r)
	l.s.onDecision(ctx, r, d, time.Since(start))
	return d
}

// Options carry what is not in the configuration file.
type Options struct {
	Logger     *slog.Logger
	HTTPClient *http.Client // for discovery, JWKS and introspection; default: 10 s timeout
	Now        func() time.Time
	Getenv     func(string) string // where secrets named by env come from; default os.Getenv
	// TracerProvider overrides the one built from the configuration's tracing section.
	TracerProvider trace.TracerProvider
	// LogLevel, when set, is the Logger's level: New and Reload set it from log.level, so a
	// reload changes it without a restart.
	LogLevel *slog.LevelVar

	metrics *telemetry.Metrics   // set by New: IdP call and key-set metrics
	tp      trace.TracerProvider // set by New: nil without tracing
	// upstream: set by New: the exchanged-token cache, kept across reloads (upstream.go).
	upstream *upstreamState
	senders  *senders // set by New: DPoP state that outlives a reload
}

// New builds everything a configuration describes without touching the network: discovery
// and key loading happen lazily, so an IdP outage never stops the service from starting. It
// fills in the configuration's defaults (config.ApplyDefaults, idempotent) when the caller has
// not: they are the only defaults, the packages below take no zero for what they set.
func New(cfg *config.Config, o Options) (*Service, error) {
	cfg.ApplyDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		// http.DefaultTransport keeps 2 idle connections per host: with up to max_concurrent
		// introspection calls in flight per issuer, most calls would open a new connection
		// (measured: 0.59 new connections per introspection, 24% of a cold Check's CPU).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 0 // no total cap; IdleConnTimeout still closes idle ones
		t.MaxIdleConnsPerHost = 64
		for _, is := range cfg.Issuers {
			if in := is.Introspection; in != nil && in.MaxConcurrent > t.MaxIdleConnsPerHost {
				t.MaxIdleConnsPerHost = in.MaxConcurrent
			}
		}
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: t}
	}
	s := &Service{cfg: cfg, log: o.Logger}
	if o.LogLevel != nil {
		o.LogLevel.Set(logLevel(cfg.Log.Level))
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	// Metrics and tracing come first: the verifiers' HTTP clients and Redis are instrumented
	// as they are built.
	s.metrics = telemetry.New(nil)
	s.denials.now = o.Now
	if s.denials.now == nil {
		s.denials.now = time.Now
	}
	tp := o.TracerProvider
	if tp == nil {
		var shutdown func(context.Context) error
		var err error
		if tp, shutdown, err = telemetry.NewTracerProvider(context.Background(), telemetry.Tracing(cfg.Tracing)); err != nil {
			return nil, err
		}
		s.stopTracing = shutdown
	}
	o.metrics, o.tp, o.upstream = s.metrics, tp, &upstreamState{}
	o.senders = new(senders)
	p, err := build(cfg, o)
	if err != nil {
		if s.stopTracing != nil {
			s.stopTracing(context.Background())
		}
		return nil, err
	}
	s.opts = o
	s.live.Store(newState(cfg, p.core, p.jwts, p.intros))
	s.metrics.SetBreakers(func() map[string]int {
		out := map[string]int{}
		for _, v := range s.live.Load().intros {
			out[v.Issuer()] = int(v.BreakerState())
		}
		return out
	})
	s.cache, s.redis, s.adminToken = p.cache, p.redis, p.adminToken
	if s.cache != nil {
		s.metrics.SetCacheStats(func() telemetry.CacheStats {
			st, h := s.cache.Stats(), s.cache.Health()
			return telemetry.CacheStats{
				L1Hits: st.L1Hits, L1Misses: st.L1Misses, L2Hits: st.L2Hits, L2Misses: st.L2Misses,
				L2Errors: st.L2Errors, L2Skipped: st.L2Skipped, BadMAC: st.BadMAC, Undecodable: st.Undecodable,
				Sets: st.Sets, EvictionsReceived: st.EvictionsReceived, StaleUsed: st.StaleUsed,
				ClaimsWaited: st.ClaimsWaited, RevokedDrops: st.RevokedDrops,
				RevokedRefused: st.RevokedRefused, AnnouncementsRejected: st.AnnouncementsRejected,
				RevocationsRemembered: st.RevocationsRemembered, RevocationsForgotten: st.RevocationsForgotten,
				RedisConfigured: h.RedisConfigured, RedisUp: h.RedisUp,
			}
		})
	}
	var tracer trace.Tracer
	if tp != nil {
		tracer = tp.Tracer("github.com/mcp-authz/mcp-authz")
	}
	s.ext = extauthz.NewLive(func() *extauthz.Core { return s.live.Load().ext }, extauthz.Options{Logger: o.Logger, OnDecision: s.onDecision, Tracer: tracer,
		SpanSubject: cfg.Tracing.IncludeSubject})

	var gopts []grpc.ServerOption
	if cfg.Listen.TLS.CertFile != "" {
		tf, err := newTLSFiles(cfg.Listen.TLS, o.Logger)
		if err != nil {
			s.Close()
			return nil, err
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tf.serverTLS())))
	}
	s.grpc = grpc.NewServer(gopts...)
	extauthz.Register(s.grpc, s.ext)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Listen.GRPCReflection {
		reflection.Register(s.grpc)
	}
	s.http = &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Close releases what New built (the cache, the Redis client) for a Service that was never
// started; a started one is stopped with Shutdown.
func (s *Service) Close() {
	s.opts.upstream.close()
	if s.cache != nil {
		s.cache.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
}

// Start binds both listeners and serves in the background.
func (s *Service) Start() error {
	var err error
	if s.grpcLn, err = net.Listen("tcp", s.cfg.Listen.GRPC); err != nil {
		return fmt.Errorf("listen.grpc: %w", err)
	}
	if s.cfg.Listen.HTTP != "" {
		if s.httpLn, err = net.Listen("tcp", s.cfg.Listen.HTTP); err != nil {
			s.grpcLn.Close()
			return fmt.Errorf("listen.http: %w", err)
		}
	}
	// Load discovery and keys in the background so readiness shows real key state and the
	// first token does not pay for the fetch; serving never waits for it.
	warmCtx, cancel := context.WithCancel(context.Background())
	s.warmCtx, s.stopWarm = warmCtx, cancel
	s.warm(s.live.Load().jwts)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(authzServiceName, healthpb.HealthCheckResponse_SERVING)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.grpcLn); err != nil {
			s.log.Error("grpc listener stopped", "error", err)
		}
	}()
	if s.httpLn != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http listener stopped", "error", err)
			}
		}()
	}
	s.log.Info("mcp-authz serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "resources", len(s.cfg.Resources), "issuers", len(s.cfg.Issuers))
	return nil
}

// Route names the configured resource a request to host and path is checked against (see
// authz.Authorizer.Route).
func (s *Service) Route(host, path string) (resource string, ok bool) {
	return s.live.Load().core.Route(host, path)
}

// GRPCAddr is the bound ext_authz address (useful with port 0).
func (s *Service) GRPCAddr() string {
	if s.grpcLn == nil {
		return ""
	}
	return s.grpcLn.Addr().String()
}

// HTTPAddr is the bound HTTP address, "" when disabled.
func (s *Service) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Drain stops advertising health (gRPC health NOT_SERVING, /readyz 503) and goes on answering
// every Check for shutdown.drain, so that proxies' health checks and the orchestrator's
// endpoint updates move traffic away before the listener closes: a rolling update then costs
// no Check. It returns early, with ctx's error, when ctx ends. Shutdown follows it.
func (s *Service) Drain(ctx context.Context) error {
	s.draining.Store(true)
	s.health.Shutdown()
	d := time.Duration(0)
	if p := s.live.Load().cfg.Shutdown.Drain; p != nil {
		d = p.D()
	}
	if d <= 0 {
		return nil
	}
	s.log.Info("draining: health says NOT_SERVING, Checks are still answered", "drain", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain cut short: %w", ctx.Err())
	}
}

// Shutdown stops taking new work, lets in-flight Checks finish until ctx ends, then stops.
// Health turns NOT_SERVING first so a load balancer can drain us; Drain before it gives them
// the time to.
func (s *Service) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.health.Shutdown()
	if s.stopWarm != nil {
		s.stopWarm()
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	var err error
	if s.httpLn != nil {
		err = s.http.Shutdown(ctx)
	}
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
	s.wg.Wait()
	if s.stopTracing != nil {
		s.stopTracing(ctx) // flushes spans still buffered
	}
	s.Close()
	s.log.Info("mcp-authz stopped")
	return err
}

// Run serves until ctx is cancelled, then drains (shutdown.drain) and shuts down gracefully
// (in-flight Checks get shutdown.timeout). Each value on
// reload (SIGHUP, a file change) makes it call load and switch to the result; a load or build
// error is logged with the key at fault and the running configuration keeps serving.
func Run(ctx context.Context, load func() (*config.Config, error), reload <-chan struct{}, o Options) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	s, err := New(cfg, o)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-reload:
			next, err := load()
			if err == nil {
				err = s.Reload(next)
			}
			if err != nil {
				s.log.Error("configuration reload refused; the running configuration keeps serving", "error", err)
			}
		}
	}
	s.Drain(context.Background())
	sctx, cancel := context.WithTimeout(context.Background(), s.live.Load().cfg.Shutdown.Timeout.D())
	defer cancel()
	return s.Shutdown(sctx)
}

func (s *Service) onDecision(ctx context.Context, r *authz.Request, d *authz.Decision, took time.Duration) {
	if d.Reason == authz.ReasonMetadata {
		s.metrics.MetadataServed() // discovery, not a denial
	} else {
		s.metrics.Decision(d.Resource, d.Allow, d.Reason.String(), took)
		if !d.Allow {
			s.explainDenial(ctx, r, d)
		}
	}
	level := slog.LevelDebug
	switch s.live.Load().cfg.Log.Decisions {
	case "off":
		return
	case "info":
		level = slog.LevelInfo
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.ID),
		slog.String("resource", d.Resource),
		slog.Bool("allow", d.Allow),
		slog.String("reason", d.Reason.String()),
		slog.Int("status", d.Status),
		slog.Duration("latency", took),
	}
	if d.Tier != "" {
		attrs = append(attrs, slog.String("tier", d.Tier))
	}
	if d.Identity != nil {
		attrs = append(attrs, slog.String("issuer", d.Identity.Issuer), slog.String("source", d.Identity.Source.String()),
			slog.String("subject", d.Identity.Subject), slog.String("client_id", d.Identity.ClientID))
	}
	if op := d.Operation; op != nil {
		attrs = append(attrs, slog.String("mcp_method", op.Method))
		if op.Name != "" {
			attrs = append(attrs, slog.String("mcp_name", op.Name))
		}
		if d.Batch > 0 {
			attrs = append(attrs, slog.Int("mcp_batch", d.Batch))
		}
	}
	if d.Err != nil {
		attrs = append(attrs, slog.String("detail", d.Err.Error()))
	}
	s.log.LogAttrs(ctx, level, "decision", attrs...)
}
