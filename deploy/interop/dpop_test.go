package interop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
)

// dpopRun is what client-dpop.mjs reports.
type dpopRun struct {
	ASDPoPAlgs []string `json:"as_dpop_algs"`
	Token      struct {
		TokenType string `json:"token_type"`
		KeyJKT    string `json:"key_jkt"`
		Kind      string `json:"kind"`
		Aud       string `json:"aud"`
		CnfJKT    string `json:"cnf_jkt"`
	} `json:"token"`
	MCP struct {
		OK         bool     `json:"ok"`
		Error      string   `json:"error"`
		Requests   []string `json:"requests"`
		ToolResult struct {
			ClientID          string `json:"client_id"`
			AuthorizationSeen bool   `json:"authorization_seen"`
			DPoPSeen          bool   `json:"dpop_seen"`
			TokenBinding      string `json:"token_binding"`
		} `json:"tool_result"`
	} `json:"mcp"`
	AsBearer    answer `json:"as_bearer"`
	Replay      answer `json:"replay"`
	OtherURL    answer `json:"other_url"`
	OtherMethod answer `json:"other_method"`
	NoProof     answer `json:"no_proof"`
}

type answer struct {
	Status    int    `json:"status"`
	Challenge string `json:"challenge"`
	Error     string `json:"error"`
}

// grpcMaterial is what client-dpop.mjs writes for the gRPC half: its token and unsent proofs.
type grpcMaterial struct {
	Token  string   `json:"token"`
	Proofs []string `json:"proofs"`
}

// runDPoPClient runs client-dpop.mjs for a client of as.mjs and returns its report and the
// token and proofs it left for the gRPC path.
func runDPoPClient(ctx context.Context, t *testing.T, node, resource, issuer, id string) (dpopRun, grpcMaterial) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "grpc.json")
	line := runScript(ctx, t, node, "client-dpop.mjs", resource, id, id+"-secret", issuer, "mcp:tools", file)
	var r dpopRun
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("client-dpop.mjs printed %q: %v", line, err)
	}
	var m grpcMaterial
	b, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(b, &m) != nil || m.Token == "" || len(m.Proofs) != 3 {
		t.Fatalf("client-dpop.mjs left no token and proofs in %s: %v", file, err)
	}
	return r, m
}

// dpopClients are the runs of client-dpop.mjs, one per DPoP client of as.mjs: what each
// printed and what it left for the gRPC path.
type dpopClients map[string]dpopClient

type dpopClient struct {
	run dpopRun
	m   grpcMaterial
}

// The premise of the DPoP scenarios: oidc-provider binds the tokens it issues to the key
// oauth4webapi proved at its token endpoint: cnf.jkt in the JWT, token_type DPoP and cnf.jkt
// in the introspection answer for the opaque one. It returns the runs, which made the
// end-to-end requests too (testDPoPThroughMCPAuthz checks those).
func testDPoPTokens(ctx context.Context, t *testing.T, node, resource, issuer string) dpopClients {
	runs := dpopClients{}
	jwt, jm := runDPoPClient(ctx, t, node, resource, issuer, "agent-dpop")
	runs["agent-dpop"] = dpopClient{jwt, jm}
	if jwt.Token.TokenType != "dpop" || jwt.Token.Kind != "jwt" || jwt.Token.CnfJKT == "" || jwt.Token.CnfJKT != jwt.Token.KeyJKT || jwt.Token.Aud != resource {
		t.Errorf("agent-dpop's token %+v: want token_type dpop, a JWT for %s whose cnf.jkt is the client key's thumbprint", jwt.Token, resource)
	}
	if !strings.Contains(strings.Join(jwt.ASDPoPAlgs, " "), "ES256") {
		t.Errorf("oidc-provider's metadata advertises DPoP algs %v, without ES256", jwt.ASDPoPAlgs)
	}
	opaque, m := runDPoPClient(ctx, t, node, resource, issuer, "agent-dpop-opaque")
	runs["agent-dpop-opaque"] = dpopClient{opaque, m}
	if opaque.Token.TokenType != "dpop" || opaque.Token.Kind != "opaque" {
		t.Errorf("agent-dpop-opaque's token %+v: want an opaque DPoP token", opaque.Token)
	}
	var in map[string]any
	post(ctx, t, issuer+"/token/introspection", "rs", "rs-secret", url.Values{"token": {m.Token}}, &in)
	cnf, _ := in["cnf"].(map[string]any)
	if in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != opaque.Token.KeyJKT || in["aud"] != resource {
		t.Errorf("introspection of the opaque DPoP token: %v; want active, token_type DPoP, cnf.jkt %s, aud %s", in, opaque.Token.KeyJKT, resource)
	}
	// The proofs oauth4webapi made for the gRPC half are what mcp-authz will check.
	for _, p := range append(jm.Proofs, m.Proofs...) {
		h, c := jwtPart(t, p, 0), jwtPart(t, p, 1)
		jsum, osum := sha256.Sum256([]byte(jm.Token)), sha256.Sum256([]byte(m.Token))
		if ath := c["ath"]; ath != base64.RawURLEncoding.EncodeToString(jsum[:]) && ath != base64.RawURLEncoding.EncodeToString(osum[:]) {
			t.Errorf("proof ath %v is the hash of neither token", ath)
		}
		if h["typ"] != "dpop+jwt" || h["alg"] != "ES256" || c["htm"] != "POST" || c["htu"] != resource || c["jti"] == nil {
			t.Errorf("proof header %v claims %v: want typ dpop+jwt, ES256, htm POST, htu %s, ath of the token", h, c, resource)
		}
	}
	return runs
}

