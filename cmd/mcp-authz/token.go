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
	if err := fs.Parse(args); err != nil {
		return err
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
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, *tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("token: -token-url: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(*client), url.QueryEscape(*secret)) // RFC 6749 §2.3.1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The transport error names the URL and the cause ("connection refused"), never
		// the credentials, which travel in a header.
		return fmt.Errorf("token: %v (is the authorization server, e.g. `mcp-authz demo`, running?)", err)
	}
	defer resp.Body.Close()
	var answer struct {
		AccessToken      string `json:"access_token"`
		TokenType        string `json:"token_type"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("token: reading the answer from %s: %v", *tokenURL, err)
	}
	jsonErr := json.Unmarshal(body, &answer)
	switch {
	case resp.StatusCode != http.StatusOK && answer.Error != "":
		return fmt.Errorf("token: %s answered %d %s: %s", *tokenURL, resp.StatusCode, answer.Error, answer.ErrorDescription)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("token: %s answered %d without an OAuth error", *tokenURL, resp.StatusCode)
	case jsonErr != nil:
		return fmt.Errorf("token: %s answered 200 with a body that is not JSON: %v", *tokenURL, jsonErr)
	case answer.AccessToken == "":
		return errors.New("token: the answer has no access_token")
	case !strings.EqualFold(answer.TokenType, "bearer"):
		return fmt.Errorf("token: token_type is %q, not Bearer", answer.TokenType)
	}
	fmt.Fprintln(stdout, answer.AccessToken)
	return nil
}
