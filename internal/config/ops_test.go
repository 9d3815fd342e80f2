package config

import (
	"strings"
	"testing"
	"time"
)

// Several addresses used to mean Redis Cluster without a word: a list of Sentinel addresses
// without master_name, or a replica list, became a ClusterClient. The mode is now said.
func TestRedisModeIsExplicit(t *testing.T) {
	redis := func(body string) string {
		return "cache:\n  secret: {env: S}\n  redis:\n" + body + good
	}
	for _, tc := range []struct {
		name, yaml string
		wantKey    string // "" when valid
		wantFix    string // what the error must tell the operator to do
		wantMode   string
	}{
		{"one address is single", redis("    addrs: [127.0.0.1:6379]\n"), "", "", "single"},
		{"several addresses need a mode", redis("    addrs: [a:6379, b:6379]\n"), "cache.redis.mode", "mode: cluster", ""},
		{"cluster mode", redis("    mode: cluster\n    addrs: [a:6379, b:6379]\n"), "", "", "cluster"},
		{"older cluster flag", redis("    cluster: true\n    addrs: [a:6379]\n"), "", "", "cluster"},
		{"master_name means sentinel", redis("    master_name: mymaster\n    addrs: [a:26379, b:26379]\n"), "", "", "sentinel"},
		{"sentinel mode", redis("    mode: sentinel\n    master_name: mymaster\n    addrs: [a:26379]\n    sentinel_password: {env: SP}\n    sentinel_username: sent\n"), "", "", "sentinel"},
		{"sentinel needs master_name", redis("    mode: sentinel\n    addrs: [a:26379]\n"), "cache.redis.master_name", "master_name:", ""},
		{"master_name outside sentinel", redis("    mode: single\n    master_name: m\n    addrs: [a:6379]\n"), "cache.redis.master_name", "mode: sentinel", ""},
		{"unknown mode", redis("    mode: replicated\n    addrs: [a:6379]\n"), "cache.redis.mode", "single, sentinel or cluster", ""},
		{"cluster flag disagrees", redis("    mode: single\n    cluster: true\n    addrs: [a:6379]\n"), "cache.redis.cluster", "remove", ""},
		{"sentinel password outside sentinel", redis("    addrs: [a:6379]\n    sentinel_password: {env: SP}\n"), "cache.redis.sentinel_password", "mode: sentinel", ""},
		{"sentinel username outside sentinel", redis("    mode: cluster\n    addrs: [a:6379]\n    sentinel_username: u\n"), "cache.redis.sentinel_username", "mode: sentinel", ""},
		{"sentinel password env and file", redis("    mode: sentinel\n    master_name: m\n    addrs: [a:26379]\n    sentinel_password: {env: SP, file: /x}\n"), "cache.redis.sentinel_password", "not both", ""},
		{"cluster db", redis("    mode: cluster\n    addrs: [a:6379]\n    db: 1\n"), "cache.redis.db", "database 0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if tc.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Cache.Redis.Mode != tc.wantMode {
					t.Errorf("mode %q, want %q", c.Cache.Redis.Mode, tc.wantMode)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error naming %s", tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantKey+":") || !strings.Contains(err.Error(), tc.wantFix) {
				t.Errorf("error %q: want the key %s and the fix %q", err, tc.wantKey, tc.wantFix)
			}
		})
	}
}

func TestCheckTimeoutAndShutdownDefaults(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.CheckTimeout.D() != DefaultCheckTimeout {
		t.Errorf("check_timeout %s, want %s", c.CheckTimeout.D(), DefaultCheckTimeout)
	}
	if c.Shutdown.Drain == nil || c.Shutdown.Drain.D() != DefaultDrain || c.Shutdown.Timeout.D() != 10*time.Second {
		t.Errorf("shutdown %+v", c.Shutdown)
	}
	// An explicit 0s turns the drain off; it is not "unset".
	c, err = Parse([]byte("shutdown: {drain: 0s}\n" + good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shutdown.Drain == nil || *c.Shutdown.Drain != 0 {
		t.Errorf("drain: 0s became %v", c.Shutdown.Drain)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := Parse(out); err != nil || again.Shutdown.Drain == nil || *again.Shutdown.Drain != 0 {
		t.Errorf("drain 0s does not survive check-config's output: %v %v", err, again)
	}
}

// The default introspection timeout fits in the default Check budget, and a configuration in
// which it cannot is refused with the key and the fix.
func TestCheckTimeoutCoversIntrospection(t *testing.T) {
	introspect := func(extra string) string {
		return extra + strings.Replace(good, "- issuer: https://as.example.com",
			"- issuer: https://as.example.com\n    introspection: {client_id: rs, client_secret: {env: X}}", 1)
	}
	if _, err := Parse([]byte(introspect(""))); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	_, err := Parse([]byte(introspect("check_timeout: 1s\n")))
	if err == nil || !strings.Contains(err.Error(), "issuers[0].introspection.timeout:") || !strings.Contains(err.Error(), "check_timeout") {
		t.Fatalf("introspection.timeout 2s under check_timeout 1s: %v", err)
	}
	if _, err := Parse([]byte("check_timeout: 2m\n" + good)); err == nil || !strings.Contains(err.Error(), "check_timeout:") {
		t.Errorf("check_timeout 2m: %v", err)
	}
}
