// Package telemetry holds mcp-authz's Prometheus metrics and sets up its OpenTelemetry trace
// export (tracing.go; the spans themselves are made where the work is). Metrics: one registry
// per service (no global state), instruments the decision path updates, and collectors that
// read counters kept elsewhere (the cache's) at scrape time. No metric label ever carries a
// token, a subject or any other per-caller value: labels are resources, decisions, reasons,
// tiers and issuers, all from configuration.
package telemetry

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-authz/mcp-authz/buildinfo"
)

// Metrics are the service's instruments.
type Metrics struct {
	reg        *prometheus.Registry
	decisions  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	idpCalls   *prometheus.CounterVec
	idpLatency *prometheus.HistogramVec
	jwksLoads  *prometheus.CounterVec
	staleKeys  *prometheus.CounterVec
	denials    *prometheus.CounterVec
	metadata   prometheus.Counter
	cacheStats func() CacheStats
	// idpHealth holds the last outcome per kind of call and issuer, for /readyz.
	idpHealth sync.Map // idpKey → *atomic.Pointer[IdPHealth]
	// series caches the decision instruments by label values: resolving a CounterVec child
	// hashes every label on every call, a noticeable share of a cached decision's cost.
	series sync.Map // decisionKey → *decisionSeries
}

type idpKey struct{ kind, issuer string }

// IdPHealth is what the calls of one kind (keys, introspection) to one issuer last showed.
type IdPHealth struct {
	OK    bool
	Error string    // why the last call failed: a transport error or "status 503"; never a URL or body
	Since time.Time // when this state began
}

type decisionKey struct {
	resource, reason string
	allow            bool
}

type decisionSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// CacheStats is what the cache collector reads at scrape time.
type CacheStats struct {
	L1Hits, L1Misses, L2Hits, L2Misses, L2Errors, L2Skipped, BadMAC, Undecodable, Sets, EvictionsReceived, StaleUsed uint64
	ClaimsWaited, RevokedDrops                                                                                       uint64
	RevokedRefused, AnnouncementsRejected, RevocationsForgotten                                                      uint64
	RevocationsRemembered                                                                                            int
	RedisConfigured, RedisUp                                                                                         bool
}

// New registers the instruments, plus Go runtime and process collectors. cacheStats may be
// nil (no cache); SetCacheStats sets it later.
func New(cacheStats func() CacheStats) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_authz_decisions_total",
		Help: "Check decisions by resource, decision (allow or deny) and reason.",
	}, []string{"resource", "decision", "reason"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mcp_authz_check_duration_seconds",
		Help: "Time from CheckRequest received to CheckResponse built, by decision.",
		// From a cached decision (µs) to an IdP round trip at its timeout (seconds).
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"decision"})
	m.idpCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_authz_idp_requests_total",
		Help: "HTTP calls to identity providers by kind (keys: discovery and JWKS; introspection), issuer and outcome (2xx, 3xx, 4xx, 5xx, error).",
	}, []string{"kind", "issuer", "outcome"})
	m.idpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcp_authz_idp_request_duration_seconds",
		Help:    "Time of HTTP calls to identity providers, by kind and issuer.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"kind", "issuer"})
	m.jwksLoads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_authz_jwks_refreshes_total",
		Help: "JWKS loads (discovery included) by issuer and outcome (ok, error).",
	}, []string{"issuer", "outcome"})
	m.staleKeys = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_authz_jwks_stale_keys_total",
		Help: "Verifications with keys past their Cache-Control lifetime because refreshes fail, by issuer.",
	}, []string{"issuer"})
	// Serving the RFC 9728 document is not a decision about access: counted apart, so that a
	// client discovering the authorization server does not show as a denial.
	m.metadata = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mcp_authz_metadata_requests_total",
		Help: "Protected Resource Metadata documents served (through Check or the HTTP listener); not counted in mcp_authz_decisions_total.",
	})
	m.reg.MustRegister(m.metadata)
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcp_authz_denials_total",
		Help: "Refused tokens by configured issuer (\"\" when none applies) and class (typ, audience, issuer, expired, inactive, scope, unavailable …): why, for operators.",
	}, []string{"issuer", "class"})
	m.reg.MustRegister(m.denials)
	// The build as a constant 1 with its identity in labels (the Prometheus *_info idiom): a
	// rollout shows as two versions side by side, and alerts can join on it.
	bi := buildinfo.Read()
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "mcp_authz_build_info",
		Help:        "Always 1; labels name the running build: version, commit, build date and Go version.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "date": bi.Date, "goversion": bi.GoVersion},
	}, func() float64 { return 1 }))
	m.reg.MustRegister(m.decisions, m.latency, m.idpCalls, m.idpLatency, m.jwksLoads, m.staleKeys,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.cacheStats = cacheStats
	m.reg.MustRegister(&cacheCollector{stats: func() CacheStats {
		if m.cacheStats == nil {
			return CacheStats{}
		}
		return m.cacheStats()
	}})
	return m
}

