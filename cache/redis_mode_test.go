package cache_test

import (
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/cache"
)

// The client type follows the configured mode, never the number of addresses: a list of
// sentinels without master_name, or a primary and its replica, is refused instead of becoming
// a Cluster client.
func TestRedisClientFollowsMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  cache.RedisConfig
		want string // error substring, or the client type
	}{
		{"several addresses, no mode", cache.RedisConfig{Addrs: []string{"a:1", "b:1"}}, "mode"},
		{"several addresses, single", cache.RedisConfig{Mode: cache.ModeSingle, Addrs: []string{"a:1", "b:1"}}, "mode"},
		{"cluster", cache.RedisConfig{Mode: cache.ModeCluster, Addrs: []string{"a:1", "b:1"}}, "*redis.ClusterClient"},
		{"sentinel without master name", cache.RedisConfig{Mode: cache.ModeSentinel, Addrs: []string{"a:26379"}}, "master_name"},
		{"sentinel credentials outside sentinel", cache.RedisConfig{Addrs: []string{"a:1"}, SentinelPassword: "p"}, "sentinel"},
		{"master name in cluster mode", cache.RedisConfig{Mode: cache.ModeCluster, Addrs: []string{"a:1"}, MasterName: "m"}, "master_name"},
		{"unknown mode", cache.RedisConfig{Mode: "replicated", Addrs: []string{"a:1"}}, "mode"},
		{"sentinel with credentials", cache.RedisConfig{Mode: cache.ModeSentinel, Addrs: []string{"a:26379", "b:26379"}, MasterName: "m",
			SentinelUsername: "s", SentinelPassword: "sp", Password: "p"}, "*redis.Client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.NewRedisClient(tc.cfg)
			if strings.HasPrefix(tc.want, "*") {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := typeName(c); got != tc.want {
					t.Fatalf("client %s, want %s", got, tc.want)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sp") && tc.cfg.SentinelPassword == "sp" {
				t.Fatal("the error repeats the password")
			}
		})
	}
}
