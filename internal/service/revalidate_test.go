package service

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
)

// issuers[].revalidate_after: a token revoked at the authorization server is refused within
// about revalidate_after, not cache.max_ttl (5m here); the Check after revalidate_after is
// still answered from the cache, and starts the re-introspection whose "inactive" denies the
// Checks after it.
func TestRevalidateAfterReachesRevocation(t *testing.T) {
	const after = time.Second
	a, srv := as(t)
	rd := redistest.Start(t)
	r := replicaWith(t, srv.URL, []string{rd.Addr()}, func(c *config.Config) {
		c.Cache.MaxTTL = config.Duration(5 * time.Minute)
		c.Issuers[0].RevalidateAfter = config.Duration(after)
	}, Options{})
	tok := a.IssueOpaque("erin", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r, tok)) {
		t.Fatal("refused before the revocation")
	}
	before := a.Counts().Introspect
	a.Revoke(tok) // at the authorization server only
	if !allowed(checkToken(t, r, tok)) {
		t.Fatal("refused within revalidate_after: the cached answer should serve")
	}
	time.Sleep(after + 100*time.Millisecond)
	checkToken(t, r, tok)
	waitUntil(t, "the re-introspection", func() bool { return a.Counts().Introspect > before })
	waitUntil(t, "the revoked token to be denied", func() bool { return !allowed(checkToken(t, r, tok)) })
}
