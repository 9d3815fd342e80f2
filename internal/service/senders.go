package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/internal/config"
)

// senders is the DPoP state a process keeps across reloads: the replay record (a reload must
// not forget which proofs were used) and the keys derived from cache.secret, which every
// replica shares, so that any replica can check another's nonces and the replay keys agree.
type senders struct {
	replayKey, nonceKey []byte
	replay              *dpop.Replay
}

// start sets up the replay record: in Redis when configured, else in this process only.
func (s *senders) start(cfg *config.Config, o Options, cacheKey []byte, rdb redis.UniversalClient) {
	s.replayKey = derive(cacheKey, "mcp-authz dpop replay")
	s.nonceKey = derive(cacheKey, "mcp-authz dpop nonce")
	var store dpop.Store
	if rdb != nil {
		// Refusing a proof because Redis was slow for a moment fails closed but hurts; the
		// replay write is one SET NX, so it gets more time than a cache read (at least 200ms).
		store = cache.NewDPoPReplay(rdb, "", max(cfg.Cache.Redis.Timeout.D(), 200*time.Millisecond))
	}
	s.replay = dpop.NewReplay(store, cfg.DPoP.ReplayMemory, o.Logger, o.Now)
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// checker builds the proof checker of one configuration; nil when no resource accepts DPoP.
// Without started state (check-config, doctor) it uses a throwaway one.
func (s *senders) checker(cfg *config.Config, o Options) (*dpop.Checker, error) {
	if !cfg.UsesDPoP() {
		return nil, nil
	}
	if s == nil || s.replay == nil {
		k := make([]byte, 32)
		rand.Read(k)
		s = &senders{replayKey: k, nonceKey: k, replay: dpop.NewReplay(nil, cfg.DPoP.ReplayMemory, o.Logger, o.Now)}
	}
	d := cfg.DPoP
	c := dpop.Config{
		Algs:               d.Algs,
		Window:             d.IATWindow.D(),
		Skew:               cfg.ClockSkew.D(),
		ReplayKey:          s.replayKey,
		Replay:             s.replay,
		DenyWhenReplayDown: d.OnReplayStoreUnavailable != "iat_window",
		Now:                o.Now,
	}
	if d.Nonce {
		c.Nonces = dpop.NewNonces(s.nonceKey, d.NonceLifetime.D(), cfg.ClockSkew.D())
	}
	k, err := dpop.NewChecker(c)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	return k, nil
}
