// Package jwt verifies JWT access tokens locally, with keys from the issuer's JWKS, and reduces
// a good one to an identity.Identity.
//
// It implements the resource-server checks of:
//   - RFC 9068 §4: typ at+jwt (when required), iss identical to the configured issuer, a
//     signature by one of the issuer's keys with an allow-listed asymmetric alg, exp/nbf/iat;
//     the aud check is the caller's, per resource, against Identity.Audience;
//   - RFC 8725 §3.1 and §3.2 (no "none", no HMAC, no key/alg confusion: a JWK's alg binds it),
//     §3.8 (exact issuer), §3.10 (kid is only a lookup key; jku, x5u, jwk and x5c headers are
//     never followed) and §3.11 (explicit typing);
//   - RFC 7515 §4.1.11: a token with a crit header is refused (we understand no extensions);
//   - RFC 7519 §4.1.4, §4.1.5, §4.1.6: exp (required here), nbf, iat, with a configured leeway;
//   - RFC 7517 §5: JWKS members we cannot use (unknown kty, use other than sig) are ignored.
//
// Only access tokens pass. RFC 9068 §2.1 types them (at+jwt) so that other JWTs from the same
// issuer cannot stand in for them, but issuers that send typ JWT (allowed through AllowTyp)
// and ID tokens look alike; a token that shows it is an OpenID Connect ID token or another
// kind of JWT is refused whatever its typ (see claims.notAccess).
//
// The header and the payload are read strictly (package strictjson): a duplicate member, two
// names that differ only in case, or invalid UTF-8 make the token invalid, so that no claim
// can mean one thing here and another to the next reader of the same token.
//
// Who does what. github.com/coreos/go-oidc verifies the signature, through an oidc.KeySet made
// for each token that holds exactly the keys chosen for it (tokenKeys: no context plumbing),
// and compares iss. Everything around that is ours, each for a reason:
//   - discovery (package asmeta) and the JWKS (keySet): go-oidc's provider knows only OIDC
//     discovery, not RFC 8414's path-inserted metadata, and its remote key set has neither
//     bounded staleness nor a rate limit on unknown kids; ours loads lazily, so startup never
//     waits on an identity provider, refreshes on an unknown kid at most once per interval,
//     and keeps the last good keys when the provider is down;
//   - the header checks before any crypto (shape, strict JSON, typ, crit, kid and alg): junk
//     costs neither a signature check nor a JWKS fetch, and "unavailable" needs no smuggling
//     through go-oidc's error text;
//   - the claims, read again with the strict reader (go-oidc reads them with encoding/json,
//     which folds case: {"ISS": …} passes its iss check), with our own leeway for exp, nbf and
//     iat (go-oidc has none for exp and five minutes for nbf).
package jwt

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcp-authz/mcp-authz/authz/asmeta"
	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
	"github.com/mcp-authz/mcp-authz/authz/internal/tokencheck"
)

// Config configures one issuer's Verifier.
type Config struct {
	// Issuer is compared, as an exact string, with every token's iss (RFC 8725 §3.8).
	Issuer string
	// JWKSURL is where the issuer's keys are. When empty it is discovered, lazily, from the
	// issuer's RFC 8414 or OIDC metadata.
	JWKSURL string
	// Algorithms is the allow-list of signature algorithms (config's default:
	// config.DefaultAlgorithms). Only asymmetric algorithms are accepted: "none" and HS* are
	// refused by New.
	Algorithms []string
	// RequireTyp demands the RFC 9068 header typ at+jwt or application/at+jwt
	// (case-insensitive), which keeps ID tokens and other JWTs from passing as access tokens.
	RequireTyp bool
	// ClockSkew is the leeway for exp, nbf and iat. Zero means none: the default (30 s) is
	// the configuration layer's, so that an explicit 0 stays possible here.
	ClockSkew time.Duration
	// Claims names extra claims kept, as JSON text, in Identity.Claims for identity headers
	// and policy rules.
	Claims []string
	// AllowTyp lists further typ header values accepted when RequireTyp is set, for issuers
	// that label access tokens "JWT" (an escape hatch: such tokens are not explicitly typed,
	// RFC 8725 §3.11; ID tokens of the same issuer are still refused by their claims). A
	// typ that names another kind of token (id_token, refresh_token, logout+jwt …) is
	// refused by New.
	AllowTyp []string
	// RolesAsScopes also reads the roles claim (an array of strings) as granted scopes: Entra
	// ID puts an app-only token's application permissions there, and no scp.
	RolesAsScopes bool
	// RefreshInterval is the minimum time between JWKS fetches caused by an unknown kid or a
	// due refresh; at least 1 s (config's default: 30 s).
	RefreshInterval time.Duration
	// MaxStale is how long keys past their Cache-Control lifetime keep verifying while every
	// refresh fails (the issuer is down); 0: not at all (config's default: 24 h). After it,
	// tokens are "unavailable" until a refresh succeeds: a withdrawn key must not verify
	// forever.
	MaxStale time.Duration
	// Observer, when set, is told about JWKS fetches and the use of stale keys (metrics).
	Observer Observer
	// HTTPClient fetches discovery and JWKS; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives key-loading events; default discards them.
	Logger *slog.Logger
}

