package service

import (
	"testing"
	"time"
)

// A cached exchange: the caller's JWT from L1, its exchanged token from the exchanged-token
// L1 (issue 19's target: at most 1.2× BenchmarkCheckCachedJWT's CPU in the same run). The
// difference is the exchange's cache key (an HMAC of the caller's token), the revocation
// check (the token's cache key, another HMAC) and the credential headers.
func BenchmarkCheckCachedExchange(b *testing.B) {
	a, srv := exchangeAS(b, time.Hour)
	cfg := benchConfig(srv.URL, 1000)
	withExchange(b, downstreamAPI)(cfg)
	s := startBench(b, cfg)
	tok := callerToken(b, a, srv.URL, "bench-user", "mcp:tools mcp:read api:read", time.Hour)
	loopAllowed(b, s.ext, benchReq(tok))
	if n := a.Exchanges(); n != 1 {
		b.Fatalf("%d exchanges: the loop did not measure cached exchanges", n)
	}
}
