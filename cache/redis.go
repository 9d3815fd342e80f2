package cache

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig names a Redis deployment: one address for a single node, several (or Cluster) for
// Redis Cluster, MasterName plus Sentinel addresses for Sentinel.
type RedisConfig struct {
	Addrs      []string
	MasterName string // Sentinel: the monitored master's name; Addrs are the sentinels (no auth)
	Cluster    bool   // Redis Cluster even with a single seed address
	Username   string
	Password   string
	DB         int
	TLS        bool
}

// NewRedisClient builds a client tuned for a cache that must never hold a request up: context
// deadlines are honoured on the socket, at most one quick retry (a pooled connection that died
// with a Redis restart), short dial.
func NewRedisClient(c RedisConfig) (redis.UniversalClient, error) {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("redis: addrs: at least one address required"))
	}
	for _, a := range c.Addrs {
		if a == "" {
			errs = append(errs, errors.New("redis: addrs: empty address"))
			break
		}
	}
	cluster := c.MasterName == "" && (c.Cluster || len(c.Addrs) > 1)
	if cluster && c.DB != 0 {
		errs = append(errs, errors.New("redis: db: Redis Cluster has only database 0"))
	}
	if c.MasterName != "" && c.Cluster {
		errs = append(errs, errors.New("redis: cluster: cannot be combined with master_name (Sentinel)"))
	}
	if c.DB < 0 {
		errs = append(errs, errors.New("redis: db: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		IsClusterMode:         cluster,
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DB,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		MinRetryBackoff:       time.Millisecond,
		MaxRetryBackoff:       8 * time.Millisecond,
		DialTimeout:           time.Second,
		ClientName:            "mcp-authz",
	}
	if c.TLS {
		// ServerName comes from each dialled address, so Sentinel-discovered and cluster
		// nodes are verified by their own names.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(o), nil
}