// SetCacheStats names the cache the collector reads; call it before serving.
func (m *Metrics) SetCacheStats(f func() CacheStats) { m.cacheStats = f }

// KeysFetched and StaleKeys receive a JWT verifier's key-set events (jwt.Observer).
func (m *Metrics) KeysFetched(issuer string, err error, _ time.Duration) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.jwksLoads.WithLabelValues(issuer, outcome).Inc()
}

func (m *Metrics) StaleKeys(issuer string) { m.staleKeys.WithLabelValues(issuer).Inc() }

// InitIssuer makes the issuer's key-set series exist at zero, so alerts on them see it.
func (m *Metrics) InitIssuer(issuer string) { m.staleKeys.WithLabelValues(issuer) }

// IdPTransport counts and times the calls base makes for one issuer's kind of call.
func (m *Metrics) IdPTransport(base http.RoundTripper, kind, issuer string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	h, _ := m.idpHealth.LoadOrStore(idpKey{kind, issuer}, new(atomic.Pointer[IdPHealth]))
	return &idpTransport{base: base, m: m, kind: kind, issuer: issuer,
		latency: m.idpLatency.WithLabelValues(kind, issuer), health: h.(*atomic.Pointer[IdPHealth])}
}

// IdPHealth reports the last outcome of one kind of call to one issuer; ok is false while no
// such call was made.
func (m *Metrics) IdPHealth(kind, issuer string) (h IdPHealth, ok bool) {
	p, found := m.idpHealth.Load(idpKey{kind, issuer})
	if !found {
		return IdPHealth{}, false
	}
	if v := p.(*atomic.Pointer[IdPHealth]).Load(); v != nil {
		return *v, true
	}
	return IdPHealth{}, false
}

type idpTransport struct {
	base         http.RoundTripper
	m            *Metrics
	kind, issuer string
	latency      prometheus.Observer
	health       *atomic.Pointer[IdPHealth]
}

func (t *idpTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.latency.Observe(time.Since(start).Seconds())
	outcome := "error"
	if err == nil {
		outcome = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[min(max(resp.StatusCode/100, 1), 5)-1]
	}
	t.m.idpCalls.WithLabelValues(t.kind, t.issuer, outcome).Inc()
	t.record(resp, err)
	return resp, err
}

// record keeps the state, allocating only when it changes: a healthy IdP costs a load.
func (t *idpTransport) record(resp *http.Response, err error) {
	why := ""
	switch {
	case err != nil:
		why = err.Error()
	case resp.StatusCode/100 != 2:
		why = "status " + strconv.Itoa(resp.StatusCode)
	}
	if cur := t.health.Load(); cur != nil && cur.OK == (why == "") && cur.Error == why {
		return
	}
	t.health.Store(&IdPHealth{OK: why == "", Error: why, Since: time.Now()})
}

// Denial counts one refused token by issuer and class. Both come from configuration and a
// fixed set (authz.Explain), never from a token's unverified text.
func (m *Metrics) Denial(issuer, class string) { m.denials.WithLabelValues(issuer, class).Inc() }

// MetadataServed counts one Protected Resource Metadata answer.
func (m *Metrics) MetadataServed() { m.metadata.Inc() }

