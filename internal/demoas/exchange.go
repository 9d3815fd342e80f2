package demoas

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RFC 8693 identifiers.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken    = "urn:ietf:params:oauth:token-type:access_token"
	typeJWT            = "urn:ietf:params:oauth:token-type:jwt"
)

// Exchanges counts token-exchange requests, granted or not.
func (s *Server) Exchanges() int64 { return s.exchanges.Load() }

// subject is what the demo AS knows of a token it issued.
type subject struct {
	sub, clientID string
	scopes        []string
	exp           time.Time
	act           any // the token's own act claim, if any
}

// verifyOwn accepts a token this server issued and that is still valid: a JWT signed by one of
// its keys with its issuer, or an active opaque token.
func (s *Server) verifyOwn(tok string) (subject, bool) {
	now := s.now()
	s.mu.Lock()
	if t, ok := s.opaque[tok]; ok {
		s.mu.Unlock()
		return subject{sub: t.sub, clientID: t.clientID, scopes: t.scopes, exp: t.exp}, now.Before(t.exp)
	}
	keys := make(map[string]signingKey, len(s.keys))
	for k, v := range s.keys {
		keys[k] = v
	}
	s.mu.Unlock()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return subject{}, false
	}
	k, ok := keys[jws.Signatures[0].Header.KeyID]
	if !ok {
		return subject{}, false
	}
	payload, err := jws.Verify(k.key.Public())
	if err != nil {
		return subject{}, false
	}
	var c struct {
		Iss      string  `json:"iss"`
		Sub      string  `json:"sub"`
		ClientID string  `json:"client_id"`
		Scope    string  `json:"scope"`
		Exp      float64 `json:"exp"`
		Act      any     `json:"act"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss != s.cfg.Issuer || c.Sub == "" {
		return subject{}, false
	}
	exp := time.Unix(int64(c.Exp), 0)
	return subject{sub: c.Sub, clientID: c.ClientID, scopes: strings.Fields(c.Scope), exp: exp, act: c.Act}, now.Before(exp)
}

// exchange answers the RFC 8693 token-exchange grant for a client allowed to use it: a JWT
// for the requested audience/resource (each a registered resource), with scopes no broader
// than the subject token's, whose sub is the subject's and whose act names the client (or the
// actor token's subject), nesting any act the subject token had (§4.1).
func (s *Server) exchange(w http.ResponseWriter, r *http.Request, client *Client) {
	s.exchanges.Add(1)
	if !client.TokenExchange {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "this client may not exchange tokens")
		return
	}
	f := r.PostForm
	if f.Get("subject_token_type") != typeAccessToken {
		oauthError(w, http.StatusBadRequest, "invalid_request", "subject_token_type must be an access token")
		return
	}
	subj, ok := s.verifyOwn(f.Get("subject_token"))
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the subject token is not valid")
		return
	}
	actor := map[string]any{"sub": client.ID}
	if at := f.Get("actor_token"); at != "" {
		a, ok := s.verifyOwn(at)
		if !ok || f.Get("actor_token_type") != typeAccessToken {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the actor token is not valid")
			return
		}
		actor = map[string]any{"sub": a.sub}
	}
	if subj.act != nil {
		actor["act"] = subj.act
	}
	targets := append(append([]string(nil), f["audience"]...), f["resource"]...)
	if len(targets) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_target", "name the audience or resource the token is for")
		return
	}
	for _, t := range targets {
		if !slices.Contains(s.cfg.Resources, t) {
			oauthError(w, http.StatusBadRequest, "invalid_target", "unknown audience or resource")
			return
		}
	}
	scopes := strings.Fields(f.Get("scope"))
	for _, sc := range scopes {
		if !slices.Contains(subj.scopes, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q is broader than the subject token's", sc))
			return
		}
	}
	rtt := f.Get("requested_token_type")
	switch rtt {
	case "":
		rtt = typeAccessToken
	case typeAccessToken, typeJWT:
	default:
		oauthError(w, http.StatusBadRequest, "invalid_request", "requested_token_type not supported")
		return
	}
	now := s.now()
	exp := now.Add(s.cfg.TokenTTL)
	if subj.exp.Before(exp) {
		exp = subj.exp
	}
	var aud any = targets
	if len(targets) == 1 {
		aud = targets[0]
	}
	claims := map[string]any{
		"iss": s.cfg.Issuer, "sub": subj.sub, "aud": aud, "client_id": client.ID,
		"iat": now.Unix(), "exp": exp.Unix(), "jti": randomString(16), "act": actor,
	}
	if subj.clientID != "" {
		claims["may_act_for_client"] = subj.clientID
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	tok, err := s.Mint(claims, MintOptions{})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	resp := map[string]any{"access_token": tok, "issued_token_type": rtt, "token_type": "Bearer",
		"expires_in": max(1, int(exp.Sub(now).Seconds()))}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}
