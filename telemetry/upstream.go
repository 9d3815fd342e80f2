package telemetry

import "github.com/prometheus/client_golang/prometheus"

// UpstreamStats are the exchanged-token cache's counters (package authz/upstream), read at
// scrape time. Token-endpoint calls themselves are in mcp_authz_idp_requests_total with
// kind token_exchange or client_credentials.
type UpstreamStats struct {
	L1Hits, RedisHits, Misses, Refused, BadValues, ClaimsWaited uint64
}

// SetUpstreamStats registers the exchanged-token cache's collector; call it once.
func (m *Metrics) SetUpstreamStats(f func() UpstreamStats) {
	m.reg.MustRegister(&upstreamCollector{stats: f})
}

var (
	upLookups = prometheus.NewDesc("mcp_authz_exchanged_token_cache_requests_total",
		"Exchanged-token cache lookups by result (l1, redis: hits; miss: a token exchange followed). Hit ratio: hits / all.",
		[]string{"result"}, nil)
	upRefused = prometheus.NewDesc("mcp_authz_exchanged_token_cache_revoked_refused_total",
		"Cached exchanged tokens not used because the caller's token was revoked after they were made.", nil, nil)
	upBad = prometheus.NewDesc("mcp_authz_exchanged_token_cache_bad_values_total",
		"Redis values of the exchanged-token cache that did not open under the cache secret or were malformed.", nil, nil)
	upWaited = prometheus.NewDesc("mcp_authz_exchanged_token_claims_waited_total",
		"Exchanges another replica was already making, waited for instead of repeated.", nil, nil)
)

type upstreamCollector struct{ stats func() UpstreamStats }

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upLookups
	ch <- upRefused
	ch <- upBad
	ch <- upWaited
}

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(upLookups, prometheus.CounterValue, float64(s.L1Hits), "l1")
	ch <- prometheus.MustNewConstMetric(upLookups, prometheus.CounterValue, float64(s.RedisHits), "redis")
	ch <- prometheus.MustNewConstMetric(upLookups, prometheus.CounterValue, float64(s.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(upRefused, prometheus.CounterValue, float64(s.Refused))
	ch <- prometheus.MustNewConstMetric(upBad, prometheus.CounterValue, float64(s.BadValues))
	ch <- prometheus.MustNewConstMetric(upWaited, prometheus.CounterValue, float64(s.ClaimsWaited))
}
