package authz

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Sender-constrained tokens: DPoP (RFC 9449) and certificate-bound tokens (RFC 8705).
//
// A token bound to a key or a certificate is refused wherever that binding is not checked: as
// a Bearer token (RFC 9449 §7.2: a resource server that supports DPoP "MUST reject a
// DPoP-bound access token received as a bearer token"), on a resource that does not take
// certificate-bound tokens, or without the certificate (RFC 8705 §3). A stolen bound token is
// then worth nothing here, whatever the resource's configuration.

// bindingError is a refusal for the binding, with its denial class for operators.
type bindingError struct {
	cls identity.Class
	msg string
	err error
}

func (e *bindingError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}
func (e *bindingError) Unwrap() error               { return e.err }
func (e *bindingError) DenialClass() identity.Class { return e.cls }

func bindErr(msg string) error { return &bindingError{cls: identity.ClassBinding, msg: msg} }

var (
	errDPoPOnly      = bindErr("a Bearer token on a resource that accepts only DPoP")
	errBoundAsBearer = bindErr("a DPoP-bound token (cnf.jkt) sent as a Bearer token (RFC 9449 §7.2)")
	errNotDPoPBound  = bindErr("a DPoP proof with a token that is not DPoP-bound (no cnf.jkt)")
	errWrongKey      = bindErr("the DPoP proof's key is not the one the token is bound to (cnf.jkt)")
	errCertOff       = bindErr("a certificate-bound token (cnf.x5t#S256) on a resource with mtls_bound: off")
	errNoCert        = bindErr("a certificate-bound token without a client certificate")
	errWrongCert     = bindErr("the client certificate is not the one the token is bound to (cnf.x5t#S256)")
	errNotCertBound  = bindErr("a token that is not certificate-bound on a resource with mtls_bound: required")
	errNoProof       = &bindingError{cls: identity.ClassDPoPProof, msg: "no DPoP header"}
	errProofRepeated = &bindingError{cls: identity.ClassDPoPProof, msg: "more than one DPoP header"}
)

// checkProof checks the DPoP header of a request whose token came in the DPoP scheme.
func (a *Authorizer) checkProof(ctx context.Context, rt *route, req *Request, rawPath, token string) (dpop.Proof, *Decision) {
	v, ok := req.header("dpop")
	if !ok || v == "" {
		return dpop.Proof{}, withErr(rt.dpDenials.proof, errNoProof)
	}
	// RFC 9449 §4.3 ¶2 item 1: exactly one. A proof has no comma: one is a joined repeat.
	if strings.IndexByte(v, ',') >= 0 || slices.Contains(req.Repeated, "dpop") {
		return dpop.Proof{}, withErr(rt.dpDenials.proof, errProofRepeated)
	}
	p, err := a.dpop.Check(ctx, dpop.Input{Proof: v, Method: req.Method, Origin: rt.origin, Path: rawPath, Token: token})
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, dpop.ErrUseNonce):
		return dpop.Proof{}, withErr(a.nonceDenial(rt), &bindingError{cls: identity.ClassDPoPProof, msg: "nonce", err: err})
	case errors.Is(err, dpop.ErrReplayUnavailable):
		return dpop.Proof{}, withErr(rt.dpDenials.unavailable, fmt.Errorf("%w: %w", identity.ErrUnavailable, err))
	}
	return dpop.Proof{}, withErr(rt.dpDenials.proof, &bindingError{cls: identity.ClassDPoPProof, msg: "proof", err: err})
}

// nonceDenial is the use_dpop_nonce answer with a fresh nonce (RFC 9449 §9): the challenge
// stays constant, the nonce travels in its own header.
func (a *Authorizer) nonceDenial(rt *route) *Decision {
	d := *rt.dpDenials.nonce
	d.Headers = append(append(make([]Header, 0, len(d.Headers)+1), d.Headers...),
		Header{"dpop-nonce", a.dpop.Nonces().Issue(a.now())})
	d.Shared = 0
	return &d
}

// binding checks a verified token against how it was presented.
func (a *Authorizer) binding(rt *route, req *Request, sc scheme, p *dpop.Proof, id *identity.Identity) error {
	cnf := &id.Confirmation
	if sc == schemeDPoP {
		if cnf.JKT == "" {
			return errNotDPoPBound
		}
		if cnf.JKT != p.JKT {
			return errWrongKey
		}
	} else if cnf.JKT != "" {
		return errBoundAsBearer
	}
	switch {
	case cnf.X5TS256 != "":
		if rt.MTLSBound == BindingOff {
			return errCertOff
		}
		if req.ClientCert == "" {
			return errNoCert
		}
		h, err := certThumbprint(req.ClientCert)
		if err != nil {
			return &bindingError{cls: identity.ClassBinding, msg: "unreadable client certificate", err: err}
		}
		if h != cnf.X5TS256 {
			return errWrongCert
		}
	case rt.MTLSBound == BindingRequired && id.Source != identity.SourceAPIKey:
		return errNotCertBound
	}
	return nil
}

// allowBound adds what an allowed DPoP request gets back: a new nonce once the one it used is
// past half its life (RFC 9449 §9 lets the server supply one on any response).
func (a *Authorizer) allowBound(rt *route, d *Decision, sc scheme, p *dpop.Proof, id *identity.Identity) {
	if sc != schemeDPoP || a.dpop.Nonces() == nil {
		return
	}
	now := a.now()
	if a.dpop.Nonces().Due(p.Nonce, now) {
		d.ResponseHeaders = append(d.ResponseHeaders, Header{"dpop-nonce", a.dpop.Nonces().Issue(now)})
	}
}

// TokenBinding says how an allowed token was bound: "dpop", "mtls", "dpop+mtls", "bearer";
// "" for API keys. The identity header (x-auth-token-binding) and Envoy's metadata carry it.
func TokenBinding(id *identity.Identity) string { return bindingName(id) }

func bindingName(id *identity.Identity) string {
	if id.Source == identity.SourceAPIKey {
		return ""
	}
	switch c := id.Confirmation; {
	case c.JKT != "" && c.X5TS256 != "":
		return "dpop+mtls"
	case c.JKT != "":
		return "dpop"
	case c.X5TS256 != "":
		return "mtls"
	}
	return "bearer"
}

// certThumbprint is RFC 8705 §3.1's x5t#S256 of a client certificate as a proxy forwards it:
// URL-encoded PEM (Envoy's attributes.source.certificate, the Cert= of
// x-forwarded-client-cert, nginx's $ssl_client_escaped_cert). Exactly one CERTIFICATE block:
// with two, which one is the client's would be a guess.
func certThumbprint(escaped string) (string, error) {
	s, err := url.PathUnescape(escaped)
	if err != nil {
		return "", err
	}
	// Query-style encoders write the armor's spaces as "+"; base64 has "+" of its own (which
	// such encoders write as %2B), so only the armor lines are mended.
	s = strings.NewReplacer("BEGIN+CERTIFICATE", "BEGIN CERTIFICATE", "END+CERTIFICATE", "END CERTIFICATE").Replace(s)
	// pem.Decode skips whatever precedes the armor: here nothing may.
	if !strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "-----BEGIN ") {
		return "", errors.New("text before the PEM certificate")
	}
	b, rest := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" || len(b.Headers) > 0 {
		return "", errors.New("not one PEM certificate")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "", errors.New("more than one PEM block")
	}
	sum := sha256.Sum256(b.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
