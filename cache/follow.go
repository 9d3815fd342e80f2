package cache

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// followMaster keeps the revocation subscription on the master the sentinels name.
//
// go-redis's failover client drops its pooled connections to a demoted master when a sentinel
// announces +switch-master, but not a subscription's connection. After a planned failover the
// old master keeps running, so the subscription stays on it and hears nothing that replicas
// now publish on the new master, until the sentinels turn the old master into a replica (their
// INFO period, about 10s): every revocation announced meanwhile is lost. So each sentinel is
// watched for +switch-master, and when the master moves the subscription is made again (the
// failover client dials the master the sentinels name now). The new subscription starts a new
// epoch, exactly like a reconnect: entries stored before it may have missed a revocation and
// are re-verified before they are trusted again.
//
// When a watcher (re)connects it asks its sentinel for the master, so a switch announced while
// it was away is not missed. The first answer is the baseline, not a switch: the subscription
// New made moments before went to that master. A sentinel whose view lags may cost one move
// too many, which costs only re-verifications.
func (t *Tiered) followMaster(rc RedisConfig) {
	var (
		mu   sync.Mutex
		last string
	)
	// moved reports a master address; announced: from +switch-master rather than a query.
	moved := func(addr string, announced bool) {
		mu.Lock()
		baseline := last == "" && !announced
		changed := addr != last
		last = addr
		mu.Unlock()
		if changed && !baseline {
			t.log.Info("cache: redis master changed; moving the revocation subscription to it", "master", addr)
			t.resubscribe()
		}
	}
	for _, addr := range rc.Addrs {
		o := &redis.Options{
			Addr:                  addr,
			Username:              rc.SentinelUsername,
			Password:              rc.SentinelPassword,
			DialTimeout:           time.Second,
			ContextTimeoutEnabled: true,
			MaxRetries:            1,
			ClientName:            "mcp-authz",
		}
		if rc.TLS {
			host, _, _ := net.SplitHostPort(addr)
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		}
		sc := redis.NewSentinelClient(o)
		// No channel yet: subscribing dials, and an unreachable sentinel must not hold New up.
		ps := sc.Subscribe(context.Background())
		t.watchers = append(t.watchers, ps, sc)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitRoundTrips*t.timeout)
			// A failure here is retried by the subscription's own reconnects.
			_ = ps.Subscribe(ctx, "+switch-master")
			cancel()
			for msg := range ps.ChannelWithSubscriptions() {
				switch m := msg.(type) {
				case *redis.Subscription:
					if m.Kind != "subscribe" {
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					a, err := sc.GetMasterAddrByName(ctx, rc.MasterName).Result()
					cancel()
					if err == nil && len(a) == 2 {
						moved(net.JoinHostPort(a[0], a[1]), false)
					}
				case *redis.Message:
					// "<master name> <old ip> <old port> <new ip> <new port>"
					f := strings.Fields(m.Payload)
					if len(f) == 5 && f[0] == rc.MasterName {
						moved(net.JoinHostPort(f[3], f[4]), true)
					}
				}
			}
		}()
	}
}

// resubscribe replaces the revocation subscription with a new one, dialled afresh.
func (t *Tiered) resubscribe() {
	t.subMu.Lock()
	defer t.subMu.Unlock()
	select {
	case <-t.closing:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitRoundTrips*t.timeout)
	defer cancel()
	old := t.sub
	t.sub = t.rdb.Subscribe(ctx, t.channel)
	t.listeners.Add(1)
	go t.listen(t.sub.ChannelWithSubscriptions(), nil)
	// The old master may hang, and PubSub.Close can then wait for the read timeout; its
	// listen ends when it is closed, and Close waits for that.
	go func() { _ = old.Close() }()
}