// Observer receives key-set events. Calls are synchronous and must be cheap.
type Observer interface {
	// KeysFetched reports one discovery + JWKS load: err nil on success.
	KeysFetched(issuer string, err error, took time.Duration)
	// StaleKeys reports a verification with keys past their TTL (a refresh is failing).
	StaleKeys(issuer string)
}

// Verifier verifies access tokens from one issuer. It is safe for concurrent use.
type Verifier struct {
	issuer     string
	parseAlgs  []jose.SignatureAlgorithm
	requireTyp bool
	allowTyp   []string
	// rolesAsScopes: see Config.RolesAsScopes.
	rolesAsScopes bool
	skew          time.Duration
	claims        []string
	now           func() time.Time
	keys          *keySet
	oidcConfig    oidc.Config
}

// maxTokenLen bounds what we parse. Real access tokens are 1–4 KiB; past this a token is an
// attack on the parser (or a mistake) whatever it says.
const maxTokenLen = tokencheck.MaxTokenLen

// asymmetric is every JWS alg New can accept (RFC 7518 §3.1 and RFC 8037 §3.1).
var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// New checks cfg and returns a Verifier. It performs no network I/O: discovery and keys are
// loaded on the first Verify (or Warm).
func New(cfg Config) (*Verifier, error) {
	if err := checkURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("jwt: issuer %q: %v", cfg.Issuer, err)
	}
	if cfg.JWKSURL != "" {
		if err := checkURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("jwt: jwks url %q: %v", cfg.JWKSURL, err)
		}
	}
	// No defaults here: the configuration's (package config) are the only ones, and a zero
	// value would otherwise mean two things.
	algs := cfg.Algorithms
	if len(algs) == 0 {
		return nil, errors.New("jwt: no algorithms: name the accepted asymmetric algorithms (config.DefaultAlgorithms)")
	}
	var parseAlgs []jose.SignatureAlgorithm
	for _, a := range algs {
		if !asymmetric[a] {
			return nil, fmt.Errorf("jwt: algorithm %q not allowed: only asymmetric algorithms (RFC 8725 §3.1)", a)
		}
		parseAlgs = append(parseAlgs, jose.SignatureAlgorithm(a))
	}
	for _, t := range cfg.AllowTyp {
		if k := identity.KindOf(t); k != identity.KindUnknown && k != identity.KindAccess {
			return nil, fmt.Errorf("jwt: allow_typ %q names %s, never an access token (RFC 9068 §2.1); remove it", t, k)
		}
	}
	if cfg.ClockSkew < 0 {
		return nil, fmt.Errorf("jwt: clock skew %s is negative", cfg.ClockSkew)
	}
	interval := cfg.RefreshInterval
	if interval < time.Second {
		return nil, fmt.Errorf("jwt: refresh interval %s is under 1s", interval)
	}
	maxStale := cfg.MaxStale
	if maxStale < 0 {
		return nil, fmt.Errorf("jwt: max stale %s is negative", maxStale)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	// Keys fetched from an https URL must not be handed over in clear by a redirect.
	client = asmeta.NoDowngrade(client)
	var claims []string
	for _, c := range cfg.Claims {
		if c != "" {
			claims = append(claims, c)
		}
	}
	ks := &keySet{
		issuer:   cfg.Issuer,
		jwksURL:  cfg.JWKSURL,
		client:   client,
		interval: interval,
		maxStale: maxStale,
		now:      now,
		log:      log.With("issuer", cfg.Issuer),
		observe:  cfg.Observer,
	}
	v := &Verifier{
		issuer:     cfg.Issuer,
		parseAlgs:  parseAlgs,
		requireTyp: cfg.RequireTyp,
		allowTyp:   cfg.AllowTyp,
		skew:       cfg.ClockSkew,

		rolesAsScopes: cfg.RolesAsScopes,
		claims:        claims,
		now:           now,
		keys:          ks,
	}
	v.oidcConfig = oidc.Config{
		// go-oidc verifies ID tokens; for access tokens the audience is the resource, which
		// the caller checks per request, and times are checked below with our own leeway
		// (go-oidc has none for exp and five minutes for nbf).
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: algs,
		Now:                  now,
	}
	return v, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

func (v *Verifier) typAllowed(typ string) bool {
	for _, a := range v.allowTyp {
		if strings.EqualFold(typ, a) {
			return true
		}
	}
	return false
}

// Issuer returns the issuer identifier this Verifier accepts.
func (v *Verifier) Issuer() string { return v.issuer }

// Ready returns nil once keys have been loaded at least once, else why not. Later refresh
// failures do not make it fail: the last good keys keep verifying.
func (v *Verifier) Ready() error { return v.keys.ready() }

// Warm loads discovery and keys now rather than on the first token, within the same backoff
// as Verify. Calling it is optional; a caller may run it in the background at startup.
func (v *Verifier) Warm(ctx context.Context) error {
	if v.keys.loaded() {
		return nil
	}
	if err := v.keys.fetch(ctx, true); err != nil {
		return unavailable("jwt: keys unavailable", err)
	}
	return nil
}

// Verify checks token and returns the identity it carries. Errors wrap identity.ErrInvalid
// (the token is bad) or identity.ErrUnavailable (the issuer's keys could not be had), with a
// short reason and never the token or its claims.
func (v *Verifier) Verify(ctx context.Context, token string) (identity.Identity, error) {
	// Everything up to the signature check is cheap and refuses what needs no keys, so that
	// junk and downgrade attempts cost neither crypto nor a JWKS fetch.
	if len(token) > maxTokenLen {
		return identity.Identity{}, errTooLong
	}
	if err := compactShape(token); err != nil {
		return identity.Identity{}, err
	}
	// go-jose reads the header case-sensitively and refuses exact duplicates, but takes
	// invalid UTF-8 and names that differ only in case ("alg" and "ALG") as they come.
	if err := strictHeader(token); err != nil {
		return identity.Identity{}, err
	}
	// The shape check above leaves nothing for ParseSigned's whitespace stripping to do, which
	// costs more than the parse itself.
	jws, err := jose.ParseSignedCompact(token, v.parseAlgs)
	if err != nil {
		return identity.Identity{}, diagnose(token, v.parseAlgs)
	}
	h := jws.Signatures[0].Header
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return identity.Identity{}, errCrit
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if k := identity.KindOf(typ); k != identity.KindUnknown && k != identity.KindAccess {
		// Whatever require_typ says: a token typed as another kind says what it is.
		return identity.Identity{}, errNotAccess
	}
	if v.requireTyp {
		if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") && !v.typAllowed(typ) {
			if strings.EqualFold(typ, "JWT") { // what most products send: worth its own log line
				return identity.Identity{}, errTypJWT
			}
			return identity.Identity{}, errTyp
		}
	}
	keys, err := v.keys.resolve(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		return identity.Identity{}, err
	}

	// go-oidc checks the signature with exactly the keys resolved above (a verifier costs one
	// small allocation), then the issuer; the claims are read again strictly below.
	c := &tokenKeys{token: token, jws: jws, keys: keys}
	if _, err := oidc.NewVerifier(v.issuer, c, &v.oidcConfig).Verify(ctx, token); err != nil {
		if c.payload == nil {
			return identity.Identity{}, errSignature
		}
		// The signature was good: go-oidc refused the issuer or could not read the claims.
		var cl claims
		if strictjson.Unmarshal(c.payload, &cl) == nil && cl.Iss != v.issuer {
			return identity.Identity{}, errIssuer
		}
		return identity.Identity{}, errClaims
	}
	return v.identity(c.payload)
}

