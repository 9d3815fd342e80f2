package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// token asks an authorization server for an access token with the client_credentials grant
// and prints only the token, for `TOKEN=$(mcp-authz token …)`. Its point is the failure: an
// error answer is reported with the server's error code and a non-zero exit, where
// `curl … | sed` turns it into a bogus token that surfaces later as a puzzling 401.
func token(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokenURL := fs.String("token-url", "http://127.0.0.1:9193/token", "the authorization server's token endpoint (default: the demo's)")
	client := fs.String("client", "demo", "client_id")
	secret := fs.String("secret", "demo-secret", "client secret (default: the demo's published one; prefer -secret-env for a real one)")
	secretEnv := fs.String("secret-env", "", "read the client secret from this environment variable instead of -secret")
	scope := fs.String("scope", "mcp:tools", "space-separated scopes to ask for")
	resource := fs.String("resource", "http://localhost:8080/mcp", "RFC 8707 resource the token is for (its audience)")
	keyFile := fs.String("dpop-key", "", "private key file (JWK or PEM; make one with `mcp-authz dpop-key FILE`): send a DPoP proof and get a token bound to the key (RFC 9449)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var key *dpopKey
	if *keyFile != "" {
		var err error
		if key, err = loadDPoPKey(*keyFile); err != nil {
			return fmt.Errorf("token: -dpop-key %v", err)
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected argument %q (all inputs are flags)", fs.Arg(0))
	}
	if *secretEnv != "" {
		*secret = getenv(*secretEnv)
		if *secret == "" {
			return fmt.Errorf("token: -secret-env %s: the variable is unset or empty", *secretEnv)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if *scope != "" {
		form.Set("scope", *scope)
	}
	if *resource != "" {
		form.Set("resource", *resource)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var answer struct {
		AccessToken      string `json:"access_token"`
		TokenType        string `json:"token_type"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	var (
		resp    *http.Response
		nonce   string
		jsonErr error
	)
	// At most two requests: an authorization server that wants a DPoP nonce answers the
	// first with use_dpop_nonce and the nonce to put in the second proof (RFC 9449 §8).
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, *tokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			return fmt.Errorf("token: -token-url: %v", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(url.QueryEscape(*client), url.QueryEscape(*secret)) // RFC 6749 §2.3.1
		if key != nil {
			p, err := key.proof(http.MethodPost, *tokenURL, "", nonce, time.Now())
			if err != nil {
				return fmt.Errorf("token: -token-url: %v", err)
			}
			req.Header.Set("DPoP", p)
		}
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			// The transport error names the URL and the cause ("connection refused"), never
			// the credentials, which travel in a header.
			return fmt.Errorf("token: %v (is the authorization server, e.g. `mcp-authz demo`, running?)", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("token: reading the answer from %s: %v", *tokenURL, err)
		}
		answer.Error = ""
		jsonErr = json.Unmarshal(body, &answer)
		if n := resp.Header.Get("DPoP-Nonce"); key != nil && attempt == 0 && answer.Error == "use_dpop_nonce" && n != "" {
			nonce = n
			continue
		}
		break
	}
	switch {
	case resp.StatusCode != http.StatusOK && answer.Error != "":
		return fmt.Errorf("token: %s answered %d %s: %s", *tokenURL, resp.StatusCode, answer.Error, answer.ErrorDescription)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("token: %s answered %d without an OAuth error", *tokenURL, resp.StatusCode)
	case jsonErr != nil:
		return fmt.Errorf("token: %s answered 200 with a body that is not JSON: %v", *tokenURL, jsonErr)
	case answer.AccessToken == "":
		return errors.New("token: the answer has no access_token")
	case key != nil && !strings.EqualFold(answer.TokenType, "dpop"):
		// RFC 9449 §5: a token the server did not bind would be sent as DPoP and refused.
		return fmt.Errorf("token: token_type is %q, not DPoP: %s did not bind the token to the key", answer.TokenType, *tokenURL)
	case key == nil && !strings.EqualFold(answer.TokenType, "bearer"):
		return fmt.Errorf("token: token_type is %q, not Bearer (a DPoP-bound token needs -dpop-key)", answer.TokenType)
	}
	fmt.Fprintln(stdout, answer.AccessToken)
	return nil
}
