package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/service"
)

// Doctor exit codes, so a deployment pipeline can tell "fix the config" from "the AS is down".
const (
	exitDoctorMismatch    = 2 // a configuration does not fit its authorization server, or the token would be refused
	exitDoctorUnreachable = 3 // an authorization server could not be asked; nothing wrong was found otherwise
)

// exitError carries a process exit code other than 1 through run.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is what main exits with.
func (e *exitError) ExitCode() int { return e.code }

// findings collects the doctor's report lines: every problem with the key at fault and its fix.
type findings struct {
	out                 io.Writer
	mismatch, unreached int
}

func (f *findings) ok(key, format string, a ...any) {
	fmt.Fprintf(f.out, "ok    %s: %s\n", key, fmt.Sprintf(format, a...))
}

func (f *findings) fail(key, format string, a ...any) {
	f.mismatch++
	fmt.Fprintf(f.out, "FAIL  %s: %s\n", key, fmt.Sprintf(format, a...))
}

func (f *findings) down(key, format string, a ...any) {
	f.unreached++
	fmt.Fprintf(f.out, "DOWN  %s: %s\n", key, fmt.Sprintf(format, a...))
}

func (f *findings) note(key, format string, a ...any) {
	fmt.Fprintf(f.out, "note  %s: %s\n", key, fmt.Sprintf(format, a...))
}

// doctor is `mcp-authz doctor` (also `check-config --online`): it validates the file as
// check-config does, then asks every issuer for its metadata, keys and introspection endpoint,
// and with -token tries a sample token as serve would, reporting each mismatch with its fix.
// The token is never printed; only its header typ and its iss and aud claims are.
func doctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	token := fs.String("token", "", "a sample access token to try (prefer -token-file: a command line is visible to other users)")
	tokenFile := fs.String("token-file", "", "read the sample access token from this file")
	timeout := fs.Duration("timeout", 10*time.Second, "for each call to an authorization server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("doctor: give exactly one configuration file")
	}
	tok := *token
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("-token-file: %v", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	f := &findings{out: stdout}
	client := &http.Client{Timeout: *timeout}
	for i := range cfg.Issuers {
		is := &cfg.Issuers[i]
		key := fmt.Sprintf("issuers[%d]", i)
		fmt.Fprint(stdout, is.ProfileReport(key))
		checkIssuer(ctx, f, client, cfg, key, is, getenv)
	}
	if tok != "" {
		checkToken(ctx, f, client, cfg, tok, getenv)
	}
	switch {
	case f.mismatch > 0:
		return &exitError{exitDoctorMismatch, fmt.Sprintf("doctor: %d problem(s) to fix", f.mismatch)}
	case f.unreached > 0:
		return &exitError{exitDoctorUnreachable, fmt.Sprintf("doctor: %d authorization server call(s) failed", f.unreached)}
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}

// metadata is the part of an RFC 8414 / OIDC discovery document the doctor reads.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	// Sender-constrained tokens: RFC 9449 §5.1 and RFC 8705 §3.3.
	DPoPAlgs  []string `json:"dpop_signing_alg_values_supported"`
	MTLSBound bool     `json:"tls_client_certificate_bound_access_tokens"`
}

// discovery URLs, RFC 8414 §3.1 first, then OIDC Discovery §4.
func wellKnown(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	return []string{origin + "/.well-known/oauth-authorization-server" + path, origin + path + "/.well-known/openid-configuration"}
}

func getJSON(ctx context.Context, client *http.Client, u string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("status %d", resp.StatusCode)
	}
	return 200, json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

// fetchMetadata returns the first metadata document published for issuer.
func fetchMetadata(ctx context.Context, client *http.Client, issuer string) (metadata, string, error) {
	var last error = errors.New("not a URL")
	for _, u := range wellKnown(issuer) {
		var md metadata
		if _, err := getJSON(ctx, client, u, &md); err != nil {
			last = fmt.Errorf("%s: %v", u, err)
			continue
		}
		return md, u, nil
	}
	return metadata{}, "", last
}

// variants are the spellings of an issuer that operators confuse it with.
func variants(issuer string) []string {
	var out []string
	if s, ok := strings.CutSuffix(issuer, "/"); ok {
		out = append(out, s)
	} else {
		out = append(out, issuer+"/")
	}
	for _, v := range append([]string{issuer}, out...) {
		switch {
		case strings.HasPrefix(v, "https://"):
			out = append(out, "http://"+strings.TrimPrefix(v, "https://"))
		case strings.HasPrefix(v, "http://"):
			out = append(out, "https://"+strings.TrimPrefix(v, "http://"))
		}
	}
	return out
}

