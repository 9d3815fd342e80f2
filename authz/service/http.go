package service

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz"
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
	mux.HandleFunc("/.well-known/", s.metadata)
	return mux
}

func (s *Service) metadata(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource") {
		http.NotFound(w, r)
		return
	}
	d := s.core.Check(r.Context(), &authz.Request{
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

// ready reports per-issuer key state. It answers 200 even when an IdP is down: taking every
// replica out of rotation because the IdP is unreachable would turn an IdP outage into a
// total one, while cached tokens and other issuers still work. The detail says what is wrong.
func (s *Service) ready(w http.ResponseWriter, _ *http.Request) {
	type issuerState struct {
		Ready bool   `json:"ready"`
		Error string `json:"error,omitempty"`
	}
	out := struct {
		Serving bool                   `json:"serving"`
		Issuers map[string]issuerState `json:"issuers"`
	}{Serving: true, Issuers: map[string]issuerState{}}
	for _, v := range s.jwts {
		st := issuerState{Ready: true}
		if err := v.Ready(); err != nil {
			st = issuerState{Error: err.Error()}
		}
		out.Issuers[v.Issuer()] = st
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}