// Decision records one decision.
func (m *Metrics) Decision(resource string, allow bool, reason string, took time.Duration) {
	k := decisionKey{resource, reason, allow}
	v, ok := m.series.Load(k)
	if !ok {
		d := "deny"
		if allow {
			d = "allow"
		}
		if resource == "" {
			resource = "none"
		}
		// Label values come from configuration and a fixed reason set, so this map is small.
		v, _ = m.series.LoadOrStore(k, &decisionSeries{
			count:   m.decisions.WithLabelValues(resource, d, reason),
			latency: m.latency.WithLabelValues(d),
		})
	}
	s := v.(*decisionSeries)
	s.count.Inc()
	s.latency.Observe(took.Seconds())
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	cacheRequestsDesc = prometheus.NewDesc("mcp_authz_cache_requests_total",
		"Verified-token cache lookups by tier (l1, redis) and result (hit, miss, error, skipped).", []string{"tier", "result"}, nil)
	cacheRejectedDesc = prometheus.NewDesc("mcp_authz_cache_rejected_total",
		"Redis values refused: bad_mac (tampered or another secret) or undecodable.", []string{"why"}, nil)
	cacheSetsDesc      = prometheus.NewDesc("mcp_authz_cache_sets_total", "Entries written to the cache.", nil, nil)
	cacheEvictionsDesc = prometheus.NewDesc("mcp_authz_cache_revocations_received_total", "Revocations received over Redis pub/sub.", nil, nil)
	cacheStaleDesc     = prometheus.NewDesc("mcp_authz_cache_stale_used_total", "Earlier verifications used while the token was re-verified or its verifier was unavailable (after a Redis reconnect, or past max_ttl within cache.stale_grace).", nil, nil)
	cacheClaimsDesc    = prometheus.NewDesc("mcp_authz_cache_claims_waited_total", "New tokens another replica was already introspecting: this one waited for its result instead of calling the IdP.", nil, nil)
	cacheDropsDesc     = prometheus.NewDesc("mcp_authz_cache_revoked_drops_total", "Verification results not cached because their token was revoked while they were verified.", nil, nil)
	redisUpDesc        = prometheus.NewDesc("mcp_authz_redis_up", "1 when the last Redis call succeeded, 0 when not; absent without Redis.", nil, nil)
	// A refused value is someone writing a revoked token's entry back into Redis, or the
	// revocation memory's fail-safe after revocation_limit was exceeded; a rejected
	// announcement is a PUBLISH without the cache secret. Neither happens between genuine
	// replicas within their limits, so both are worth an alert.
	cacheRevokedRefusedDesc = prometheus.NewDesc("mcp_authz_cache_revoked_refused_total",
		"Redis values refused because their token was revoked (or may have been: revocation_limit exceeded) within the revocation memory.", nil, nil)
	cacheAnnRejectedDesc = prometheus.NewDesc("mcp_authz_cache_revocation_announcements_rejected_total",
		"Messages on the revocation channel refused: not MAC'd with the cache secret, or outside their time window (a replay).", nil, nil)
	cacheRememberedDesc = prometheus.NewDesc("mcp_authz_cache_revocations_remembered",
		"Revocations remembered now (at most cache.revocation_limit).", nil, nil)
	cacheForgottenDesc = prometheus.NewDesc("mcp_authz_cache_revocations_forgotten_total",
		"Revocations forgotten early to stay within cache.revocation_limit; each makes Redis values that could predate it misses for a while.", nil, nil)
)

type cacheCollector struct{ stats func() CacheStats }

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheRequestsDesc, cacheRejectedDesc, cacheSetsDesc, cacheEvictionsDesc, cacheStaleDesc, cacheClaimsDesc, cacheDropsDesc, redisUpDesc,
		cacheRevokedRefusedDesc, cacheAnnRejectedDesc, cacheRememberedDesc, cacheForgottenDesc} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(cacheRequestsDesc, s.L1Hits, "l1", "hit")
	counter(cacheRequestsDesc, s.L1Misses, "l1", "miss")
	if s.RedisConfigured {
		counter(cacheRequestsDesc, s.L2Hits, "redis", "hit")
		counter(cacheRequestsDesc, s.L2Misses, "redis", "miss")
		counter(cacheRequestsDesc, s.L2Errors, "redis", "error")
		counter(cacheRequestsDesc, s.L2Skipped, "redis", "skipped")
		counter(cacheRejectedDesc, s.BadMAC, "bad_mac")
		counter(cacheRejectedDesc, s.Undecodable, "undecodable")
		counter(cacheEvictionsDesc, s.EvictionsReceived)
		counter(cacheClaimsDesc, s.ClaimsWaited)
		counter(cacheRevokedRefusedDesc, s.RevokedRefused)
		counter(cacheAnnRejectedDesc, s.AnnouncementsRejected)
		up := 0.0
		if s.RedisUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(redisUpDesc, prometheus.GaugeValue, up)
	}
	counter(cacheSetsDesc, s.Sets)
	counter(cacheStaleDesc, s.StaleUsed)
	counter(cacheDropsDesc, s.RevokedDrops)
	// Revocations are remembered with or without Redis (a verification in flight at a
	// revocation is not stored either way).
	ch <- prometheus.MustNewConstMetric(cacheRememberedDesc, prometheus.GaugeValue, float64(s.RevocationsRemembered))
	counter(cacheForgottenDesc, s.RevocationsForgotten)
}

// SetBreakers names where the introspection circuit breakers' states come from (issuer →
// 0 closed, 1 open, 2 half-open, as introspect.BreakerState); call it before serving. It is
// read at every scrape, so a reload's new verifiers show at once.
func (m *Metrics) SetBreakers(f func() map[string]int) {
	m.reg.MustRegister(&breakerCollector{states: f})
}

var breakerOpenDesc = prometheus.NewDesc("mcp_authz_introspection_breaker_open",
	"1 while the issuer's introspection circuit breaker skips calls (open, or half-open with its one probe), 0 when closed.", []string{"issuer"}, nil)

type breakerCollector struct{ states func() map[string]int }

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerOpenDesc }

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for issuer, st := range c.states() {
		open := 0.0
		if st != 0 {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(breakerOpenDesc, prometheus.GaugeValue, open, issuer)
	}
}
