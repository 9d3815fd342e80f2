package service

import (
	"testing"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/cache"
)

// The cache's verifier reports where its answer came from in its own words (it must not import
// the core); Decision.Tier passes them on, so both must say the same.
func TestCacheTiersAreTheCoresTiers(t *testing.T) {
	for _, p := range [][2]string{
		{cache.TierL1, authz.TierL1}, {cache.TierRedis, authz.TierRedis},
		{cache.TierIdP, authz.TierIdP}, {cache.TierStale, authz.TierStale},
	} {
		if p[0] != p[1] {
			t.Errorf("cache tier %q, core tier %q", p[0], p[1])
		}
	}
}
