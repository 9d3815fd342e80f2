// A DPoP client built on maintained third-party code, not ours: oauth4webapi (panva) makes the
// key pair, the RFC 9449 proofs and the token request; the MCP SDK 1.x Client, over a fetch
// that oauth4webapi's protectedResourceRequest performs, calls the "echo" tool through the
// front door. Then, with the same token, the requests an attacker or a broken client would
// send: the token as Bearer, a proof replayed verbatim, a proof made for another URL, and
// no proof at all.
//
// Usage: node client-dpop.mjs [--expect=dpop] URL CLIENT_ID CLIENT_SECRET ISSUER SCOPE [GRPC_FILE]
//   URL        the front door's MCP endpoint, e.g. http://127.0.0.1:8080/mcp
//   --expect=dpop  check the run (run.sh): the JSON gets verdict PASS or FAIL and problems, a
//              digest goes to stderr, and the exit status is 0 only on PASS.
//   GRPC_FILE  also write there (mode 0600) {"token", "proofs": [..]}: the token and three
//              fresh proofs for POST URL that were never sent, for a Check on the gRPC path.
//              The token goes to that file only, never to stdout.
// Prints one JSON line: what the token request and each request got.
import { writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const argv = process.argv.slice(2);
const expect = argv.find((a) => a.startsWith('--expect='))?.slice('--expect='.length);
const [url, clientId, clientSecret, issuer, scope, grpcFile] = argv.filter((a) => !a.startsWith('--'));
if (!scope || (expect && expect !== 'dpop')) {
  console.error('usage: node client-dpop.mjs [--expect=dpop] URL CLIENT_ID CLIENT_SECRET ISSUER SCOPE [GRPC_FILE]');
  process.exit(2);
}
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http only
const target = new URL(url);
const out = { client_id: clientId };

// 1. Token: discovery, a P-256 key, a client_credentials request with a proof.
const issuerURL = new URL(issuer);
const as = await oauth.processDiscoveryResponse(issuerURL, await oauth.discoveryRequest(issuerURL, insecure));
const client = { client_id: clientId };
const keyPair = await oauth.generateKeyPair('ES256');
const dpop = oauth.DPoP(client, keyPair);
out.as_dpop_algs = as.dpop_signing_alg_values_supported ?? null;
const params = new URLSearchParams({ scope, resource: url });
const grant = () => oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(clientSecret), params, { DPoP: dpop, ...insecure });
let tokens;
try {
  tokens = await oauth.processClientCredentialsResponse(as, client, await grant());
} catch (e) {
  if (!oauth.isDPoPNonceError(e)) throw e;
  tokens = await oauth.processClientCredentialsResponse(as, client, await grant()); // with the AS's nonce
}
const token = tokens.access_token;
out.token = { token_type: tokens.token_type, key_jkt: await dpop.calculateThumbprint(), ...describe(token) };

// Every resource request goes through here, so that one accepted request can be replayed.
const sent = [];
const recordingFetch = async (u, init) => {
  const res = await fetch(u, init);
  sent.push({ url: u, init, status: res.status });
  return res;
};
// A proof oauth4webapi made but nobody sent: capture the request instead of sending it.
const unsentProof = async (method, u) => {
  let headers;
  await oauth.protectedResourceRequest(token, method, new URL(u), new Headers(), null, {
    DPoP: dpop, ...insecure,
    [oauth.customFetch]: async (_u, init) => { headers = init.headers; return new Response(null, { status: 204 }); },
  });
  return headers;
};
// What a request got; a request that could not be sent is reported, not thrown.
const status = async (send) => {
  try {
    const res = await send();
    return { status: res.status, challenge: res.headers.get('www-authenticate') };
  } catch (e) {
    return { error: String(e?.cause?.code ?? e?.message ?? e) };
  }
};
const initialize = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'dpop-attacker', version: '1' } },
});
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

// 2. The MCP client, its requests carrying DPoP proofs.
const dpopFetch = async (input, init = {}) => {
  const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  try {
    return await oauth.protectedResourceRequest(token, init.method ?? 'GET', u, new Headers(init.headers), init.body ?? null, {
      DPoP: dpop, ...insecure, [oauth.customFetch]: recordingFetch, signal: init.signal ?? undefined,
    });
  } catch (e) {
    if (e instanceof oauth.WWWAuthenticateChallengeError) return e.response; // the SDK reads the 401 itself
    throw e;
  }
};
const mcp = new Client({ name: 'interop-dpop-client', version: '1.0.0' });
try {
  await mcp.connect(new StreamableHTTPClientTransport(target, { fetch: dpopFetch }));
  const r = await mcp.callTool({ name: 'echo', arguments: { text: `hello from ${clientId}` } });
  if (r.isError) throw new Error(`tool error: ${JSON.stringify(r.content)}`);
  out.mcp = { ok: true, tool_result: JSON.parse(r.content[0].text) };
} catch (e) {
  out.mcp = { ok: false, error: String(e?.message ?? e) };
}
await mcp.close().catch(() => {});
out.mcp.requests = sent.map((s) => `${s.init.method} ${new URL(s.url).pathname} ${s.status}`);

