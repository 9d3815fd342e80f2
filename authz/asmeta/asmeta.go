// Package asmeta finds an authorization server's metadata from its issuer identifier, so a
// resource server can learn where its keys (jwks_uri) and introspection endpoint live.
//
// It implements the client side of:
//   - RFC 8414 §3 and §3.1: the metadata document at the path-inserted well-known URI
//     https://host/.well-known/oauth-authorization-server{issuer path};
//   - OpenID Connect Discovery 1.0 §4: {issuer}/.well-known/openid-configuration, tried second
//     because many authorization servers publish only that one;
//   - RFC 8414 §3.3 (and OIDC Discovery §4.3): the document's issuer must be identical to the
//     issuer it was fetched for, or it must not be used.
//
// The document is read strictly (package strictjson): a duplicate member, names that differ
// only in case, or invalid UTF-8 make it unusable, so that no member (jwks_uri above all)
// can be read one way here and another way elsewhere. A redirect from https to anything
// else is not followed: the document says where keys come from, and must not come in clear.
//
// Every failure wraps identity.ErrUnavailable: whether the document is missing, unreachable or
// wrong, a verifier that depends on it cannot verify anything.
package asmeta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
)

// Metadata is the part of an authorization server's metadata a resource server uses.
type Metadata struct {
	Issuer                string
	JWKSURI               string
	IntrospectionEndpoint string
	TokenEndpoint         string
}

// maxBody caps a metadata document. Real ones are a few KiB; the cap keeps a broken or hostile
// server from making us buffer without bound.
const maxBody = 1 << 20

// defaultTimeout applies only when the caller passes no client, so that a nil client can
// never hang forever on a server that accepts and never answers.
const defaultTimeout = 10 * time.Second

// Discover fetches the authorization server metadata for issuer: first the RFC 8414
// path-inserted URL, then OIDC discovery. The document's "issuer" must equal issuer exactly.
// A nil client means a client with a 10 s timeout; ctx bounds the whole discovery.
func Discover(ctx context.Context, client *http.Client, issuer string) (Metadata, error) {
	urls, err := wellKnownURLs(issuer)
	if err != nil {
		return Metadata{}, fmt.Errorf("asmeta: issuer %q: %v: %w", issuer, err, identity.ErrUnavailable)
	}
	client = NoDowngrade(client)
	var best *fetchError
	var notFound []string
	for _, u := range urls {
		md, ferr := fetch(ctx, client, u, issuer)
		if ferr == nil {
			return md, nil
		}
		if ferr.rank == rankNotFound {
			notFound = append(notFound, ferr.msg)
		}
		if best == nil || ferr.rank > best.rank {
			best = ferr
		}
		if ctx.Err() != nil {
			break // the caller gave up; a second URL would fail the same way
		}
	}
	if best.rank == rankNotFound {
		return Metadata{}, fmt.Errorf("asmeta: no metadata published (%s): %w", strings.Join(notFound, "; "), identity.ErrUnavailable)
	}
	return Metadata{}, fmt.Errorf("asmeta: %w: %w", best, identity.ErrUnavailable)
}

// NoDowngrade returns a copy of client (nil: one with a 10 s timeout) that refuses to follow
// a redirect from https to another scheme. Whatever comes from an https URL (metadata, keys)
// is trusted because it came over TLS; a redirect to http would hand it to anyone on the path.
// The client's own redirect policy, if any, still applies to the redirects it lets through.
func NoDowngrade(client *http.Client) *http.Client {
	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Timeout = defaultTimeout
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// wellKnownURLs builds the two discovery URLs for issuer, RFC 8414 first.
func wellKnownURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("scheme must be https (or http for local testing)")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// RFC 8414 §2: an issuer identifier has no query or fragment.
		return nil, errors.New("must be scheme://host[/path] without userinfo, query or fragment")
	}
	// RFC 8414 §3.1: a terminating "/" is removed before the path is appended.
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}

// fetchError ranks failures so that, when both URLs fail, the operator sees the most telling
// one: a document that exists but is wrong says more than a 404.
type fetchError struct {
	rank int
	msg  string
}

const (
	rankNotFound    = iota + 1 // 404/410: this form is simply not published
	rankUnreachable            // network, timeout, other statuses
	rankBadDocument            // a document was served but cannot be used
)

func (e *fetchError) Error() string { return e.msg }

func fetch(ctx context.Context, client *http.Client, u, issuer string) (Metadata, *fetchError) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Metadata{}, &fetchError{rankUnreachable, fmt.Sprintf("GET %s: bad request", u)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// The URL error repeats u and adds the cause (refused, timeout); it holds no secret.
		return Metadata{}, &fetchError{rankUnreachable, fmt.Sprintf("GET %s: %v", u, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return Metadata{}, &fetchError{rankNotFound, fmt.Sprintf("GET %s: status %d", u, resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return Metadata{}, &fetchError{rankUnreachable, fmt.Sprintf("GET %s: status %d", u, resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Metadata{}, &fetchError{rankUnreachable, fmt.Sprintf("GET %s: reading body: %v", u, err)}
	}
	if len(body) > maxBody {
		return Metadata{}, &fetchError{rankBadDocument, fmt.Sprintf("GET %s: document larger than %d bytes", u, maxBody)}
	}
	var doc struct {
		Issuer                string `json:"issuer"`
		JWKSURI               string `json:"jwks_uri"`
		IntrospectionEndpoint string `json:"introspection_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	// The content type is not checked (servers mislabel JSON often enough), but the body must
	// be one JSON object: "null" or an array would otherwise decode as an empty document.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Metadata{}, &fetchError{rankBadDocument, fmt.Sprintf("GET %s: not a JSON metadata object", u)}
	}
	if err := strictjson.Unmarshal(body, &doc); err != nil {
		return Metadata{}, &fetchError{rankBadDocument, fmt.Sprintf("GET %s: not a JSON metadata object (%v)", u, clipErr(err))}
	}
	if doc.Issuer != issuer {
		return Metadata{}, &fetchError{rankBadDocument,
			fmt.Sprintf("issuer mismatch: metadata says %q, configured %q (at %s)", clip(doc.Issuer), issuer, u)}
	}
	return Metadata{
		Issuer:                doc.Issuer,
		JWKSURI:               doc.JWKSURI,
		IntrospectionEndpoint: doc.IntrospectionEndpoint,
		TokenEndpoint:         doc.TokenEndpoint,
	}, nil
}

// clip bounds a served string before it goes into an error message and from there into logs.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// clipErr bounds a decoding error, which may quote the document, before it reaches the logs.
func clipErr(err error) string { return clip(err.Error()) }

// unwrapURLError drops the *url.Error wrapper, whose text repeats method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
