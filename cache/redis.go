package cache

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis deployment modes (RedisConfig.Mode).
const (
	ModeSingle   = "single"   // one node: Addrs has one address
	ModeSentinel = "sentinel" // Addrs are sentinels watching MasterName
	ModeCluster  = "cluster"  // Addrs are seed nodes of a Redis Cluster
)

// RedisConfig names a Redis deployment. Mode says what Addrs are; several addresses never
// silently mean Cluster.
type RedisConfig struct {
	// Mode is ModeSingle, ModeSentinel or ModeCluster. Empty: ModeSentinel with MasterName,
	// ModeCluster with Cluster, else ModeSingle.
	Mode       string
	Addrs      []string
	MasterName string // Sentinel: the monitored master's name; Addrs are the sentinels
	Cluster    bool   // the older spelling of Mode: ModeCluster
	Username   string
	Password   string
	// SentinelUsername and SentinelPassword authenticate to the sentinels (their requirepass
	// or ACL user), which need not be the data nodes' credentials.
	SentinelUsername string
	SentinelPassword string
	DB               int
	TLS              bool
}

func (c RedisConfig) mode() string {
	switch {
	case c.Mode != "":
		return c.Mode
	case c.MasterName != "":
		return ModeSentinel
	case c.Cluster:
		return ModeCluster
	}
	return ModeSingle
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
	mode := c.mode()
	switch mode {
	case ModeSingle:
		if len(c.Addrs) > 1 {
			errs = append(errs, fmt.Errorf("redis: mode: single takes one address, not %d: use mode cluster for Redis Cluster seeds or mode sentinel (with master_name) for sentinels", len(c.Addrs)))
		}
	case ModeSentinel:
		if c.MasterName == "" {
			errs = append(errs, errors.New("redis: master_name: required with mode sentinel"))
		}
	case ModeCluster:
		if c.DB != 0 {
			errs = append(errs, errors.New("redis: db: Redis Cluster has only database 0"))
		}
	default:
		errs = append(errs, fmt.Errorf("redis: mode: %q: use single, sentinel or cluster", mode))
	}
	if c.MasterName != "" && mode != ModeSentinel {
		errs = append(errs, fmt.Errorf("redis: master_name: only with mode sentinel, not %s", mode))
	}
	if c.Cluster && mode != ModeCluster {
		errs = append(errs, fmt.Errorf("redis: cluster: cannot be combined with mode %s (master_name means Sentinel)", mode))
	}
	if (c.SentinelUsername != "" || c.SentinelPassword != "") && mode != ModeSentinel {
		errs = append(errs, fmt.Errorf("redis: sentinel credentials: only with mode sentinel, not %s", mode))
	}
	if c.DB < 0 {
		errs = append(errs, errors.New("redis: db: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{
		Addrs:                 c.Addrs,
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
	// The client type follows the mode alone, not the number of addresses.
	switch mode {
	case ModeSentinel:
		o.MasterName, o.SentinelUsername, o.SentinelPassword = c.MasterName, c.SentinelUsername, c.SentinelPassword
		return redis.NewFailoverClient(o.Failover()), nil
	case ModeCluster:
		return redis.NewClusterClient(o.Cluster()), nil
	}
	return redis.NewClient(o.Simple()), nil
}
