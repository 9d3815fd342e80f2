package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// denialEvery is how often one issuer's denials of one class are logged at info: enough to
// see a misconfiguration at once, too few for a flood of bad tokens to flood the log.
const denialEvery = time.Minute

// maxDenialKeys bounds the limiter: issuers come from configuration (reloads may add some)
// and classes from a fixed set, so this is only reached across many reloads; it then starts
// afresh, which costs at most one extra line per key.
const maxDenialKeys = 1024

type denialKey struct {
	issuer string
	class  identity.Class
}

// denialLog writes the "token refused" line: per issuer and class, the first denial and then
// at most one per denialEvery, with how many were not logged since.
type denialLog struct {
	mu   sync.Mutex
	last map[denialKey]denialState
	now  func() time.Time
}

type denialState struct {
	at         time.Time
	suppressed int
}

// allow reports whether a line is due for k, and how many were held back before it.
func (l *denialLog) allow(k denialKey) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) >= maxDenialKeys {
		l.last = map[denialKey]denialState{}
	}
	st, seen := l.last[k]
	if seen && now.Sub(st.at) < denialEvery {
		st.suppressed++
		l.last[k] = st
		return false, 0
	}
	l.last[k] = denialState{at: now}
	return true, st.suppressed
}

// explainDenial logs and counts a refused token: the class and the fix, never the token (the
// error text is our own, fixed or built from configuration and verified claims).
func (s *Service) explainDenial(ctx context.Context, r *authz.Request, d *authz.Decision) {
	switch d.Reason {
	case authz.ReasonInvalidToken, authz.ReasonUnavailable, authz.ReasonInsufficientScope:
	default:
		return
	}
	if d.Err == nil {
		return
	}
	e := authz.Explain(d.Err)
	if d.Reason == authz.ReasonInsufficientScope {
		e.Class, e.Fix = identity.ClassScope, "the client must request the scope named in the challenge (step-up) and the AS must grant it"
	}
	s.metrics.Denial(e.Issuer, string(e.Class))
	if e.Class == identity.ClassCached {
		return // its class was logged when it was first refused
	}
	ok, held := s.denials.allow(denialKey{e.Issuer, e.Class})
	if !ok || !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("class", string(e.Class)),
		slog.String("issuer", e.Issuer),
		slog.String("resource", d.Resource),
		slog.String("request_id", r.ID),
	}
	if e.Fix != "" {
		attrs = append(attrs, slog.String("fix", e.Fix))
	}
	attrs = append(attrs, slog.String("detail", d.Err.Error()))
	if held > 0 {
		attrs = append(attrs, slog.Int("similar_not_logged", held))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "token refused", attrs...)
}