// howDiffers names the difference between a configured issuer and the AS's own.
func howDiffers(conf, actual string) string {
	rest := func(s string) string {
		_, r, _ := strings.Cut(s, "://")
		return r
	}
	switch {
	case strings.TrimSuffix(conf, "/") == strings.TrimSuffix(actual, "/"):
		return "they differ by a trailing slash"
	case rest(conf) == rest(actual) || strings.TrimSuffix(rest(conf), "/") == strings.TrimSuffix(rest(actual), "/"):
		return "they differ by scheme"
	}
	return "they differ"
}

func checkIssuer(ctx context.Context, f *findings, client *http.Client, cfg *config.Config, key string, is *config.Issuer, getenv func(string) string) {
	md, where, err := fetchMetadata(ctx, client, is.Issuer)
	if err != nil {
		// Is it there under a spelling the operator confused it with?
		for _, v := range variants(is.Issuer) {
			if vmd, vwhere, verr := fetchMetadata(ctx, client, v); verr == nil {
				f.fail(key+".issuer", "no metadata for %q, but %s says issuer %q (%s): set issuer: %s", is.Issuer, vwhere, vmd.Issuer, howDiffers(is.Issuer, vmd.Issuer), vmd.Issuer)
				return
			}
		}
		if is.JWKSURI == "" || (is.Introspection != nil && is.Introspection.Endpoint == "") {
			f.down(key, "no metadata (%v): needed for the keys or the introspection endpoint; check the issuer URL and that this host can reach it", err)
			return
		}
		f.note(key, "no metadata published (%v); jwks_uri and the endpoint are configured, so none is needed", err)
	} else if md.Issuer != is.Issuer {
		// go-oidc and RFC 8414 §3.3 compare the issuer exactly: every token would be refused.
		f.fail(key+".issuer", "%q, but %s says issuer %q (%s); tokens carry the AS's: set issuer: %s", is.Issuer, where, md.Issuer, howDiffers(is.Issuer, md.Issuer), md.Issuer)
		return
	} else {
		f.ok(key+".issuer", "matches the metadata at %s", where)
		checkBindingSupport(f, cfg, key, is.Issuer, md)
	}

	if is.VerifyJWT == nil || *is.VerifyJWT {
		jwks := cmpOr(is.JWKSURI, md.JWKSURI)
		if jwks == "" {
			f.fail(key+".jwks_uri", "the metadata names no jwks_uri, so JWTs cannot be verified: set jwks_uri, or verify_jwt: false if the AS issues only opaque tokens")
		} else {
			var set struct {
				Keys []struct {
					Kid, Kty, Use, Alg string
				} `json:"keys"`
			}
			if _, err := getJSON(ctx, client, jwks, &set); err != nil {
				f.down(key+".jwks_uri", "%s: %v", jwks, err)
			} else {
				n := 0
				for _, k := range set.Keys {
					if (k.Use == "" || k.Use == "sig") && (k.Alg == "" || slices.Contains(is.Algorithms, k.Alg)) {
						n++
					}
				}
				if n == 0 {
					f.fail(key+".algorithms", "%s has %d keys and none signs with an allowed algorithm %v: add the AS's alg to algorithms", jwks, len(set.Keys), is.Algorithms)
				} else {
					f.ok(key+".jwks_uri", "%s: %d signing keys", jwks, n)
				}
			}
		}
	}

	if in := is.Introspection; in != nil {
		ep := cmpOr(in.Endpoint, md.IntrospectionEndpoint)
		if ep == "" {
			f.fail(key+".introspection.endpoint", "the metadata advertises no introspection_endpoint: set endpoint (Ory Hydra: its admin URL + /admin/oauth2/introspect, e.g. http://hydra-admin:4445/admin/oauth2/introspect; or profile: hydra)")
			return
		}
		probeIntrospection(ctx, f, client, key, in, ep, getenv)
	} else if md.IntrospectionEndpoint != "" && is.VerifyJWT != nil && !*is.VerifyJWT {
		f.note(key, "introspection_endpoint is %s", md.IntrospectionEndpoint)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// probeIntrospection asks about a made-up token with the configured credentials: an
// endpoint that accepts them answers active: false (RFC 7662 §2.2).
func probeIntrospection(ctx context.Context, f *findings, client *http.Client, key string, in *config.Introspection, ep string, getenv func(string) string) {
	secret, err := in.ClientSecret.Read(key+".introspection.client_secret", getenv)
	if err != nil {
		f.fail(key+".introspection.client_secret", "%v", err)
		return
	}
	form := url.Values{"token": {"mcp-authz-doctor-probe-not-a-token"}}
	if in.AuthMethod == "client_secret_post" {
		form.Set("client_id", in.ClientID)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep, strings.NewReader(form.Encode()))
	if err != nil {
		f.fail(key+".introspection.endpoint", "%v", err)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.AuthMethod == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(secret))
	}
	resp, err := client.Do(req)
	if err != nil {
		f.down(key+".introspection.endpoint", "%s: %v", ep, err)
		return
	}
	defer resp.Body.Close()
	var ans struct {
		Active *bool `json:"active"`
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		f.fail(key+".introspection", "%s refused our credentials (status %d): check client_id, client_secret and auth_method (%s) against the client registered at the AS", ep, resp.StatusCode, in.AuthMethod)
	case resp.StatusCode != http.StatusOK:
		f.fail(key+".introspection.endpoint", "%s answered status %d to an introspection request: is it the introspection endpoint?", ep, resp.StatusCode)
	case json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans) != nil || ans.Active == nil:
		f.fail(key+".introspection.endpoint", "%s answered without a boolean active (RFC 7662 §2.2): is it the introspection endpoint?", ep)
	default:
		f.ok(key+".introspection", "%s accepts our credentials (%s)", ep, in.AuthMethod)
	}
}