// identity checks the verified payload's times and issuer and builds the Identity.
func (v *Verifier) identity(payload []byte) (identity.Identity, error) {
	// go-oidc has read the payload already, with encoding/json, which folds case and lets
	// the last duplicate win; what decides is this strict reading, and it refuses what
	// the two could read differently.
	if strictjson.Check(payload) != nil {
		return identity.Identity{}, errAmbiguous
	}
	var cl claims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return identity.Identity{}, errClaims
	}
	if cl.Iss != v.issuer { // go-oidc checked too; this keeps the rule visible where it matters
		return identity.Identity{}, errIssuer
	}
	if err := cl.notAccess(); err != nil {
		return identity.Identity{}, err
	}
	now := v.now()
	if cl.Exp == nil {
		return identity.Identity{}, errNoExp
	}
	exp, nbf, err := tokencheck.Times{Exp: cl.Exp, Nbf: cl.Nbf, Iat: cl.Iat}.Check(now, v.skew,
		tokencheck.TimeErrors{Malformed: errClaims, Expired: errExpired, NotYet: errNotYet, IssuedFuture: errIssuedFuture})
	if err != nil {
		return identity.Identity{}, err
	}
	id := identity.Identity{
		Issuer:    cl.Iss,
		Subject:   cl.Sub,
		ClientID:  cl.ClientID,
		Audience:  []string(cl.Aud),
		Scopes:    tokencheck.Merge(cl.Scope, cl.Scp),
		Expiry:    exp,
		NotBefore: nbf,
		Source:    identity.SourceJWT,
	}
	if id.ClientID == "" {
		id.ClientID = cl.Azp
	}
	if id.Confirmation, err = identity.ParseConfirmation(cl.Cnf); err != nil {
		return identity.Identity{}, errCnf
	}
	if v.rolesAsScopes && cl.Roles != nil {
		var roles tokencheck.Scope
		if json.Unmarshal(cl.Roles, &roles) != nil {
			return identity.Identity{}, errClaims
		}
		id.Scopes = tokencheck.Merge(id.Scopes, roles)
	}
	if len(v.claims) > 0 {
		var ok bool
		if id.Claims, ok = extraClaims(payload, v.claims); !ok {
			return identity.Identity{}, errClaims
		}
	}
	return id, nil
}