// testDPoPThroughMCPAuthz: the DPoP scenarios end to end, through nginx (forward-auth, which
// sees the Authorization and DPoP headers) and on the ext_authz gRPC path.
func testDPoPThroughMCPAuthz(ctx context.Context, t *testing.T, runs dpopClients, resource, grpcAddr, front string) {
	for _, id := range []string{"agent-dpop", "agent-dpop-opaque"} {
		t.Run(id, func(t *testing.T) {
			r, m := runs[id].run, runs[id].m
			if m.Token == "" {
				t.Fatal("client-dpop.mjs did not run for " + id)
			}
			t.Logf("%s: MCP requests %v; as Bearer %+v; replay %+v; other URL %+v; other method %+v; no proof %+v",
				id, r.MCP.Requests, r.AsBearer, r.Replay, r.OtherURL, r.OtherMethod, r.NoProof)
			tr := r.MCP.ToolResult
			switch {
			case !r.MCP.OK:
				t.Errorf("MCP client with DPoP proofs failed: %s", r.MCP.Error)
			case tr.ClientID != id || tr.AuthorizationSeen || tr.DPoPSeen || tr.TokenBinding != "dpop":
				t.Errorf("the MCP server saw %+v: want client_id %s, no Authorization, no DPoP header, x-auth-token-binding dpop", tr, id)
			}
			for name, c := range map[string]struct {
				got  answer
				want string
			}{
				"the token as Bearer":          {r.AsBearer, `error="invalid_token"`},
				"a replayed request":           {r.Replay, `error="invalid_dpop_proof"`},
				"a proof for another URL":      {r.OtherURL, `error="invalid_dpop_proof"`},
				"a proof for another method":   {r.OtherMethod, `error="invalid_dpop_proof"`},
				"the DPoP scheme and no proof": {r.NoProof, `error="`},
			} {
				if c.got.Status != 401 || !strings.Contains(c.got.Challenge, c.want) {
					t.Errorf("%s through nginx: %+v, want 401 with %s", name, c.got, c.want)
				}
			}

			// The gRPC path, as Envoy would ask: the same kind of request with proofs that
			// oauth4webapi made and nobody sent.
			ac := checkClient(t, grpcAddr)
			check := func(scheme, proof, path string) *authv3.CheckResponse {
				req := extauthz.NewCheckRequest("POST", front, path, map[string]string{
					"authorization": scheme + " " + m.Token, "dpop": proof, "content-type": "application/json",
				})
				resp, err := ac.Check(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			path := mustPath(t, resource)
			ok := check("DPoP", m.Proofs[0], path)
			if ok.GetOkResponse() == nil {
				t.Fatalf("gRPC Check with a fresh proof: denied %v", ok.GetDeniedResponse())
			}
			var binding string
			for _, h := range ok.GetOkResponse().GetHeaders() {
				if strings.EqualFold(h.GetHeader().GetKey(), "x-auth-token-binding") {
					binding = h.GetHeader().GetValue()
				}
			}
			removed := strings.ToLower(strings.Join(ok.GetOkResponse().GetHeadersToRemove(), " "))
			if binding != "dpop" || !strings.Contains(removed, "dpop") || !strings.Contains(removed, "authorization") {
				t.Errorf("allowed Check: x-auth-token-binding %q, headers_to_remove %q; want dpop, and both the DPoP and Authorization headers removed", binding, removed)
			}
			for name, c := range map[string]struct {
				resp *authv3.CheckResponse
				want string
			}{
				// The replay cache is Redis, shared with the forward-auth path above.
				"the same proof again":     {check("DPoP", m.Proofs[0], path), `invalid_dpop_proof`},
				"the token as Bearer":      {check("Bearer", m.Proofs[1], path), `invalid_token`},
				"a proof for another path": {check("DPoP", m.Proofs[2], path+"/elsewhere"), `invalid_dpop_proof`},
			} {
				d := c.resp.GetDeniedResponse()
				if d == nil || d.GetStatus().GetCode() != 401 || !strings.Contains(header(d.GetHeaders(), "www-authenticate"), c.want) {
					t.Errorf("gRPC Check, %s: %v, want 401 with %s", name, d, c.want)
				}
			}
		})
	}
}

func mustPath(t *testing.T, resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// jwtPart decodes one part of a compact JWS (no verification).
func jwtPart(t *testing.T, jws string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatal("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// runScript runs a program of this directory, refuses output that looks like a token, and
// returns its last JSON line.
func runScript(ctx context.Context, t *testing.T, node, program string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runNode(ctx, t, node, program, args...)
	line := lastJSONLine(stdout)
	if err != nil || line == "" {
		t.Fatalf("%s: %v\n%s", program, err, tail(stderr, 20))
	}
	return line
}