// checkToken tries the sample token with the verifiers serve would build, then against each
// resource that trusts its issuer.
func checkToken(ctx context.Context, f *findings, client *http.Client, cfg *config.Config, tok string, getenv func(string) string) {
	jwts, intros, err := service.Verifiers(cfg, getenv, client)
	if err != nil {
		f.fail("-token", "cannot build the verifiers: %v", err)
		return
	}
	var id identity.Identity
	if hdr, cl, ok := peekJWT(tok); ok {
		f.note("-token", "a JWT: typ %q, iss %q, aud %q", hdr.Typ, cl.Iss, fmt.Sprint(cl.Aud))
		v, known := jwts[cl.Iss]
		if !known {
			for conf := range jwts {
				if howDiffers(conf, cl.Iss) != "they differ" {
					f.fail("-token", "iss %q is not the configured issuer %q (%s): set issuer to the AS's exact issuer", cl.Iss, conf, howDiffers(conf, cl.Iss))
					return
				}
			}
			if len(intros) == 0 {
				f.fail("-token", "iss %q is no configured issuer: add it under issuers", cl.Iss)
				return
			}
		} else {
			if id, err = v.Verify(ctx, tok); err != nil {
				explainFail(f, err)
				return
			}
		}
	}
	if id.Issuer == "" { // opaque, or a JWT left to introspection
		var last error = errors.New("no issuer has introspection configured")
		for iss, v := range intros {
			if id, err = v.Verify(ctx, tok); err == nil {
				break
			}
			last = fmt.Errorf("%s: %w", iss, err)
		}
		if id.Issuer == "" {
			explainFail(f, last)
			return
		}
		f.note("-token", "introspected: iss %q, aud %v", id.Issuer, id.Audience)
	}
	f.ok("-token", "verified (%s): issuer %s, scopes %v", id.Source, id.Issuer, id.Scopes)
	for i, r := range cfg.Resources {
		key := fmt.Sprintf("resources[%d]", i)
		if !slices.Contains(r.Issuers, id.Issuer) {
			continue
		}
		if !slices.ContainsFunc(id.Audience, func(a string) bool { return slices.Contains(r.Audiences, a) }) {
			got := "no aud"
			if len(id.Audience) > 0 {
				got = fmt.Sprintf("aud %q", id.Audience)
			}
			f.fail(key+".audiences", "the token has %s, not %v: the client must request the resource (resource=; audience= for Hydra and Auth0, which ignore resource=) and the AS must be allowed to grant it, or list the AS's audience here", got, r.Audiences)
			continue
		}
		var missing []string
		for _, s := range r.Scopes.Required {
			if !id.HasScope(s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			f.note(key, "the token lacks scopes %v: it would get 403 insufficient_scope (step-up)", missing)
			continue
		}
		f.ok(key, "%s would accept it", r.Resource)
	}
}

func explainFail(f *findings, err error) {
	if errors.Is(err, identity.ErrUnavailable) && !errors.Is(err, identity.ErrKeyNotYetKnown) {
		f.down("-token", "could not be verified now: %v", err)
		return
	}
	e := authz.Explain(err)
	msg := fmt.Sprintf("refused (%s): %v", e.Class, err)
	if e.Fix != "" {
		msg += "; fix: " + e.Fix
	}
	f.fail("-token", "%s", msg)
}

type jwtHeader struct {
	Typ string `json:"typ"`
}

type jwtClaims struct {
	Iss string `json:"iss"`
	Aud any    `json:"aud"`
}

// peekJWT reads a JWS's header and iss and aud without verifying anything, for the report.
func peekJWT(tok string) (jwtHeader, jwtClaims, bool) {
	var h jwtHeader
	var c jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return h, c, false
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &c) != nil {
		return h, c, false
	}
	return h, c, true
}