// claims is what Verify reads from a verified payload. Wrong JSON types make the token
// invalid rather than silently empty. Names match exactly (JSON v2).
type claims struct {
	Iss      string              `json:"iss"`
	Sub      string              `json:"sub"`
	ClientID string              `json:"client_id"`
	Azp      string              `json:"azp"`
	Aud      tokencheck.Audience `json:"aud"`
	Scope    tokencheck.Scope    `json:"scope"` // RFC 9068 §2.2.3 / RFC 8693 §4.2: space-separated string
	Scp      tokencheck.Scope    `json:"scp"`   // Entra ID, Okta: an array (or a string)
	// Roles is read as scopes only with Config.RolesAsScopes; until then any JSON type is
	// let through, as other issuers use the name for other things.
	Roles jsontext.Value `json:"roles"`
	Exp   *float64       `json:"exp"`
	Nbf   *float64       `json:"nbf"`
	Iat   *float64       `json:"iat"`
	// Cnf: RFC 7800; jkt (RFC 9449 §6.1) and x5t#S256 (RFC 8705 §3.1) are enforced by the
	// decision core, any other confirmation method makes the token invalid.
	Cnf jsontext.Value `json:"cnf"`

	// Read only to tell ID tokens and other JWTs from access tokens (notAccess); their
	// presence counts, whatever their JSON type.
	Nonce    jsontext.Value `json:"nonce"`
	AtHash   jsontext.Value `json:"at_hash"`
	CHash    jsontext.Value `json:"c_hash"`
	SHash    jsontext.Value `json:"s_hash"`
	Typ      jsontext.Value `json:"typ"`       // Keycloak: "Bearer", "ID", "Refresh", "Logout" …
	TokenUse jsontext.Value `json:"token_use"` // Amazon Cognito: "access" or "id"
}

