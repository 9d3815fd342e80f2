package service

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/forwardauth"
)

// httpHandler serves RFC 9728 metadata (the same precomputed answers Check gives Envoy), and
// liveness and readiness for orchestrators.
func (s *Service) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", s.ready)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/.well-known/", s.metadata)
	mux.HandleFunc("POST /admin/revoke", s.revoke)
	// Forward-auth for HTTP proxies: nginx auth_request, Traefik/Caddy forward-auth (original
	// request in X-Forwarded-*/X-Original-* headers), and Envoy's HTTP ext_authz service with
	// path_prefix /forward-auth (original path appended).
	fa := forwardauth.HandlerWith(liveCore{s}, forwardauth.Options{
		ClientCertHeader: s.cfg.ForwardAuth.ClientCertificateHeader, TrustedProxies: s.cfg.TrustedProxies()})
	mux.Handle("/forward-auth", fa)
	mux.Handle("/forward-auth/", http.StripPrefix("/forward-auth", fa))
	return mux
}

func (s *Service) metadata(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource") {
		http.NotFound(w, r)
		return
	}
	d := liveCore{s}.Check(r.Context(), &authz.Request{
		Method: r.Method, Host: r.Host, Path: r.URL.RequestURI(), Headers: map[string]string{},
	})
	if d.Reason != authz.ReasonMetadata {
		http.NotFound(w, r)
		return
	}
	for _, h := range d.Headers {
		w.Header().Set(h.Name, h.Value)
	}
	w.WriteHeader(d.Status)
	if r.Method != http.MethodHead {
		w.Write(d.Body)
	}
}

// ready reports each issuer's verifiers: JWT keys loaded, and how the last introspection (or
// its endpoint's discovery) went. It answers 200 even when an IdP is down: taking every
// replica out of rotation because the IdP is unreachable would turn an IdP outage into a
// total one, while cached tokens and other issuers still work. The detail says what is wrong.
// It answers 503 while the replica drains before stopping.
func (s *Service) ready(w http.ResponseWriter, _ *http.Request) {
	type verifierState struct {
		Ready bool   `json:"ready"`
		Error string `json:"error,omitempty"`
		Since string `json:"since,omitempty"`
	}
	type issuerState struct {
		Ready         bool           `json:"ready"`
		Error         string         `json:"error,omitempty"`
		Keys          *verifierState `json:"keys,omitempty"`
		Introspection *verifierState `json:"introspection,omitempty"`
	}
	type cacheState struct {
		L1             bool   `json:"l1"`
		Redis          bool   `json:"redis_configured"`
		RedisUp        bool   `json:"redis_up"`
		Breaker        string `json:"breaker,omitempty"`
		LastRedisError string `json:"last_redis_error,omitempty"`
	}
	live := s.live.Load()
	out := struct {
		Serving bool                   `json:"serving"`
		Issuers map[string]issuerState `json:"issuers"`
		Cache   *cacheState            `json:"cache,omitempty"`
	}{Serving: !s.draining.Load(), Issuers: map[string]issuerState{}}
	if s.cache != nil {
		h := s.cache.Health()
		out.Cache = &cacheState{L1: live.cfg.Cache.L1Size > 0, Redis: h.RedisConfigured, RedisUp: h.RedisUp, Breaker: h.BreakerState, LastRedisError: h.LastError}
	}
	keys := map[string]error{}
	for _, v := range live.jwts {
		keys[v.Issuer()] = v.Ready()
	}
	for _, is := range live.cfg.Issuers {
		st := issuerState{Ready: true}
		note := func(vs *verifierState) *verifierState {
			if !vs.Ready {
				st.Ready = false
				if st.Error == "" {
					st.Error = vs.Error
				}
			}
			return vs
		}
		if err, ok := keys[is.Issuer]; ok {
			vs := &verifierState{Ready: err == nil}
			if err != nil {
				vs.Error = err.Error()
			}
			st.Keys = note(vs)
		}
		if is.Introspection != nil {
			// Known from the calls themselves; until the first one nothing says it is down.
			vs := &verifierState{Ready: true}
			if h, ok := s.metrics.IdPHealth("introspection", is.Issuer); ok {
				vs = &verifierState{Ready: h.OK, Error: h.Error, Since: h.Since.UTC().Format(time.RFC3339)}
			}
			st.Introspection = note(vs)
		}
		out.Issuers[is.Issuer] = st
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !out.Serving {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(out)
}

// revoke evicts a token from every cache tier of every replica: Redis, and through Redis
// pub/sub each replica's L1. The token (form field "token") or its cache key ("key", hex, as
// logs never show tokens) identifies it. Only with admin.token configured, and only for a
// caller presenting it.
func (s *Service) revoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.adminToken == "" || s.cache == nil {
		http.Error(w, "revocation is not enabled (admin.token and a cache are required)", http.StatusNotFound)
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.adminToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcp-authz-admin"`)
		http.Error(w, "admin token required", http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "want a form body with token= or key=", http.StatusBadRequest)
		return
	}
	var key [32]byte
	switch tok, hexKey := r.PostForm.Get("token"), r.PostForm.Get("key"); {
	case tok != "" && hexKey == "":
		key = s.cache.Key(tok)
	case hexKey != "" && tok == "":
		b, err := hex.DecodeString(hexKey)
		if err != nil || len(b) != len(key) {
			http.Error(w, "key: want 64 hex digits", http.StatusBadRequest)
			return
		}
		copy(key[:], b)
	default:
		http.Error(w, "give exactly one of token= or key=", http.StatusBadRequest)
		return
	}
	if err := s.cache.Revoke(r.Context(), key); err != nil {
		// Local L1 is evicted even so; other replicas may keep it until its TTL.
		s.log.Warn("revocation not propagated through redis", "key", hex.EncodeToString(key[:]), "error", err)
		http.Error(w, "evicted locally; redis unavailable, other replicas keep it until its TTL", http.StatusServiceUnavailable)
		return
	}
	s.log.Info("token revoked", "key", hex.EncodeToString(key[:]))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"revoked\":\"%s\"}\n", hex.EncodeToString(key[:]))
}