// 3. The same token as a Bearer token (RFC 9449 §7.2: refused).
out.as_bearer = await status(() => fetch(url, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: initialize }));

// 4. A request that was allowed, sent again byte for byte: its proof's jti was used.
const accepted = sent.find((s) => s.init.method === 'POST' && s.status === 200);
// (Without the SDK's AbortSignal, which ended with its request.)
out.replay = accepted ? await status(() => fetch(accepted.url, { ...accepted.init, signal: undefined })) : { error: 'no accepted POST to replay' };

// 5. A fresh proof, but made for another URL (htu) of the same origin.
const other = await unsentProof('POST', `${target.origin}/elsewhere`);
out.other_url = await status(() => fetch(url, { method: 'POST', headers: { ...mcpHeaders, authorization: other.authorization, dpop: other.dpop }, body: initialize }));

// 6. A fresh proof for a GET, sent with a POST (htm).
const get = await unsentProof('GET', url);
out.other_method = await status(() => fetch(url, { method: 'POST', headers: { ...mcpHeaders, authorization: get.authorization, dpop: get.dpop }, body: initialize }));

// 7. DPoP scheme without a proof.
out.no_proof = await status(() => fetch(url, { method: 'POST', headers: { ...mcpHeaders, authorization: `DPoP ${token}` }, body: initialize }));

if (grpcFile) {
  const proofs = [];
  for (let i = 0; i < 3; i++) proofs.push((await unsentProof('POST', url)).dpop);
  writeFileSync(grpcFile, JSON.stringify({ token, proofs }), { mode: 0o600 });
}
if (expect) {
  const problems = check(out);
  Object.assign(out, { expect, verdict: problems.length ? 'FAIL' : 'PASS', problems });
  process.exitCode = problems.length ? 1 : 0;
  console.error([
    `  token: ${out.token.token_type} ${out.token.kind}${out.token.kind === 'jwt' ? ` cnf.jkt ${out.token.cnf_jkt === out.token.key_jkt ? '= the key\'s thumbprint' : 'MISMATCH'}` : ''}`,
    `  with proofs: ${out.mcp.requests.join(' -> ')}; server saw ${JSON.stringify(out.mcp.tool_result ?? out.mcp.error)}`,
    ...['as_bearer', 'replay', 'other_url', 'other_method', 'no_proof'].map((k) => `  ${k}: ${out[k].status ?? out[k].error} ${out[k].challenge ?? ''}`),
    ...problems.map((p) => `  problem: ${p}`),
  ].join('\n'));
}
console.log(JSON.stringify(out));

// The end-to-end expectations (dpop_test.go checks the same, and the gRPC path besides).
function check(r) {
  const problems = [];
  const bad = (m) => problems.push(m);
  if (r.token.token_type !== 'dpop') bad(`token_type ${r.token.token_type}, want dpop`);
  if (r.token.kind === 'jwt' && r.token.cnf_jkt !== r.token.key_jkt) bad(`cnf.jkt ${r.token.cnf_jkt} is not the key's ${r.token.key_jkt}`);
  const t = r.mcp.tool_result;
  if (!r.mcp.ok) bad(`MCP client with DPoP proofs failed: ${r.mcp.error}`);
  else if (t.client_id !== clientId || t.authorization_seen || t.dpop_seen || t.token_binding !== 'dpop') {
    bad(`the MCP server saw ${JSON.stringify(t)}: want client_id ${clientId}, no Authorization, no DPoP, x-auth-token-binding dpop`);
  }
  for (const [k, want] of [['as_bearer', 'error="invalid_token"'], ['replay', 'error="invalid_dpop_proof"'],
    ['other_url', 'error="invalid_dpop_proof"'], ['other_method', 'error="invalid_dpop_proof"'], ['no_proof', 'error="']]) {
    if (r[k].status !== 401 || !r[k].challenge?.includes(want)) bad(`${k}: ${JSON.stringify(r[k])}, want 401 with ${want}`);
  }
  return problems;
}

// What a JWT access token says about its binding; an opaque token says nothing here.
function describe(t) {
  const parts = t.split('.');
  if (parts.length !== 3) return { kind: 'opaque' };
  const p = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  const h = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
  return { kind: 'jwt', typ: h.typ, aud: p.aud, cnf_jkt: p.cnf?.jkt ?? null };
}