// notAccess refuses a verified token that is an OpenID Connect ID token or another kind of
// JWT than an access token, whatever its header typ. The rule, and why each part holds:
//
//   - nonce, at_hash, c_hash, s_hash: OIDC Core §2, §3.1.3.6 and §3.3.2.11 (and FAPI 1.0
//     Advanced §5.1 for s_hash) define them for ID tokens, to bind the ID token to the
//     authentication request, the access token, the code and the state; RFC 9068 §2.2 lists
//     none of them for access tokens, and no access token needs them. One exception: Keycloak
//     before 24 copied nonce into its access tokens (keycloak/keycloak#26893); those say
//     typ "Bearer" in their payload, which Keycloak's ID tokens never do ("ID").
//   - a typ claim (Keycloak) or token_use claim (Amazon Cognito) naming another kind: those
//     issuers' own statement of what the token is. token_use must name an access token.
//   - an audience that is only the token's own client (every aud equal to azp or client_id):
//     OIDC Core §2 makes an ID token's aud the relying party's client id, and azp that same
//     party; an access token's aud names the resource servers it is for (RFC 9068 §2.2,
//     RFC 8707 §2), which are not the client. This also refuses an access token a client
//     requested for itself as its own API; an MCP server is not its own client.
func (cl *claims) notAccess() error {
	if cl.AtHash != nil || cl.CHash != nil || cl.SHash != nil {
		return errIDToken
	}
	typ, _ := strictjson.String(cl.Typ)
	if cl.Nonce != nil && identity.KindOf(typ) != identity.KindAccess {
		return errIDToken
	}
	if k := identity.KindOf(typ); k != identity.KindUnknown && k != identity.KindAccess {
		return errNotAccess
	}
	if cl.TokenUse != nil {
		if use, _ := strictjson.String(cl.TokenUse); identity.KindOf(use) != identity.KindAccess {
			return errNotAccess
		}
	}
	if len(cl.Aud) > 0 && (cl.Azp != "" || cl.ClientID != "") {
		self := true
		for _, a := range cl.Aud {
			if a != cl.Azp && a != cl.ClientID {
				self = false
				break
			}
		}
		if self {
			return errIDToken
		}
	}
	return nil
}

// strictHeader refuses a JOSE header that is not one unambiguous JSON object.
func strictHeader(token string) error {
	seg, _, _ := strings.Cut(token, ".")
	var buf [512]byte
	var b []byte
	if n := base64.RawURLEncoding.DecodedLen(len(seg)); n <= len(buf) {
		b = buf[:n]
	} else {
		b = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(b, []byte(seg))
	if err != nil {
		return errMalformed
	}
	if strictjson.Check(b[:n]) != nil {
		if !jsontext.Value(b[:n]).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
			return errMalformed // not JSON at all
		}
		return errAmbiguous
	}
	return nil
}

// extraClaims keeps the configured claims as their JSON text (identity.Identity.Claims), each
// at most identity.MaxClaimLen bytes. payload has passed strictjson.Check already: valid JSON
// without duplicate names.
func extraClaims(payload []byte, names []string) (map[string]string, bool) {
	var out map[string]string
	ok := members(payload, func(name, raw []byte) {
		n, want := wanted(name, names)
		if !want || len(raw) > identity.MaxClaimLen {
			return
		}
		if out == nil {
			out = make(map[string]string, len(names))
		}
		out[n] = string(raw)
	})
	return out, ok
}

// wanted reports whether the member name (raw, still JSON-escaped) is one of names.
func wanted(name []byte, names []string) (string, bool) {
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, name...), '"'), &s) != nil {
			return "", false
		}
		name = []byte(s)
	}
	for _, n := range names {
		if string(name) == n {
			return n, true
		}
	}
	return "", false
}