// onlineFlag takes -online / --online out of check-config's arguments.
func onlineFlag(args []string) ([]string, bool) {
	for i, a := range args {
		if a == "-online" || a == "--online" {
			return append(slices.Clone(args[:i]), args[i+1:]...), true
		}
	}
	return args, false
}

// profileComments is, for check-config, what each issuer's profile set and the token shapes
// it documents, as YAML comments so the output stays a valid configuration.
func profileComments(cfg *config.Config) string {
	var b strings.Builder
	for i := range cfg.Issuers {
		if cfg.Issuers[i].Profile == "" {
			continue
		}
		for _, l := range strings.SplitAfter(cfg.Issuers[i].ProfileReport(fmt.Sprintf("issuers[%d]", i)), "\n") {
			if l != "" {
				b.WriteString("# " + l)
			}
		}
	}
	return b.String()
}

// checkBindingSupport compares what the resources that take this issuer's tokens ask of
// sender-constrained tokens with what the authorization server's metadata says it issues.
// A missing metadata parameter proves nothing (it is optional), so it is a note; an AS that
// lists DPoP algorithms none of which mcp-authz accepts is a mismatch: a client's one key
// could not make proofs both accept.
func checkBindingSupport(f *findings, cfg *config.Config, key, issuer string, md metadata) {
	var dpopKeys, mtlsKeys []string
	for i, r := range cfg.Resources {
		if len(r.Issuers) > 0 && !slices.Contains(r.Issuers, issuer) {
			continue
		}
		if r.DPoP == config.BindingAllowed || r.DPoP == config.BindingRequired {
			dpopKeys = append(dpopKeys, fmt.Sprintf("resources[%d].dpop: %s", i, r.DPoP))
		}
		if r.MTLSBound == config.BindingRequired {
			mtlsKeys = append(mtlsKeys, fmt.Sprintf("resources[%d].mtls_bound: %s", i, r.MTLSBound))
		}
	}
	if len(dpopKeys) > 0 {
		var common []string
		for _, a := range md.DPoPAlgs {
			if slices.Contains(cfg.DPoP.Algs, a) {
				common = append(common, a)
			}
		}
		switch {
		case len(md.DPoPAlgs) == 0:
			f.note(key, "the metadata has no dpop_signing_alg_values_supported, so this authorization server may not issue DPoP-bound tokens (RFC 9449 §5.1) for %s", strings.Join(dpopKeys, ", "))
		case len(common) == 0:
			f.fail("dpop.algs", "%v, and %s takes DPoP proofs in %v only: no key could sign proofs for both; add one of %v to dpop.algs", cfg.DPoP.Algs, issuer, md.DPoPAlgs, md.DPoPAlgs)
		default:
			f.ok(key, "issues DPoP-bound tokens; proof algorithms both accept: %s", strings.Join(common, " "))
		}
	}
	if len(mtlsKeys) > 0 && !md.MTLSBound {
		f.note(key, "the metadata does not say tls_client_certificate_bound_access_tokens: true, so this authorization server may not issue certificate-bound tokens (RFC 8705 §3.3) for %s", strings.Join(mtlsKeys, ", "))
	}
}