// members calls fn with the name and raw value of each top-level member of the JSON object
// in b, in order. It exists because decoding a whole payload into map[string]json.RawMessage
// to pick out a few claims costs more than the rest of claim handling together. b must be
// valid JSON; members only tracks strings and nesting, and reports false if b is not an
// object after all.
func members(b []byte, fn func(name, raw []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		if b[i] != '"' {
			return false
		}
		end := stringEnd(b, i)
		if end < 0 {
			return false
		}
		name := b[i+1 : end]
		i = skipSpace(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend <= i {
			return false
		}
		fn(name, b[i:vend])
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the string that starts at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// valueEnd returns the index just past the value that starts at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		if e := stringEnd(b, i); e >= 0 {
			return e + 1
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
					return -1
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

// compactShape accepts only the JWS compact serialization: three base64url segments, the
// last possibly empty (alg none, refused later with a clearer reason). This keeps the JSON
// serialization, JWE (five segments) and whitespace tricks away from the parsers.
func compactShape(token string) error {
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return errMalformed
		}
	}
	switch {
	case dots == 4:
		return errJWE
	case dots != 2:
		return errMalformed
	}
	header, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	if header == "" || payload == "" {
		return errMalformed
	}
	return nil
}

// diagnose says why go-jose refused to parse a token, for logs; it runs only on that
// failure path, so the valid path decodes the header once.
func diagnose(token string, allowed []jose.SignatureAlgorithm) error {
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errMalformed
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if strictjson.Unmarshal(b, &h) != nil {
		return errMalformed
	}
	for _, a := range allowed {
		if string(a) == h.Alg {
			return errMalformed
		}
	}
	return errAlg
}

// Verification errors are tokencheck.Error, shared with the introspection verifier.
func invalid(reason string) *tokencheck.Error { return tokencheck.Invalid("", reason) }

func unavailable(reason string, cause error) *tokencheck.Error {
	return tokencheck.Unavailable(reason, cause)
}

func classed(cls identity.Class, err *tokencheck.Error) error { return err.WithClass(cls) }

// Fixed reasons allocate once; the deny path is as hot as the allow path under attack.
var (
	errTooLong      = classed(identity.ClassMalformed, invalid("jwt: token too long"))
	errMalformed    = classed(identity.ClassMalformed, invalid("jwt: malformed"))
	errJWE          = classed(identity.ClassMalformed, invalid("jwt: encrypted tokens (JWE) not supported"))
	errAlg          = classed(identity.ClassSignature, invalid("jwt: alg not allowed"))
	errCrit         = classed(identity.ClassMalformed, invalid("jwt: crit header not supported"))
	errTyp          = classed(identity.ClassTyp, invalid("jwt: typ is not at+jwt"))
	errTypJWT       = classed(identity.ClassTyp, invalid("jwt: typ is JWT, not at+jwt"))
	errIssuer       = classed(identity.ClassIssuer, invalid("jwt: wrong issuer"))
	errClaims       = classed(identity.ClassMalformed, invalid("jwt: malformed claims"))
	errCnf          = classed(identity.ClassBinding, invalid("jwt: cnf is malformed or binds the token to a method not checked here"))
	errAmbiguous    = classed(identity.ClassMalformed, invalid("jwt: ambiguous JSON (a duplicate or case-variant name, or not UTF-8)"))
	errIDToken      = classed(identity.ClassNotAccess, invalid("jwt: an ID token, not an access token"))
	errNotAccess    = classed(identity.ClassNotAccess, invalid("jwt: not an access token"))
	errKidNotYet    = &tokencheck.Error{Reason: "jwt: unknown kid (or no key for alg) since the last fetch; keys are refetched once the refresh interval allows", Kind: identity.ErrKeyNotYetKnown, Class: identity.ClassKeyNotYetSeen}
	errNoExp        = classed(identity.ClassMalformed, invalid("jwt: exp missing"))
	errExpired      = classed(identity.ClassExpired, invalid("jwt: expired"))
	errNotYet       = classed(identity.ClassNotYetValid, invalid("jwt: not yet valid (nbf)"))
	errIssuedFuture = classed(identity.ClassNotYetValid, invalid("jwt: issued in the future (iat)"))
	errUnknownKid   = classed(identity.ClassSignature, invalid("jwt: unknown kid"))
	errNoKey        = classed(identity.ClassSignature, invalid("jwt: no key for alg"))
	errKeyAlg       = classed(identity.ClassSignature, invalid("jwt: alg does not match key"))
	errSignature    = classed(identity.ClassSignature, invalid("jwt: bad signature"))
)
