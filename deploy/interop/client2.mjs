// A real MCP client of the TypeScript SDK 2.x (@modelcontextprotocol/client 2.4.0: Client +
// StreamableHTTPClientTransport + ClientCredentialsProvider), pinned to MCP 2026-07-28, so
// every request carries the SEP-2243 Mcp-Method (and, for tools/call, Mcp-Name) headers that
// nginx's auth_request hands to mcp-authz. Against the payments server (server2.mjs) behind
// the front door it starts with no token, follows mcp-authz's 401 to the Protected Resource
// Metadata and the authorization server, then calls the tools "echo" and "refund".
//
// Usage: node client2.mjs --expect=SCENARIO URL CLIENT_ID CLIENT_SECRET ISSUER SCOPE
//   URL     the payments endpoint on the front door, e.g. http://127.0.0.1:8080/mcp/payments
//   --expect=allowed    echo and refund both succeed (a finance client)
//           denied     echo succeeds; refund is refused by mcp-authz's rule: 403 with no
//                      WWW-Authenticate (no step-up), the SDK reports an error, and the
//                      client does not try to get another token
//           mismatch   echo succeeds; then the client's own echo request is sent again by
//                      plain fetch with the body changed to call refund, the headers kept
//                      (Mcp-Name: echo). mcp-authz behind nginx sees only the headers and lets
//                      it through; the SDK server must refuse it: 400, JSON-RPC -32020. The
//                      summary carries that request (without its Authorization header) as
//                      "tampered", for the Go test to put to mcp-authz's gRPC ext_authz.
// Prints one JSON line (verdict PASS or FAIL, problems) and a digest on stderr; exit status 0
// only on PASS. Tokens are never printed.
import { Client, StreamableHTTPClientTransport, ClientCredentialsProvider } from '@modelcontextprotocol/client';

const argv = process.argv.slice(2);
const expect = argv.find((a) => a.startsWith('--expect='))?.slice('--expect='.length);
const [url, clientId, clientSecret, issuer, scope] = argv.filter((a) => !a.startsWith('--'));
if (!issuer || !['allowed', 'denied', 'mismatch'].includes(expect)) {
  console.error('usage: node client2.mjs --expect=allowed|denied|mismatch URL CLIENT_ID CLIENT_SECRET ISSUER SCOPE');
  process.exit(2);
}
const PROTOCOL = '2026-07-28';

// Every request the SDK made, and for requests to the MCP endpoint the SEP-2243 headers and
// what the body calls. The first tools/call echo is also kept whole (but for Authorization).
const seen = [];
let echoRequest;
const loggingFetch = async (input, init) => {
  const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const headers = new Headers(init?.headers);
  const entry = { method: init?.method ?? 'GET', url: u.origin + u.pathname };
  if (entry.url === url) {
    entry.mcp_method = headers.get('mcp-method');
    entry.mcp_name = headers.get('mcp-name');
    entry.protocol = headers.get('mcp-protocol-version');
    entry.authorized = headers.has('authorization');
    if (typeof init?.body === 'string') {
      const m = JSON.parse(init.body);
      entry.body_method = m.method ?? null;
      entry.body_name = m.params?.name ?? null;
      if (m.method === 'tools/call' && m.params?.name === 'echo' && headers.has('authorization') && !echoRequest) {
        const h = {};
        headers.forEach((v, k) => { if (k !== 'authorization') h[k] = v; });
        echoRequest = { method: entry.method, url: entry.url, headers: h, body: init.body };
      }
    }
  }
  const res = await fetch(input, init);
  entry.status = res.status;
  const challenge = res.headers.get('www-authenticate');
  if (challenge) entry.challenge = challenge;
  if (u.pathname.endsWith('/token') && init?.body) {
    const form = new URLSearchParams(String(init.body));
    entry.requested = { scope: form.get('scope') ?? undefined, resource: form.get('resource') ?? undefined };
  }
  seen.push(entry);
  return res;
};

const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer, scope });
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: loggingFetch });
const client = new Client({ name: 'interop-client-2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: PROTOCOL } } });

const summary = { client_id: clientId, expect, requested_scope: scope ?? null };
const call = async (name, args) => {
  try {
    const r = await client.callTool({ name, arguments: args });
    if (r.isError) return { ok: false, error: `tool error: ${JSON.stringify(r.content)}` };
    return { ok: true, result: JSON.parse(r.content[0].text) };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) };
  }
};
try {
  await client.connect(transport);
  summary.server = client.getServerVersion()?.name;
  summary.protocol = client.getNegotiatedProtocolVersion?.();
  summary.echo = await call('echo', { text: `hello from ${clientId}` });
  if (expect === 'mismatch') {
    summary.mismatch = await sendTampered();
  } else {
    summary.refund = await call('refund', { amount: 5 });
  }
} catch (e) {
  summary.error = String(e?.message ?? e);
}
summary.seen = seen;
await client.close().catch(() => {});

const problems = check(summary);
Object.assign(summary, { verdict: problems.length ? 'FAIL' : 'PASS', problems });
process.exitCode = problems.length ? 1 : 0;
console.log(JSON.stringify(summary));
console.error(digest(summary));

// The client's own echo request, its body now calling refund, its headers (Mcp-Method
// tools/call, Mcp-Name echo) and token unchanged: what a client would send to slip a refund
// past a gate that reads only headers.
async function sendTampered() {
  if (!echoRequest) return { error: 'no tools/call echo request was recorded' };
  const m = JSON.parse(echoRequest.body);
  m.id = 'tampered-1';
  m.params.name = 'refund';
  m.params.arguments = { amount: 5 };
  const body = JSON.stringify(m);
  const headers = { ...echoRequest.headers, authorization: `Bearer ${provider.tokens()?.access_token}` };
  const res = await fetch(echoRequest.url, { method: 'POST', headers, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* checked below */ }
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    response: json ?? text.slice(0, 300),
    tampered: { method: 'POST', url: echoRequest.url, headers: echoRequest.headers, body },
  };
}

function check(s) {
  const problems = [];
  const bad = (m) => problems.push(m);
  const prm = `${new URL(url).origin}/.well-known/oauth-protected-resource${new URL(url).pathname}`;
  const mcp = s.seen.filter((e) => e.url === url);
  if (s.error) bad(`MCP client failed: ${s.error}`);
  // Discovery as for the 1.x client: 401 pointing at this resource's PRM, then a token for it.
  const first = mcp[0];
  if (!first || first.status !== 401 || !first.challenge?.includes(`resource_metadata="${prm}"`)) {
    bad(`first MCP response: want 401 with resource_metadata="${prm}", got ${JSON.stringify(first)}`);
  }
  const tokenReqs = s.seen.filter((e) => e.url.endsWith('/token'));
  if (!tokenReqs.length) bad('no token request');
  for (const t of tokenReqs) {
    if (t.status !== 200 || t.requested?.resource !== url) bad(`token request ${JSON.stringify(t)}: want 200 with resource=${url}`);
  }
  if (s.protocol !== PROTOCOL) bad(`negotiated protocol ${s.protocol}, want ${PROTOCOL}`);
  // What mcp-authz behind nginx relies on: every POST names its operation in the headers,
  // and the headers agree with the body.
  for (const e of mcp.filter((x) => x.method === 'POST')) {
    if (!e.mcp_method || e.mcp_method !== e.body_method || (e.body_method === 'tools/call' && e.mcp_name !== e.body_name)) {
      bad(`POST without matching SEP-2243 headers: ${JSON.stringify(e)}`);
    }
  }
  if (!s.echo?.ok) bad(`echo failed: ${s.echo?.error}`);
  else {
    if (s.echo.result.client_id !== clientId) bad(`echo: the server saw x-auth-client-id ${s.echo.result.client_id}, want ${clientId}`);
    if (s.echo.result.authorization_seen) bad('echo: the Authorization header reached the MCP server');
  }
  if (s.server !== 'interop-payments') bad(`server ${s.server}, want interop-payments`);
  const refundPosts = mcp.filter((e) => e.body_method === 'tools/call' && e.body_name === 'refund');
  if (expect === 'allowed') {
    if (!s.refund?.ok) bad(`refund failed: ${s.refund?.error}`);
    else if (s.refund.result.refunded !== 5 || s.refund.result.client_id !== clientId) bad(`refund result ${JSON.stringify(s.refund.result)}`);
  }
  if (expect === 'denied') {
    if (s.refund?.ok !== false) bad('refund succeeded for a client outside the finance group');
    if (!refundPosts.length || refundPosts.some((e) => e.status !== 403)) bad(`refund POSTs ${JSON.stringify(refundPosts)}: want 403`);
    if (refundPosts.some((e) => e.challenge)) bad(`refund 403 carries WWW-Authenticate ${refundPosts.find((e) => e.challenge).challenge}: want none (a rule denial is not a step-up)`);
    if (tokenReqs.length !== 1) bad(`${tokenReqs.length} token requests: a 403 without a challenge must not send the client for another token`);
  }
  if (expect === 'mismatch') {
    const r = s.mismatch;
    if (!r || r.error) bad(`tampered request not sent: ${r?.error}`);
    else {
      // The SDK server's answer, not mcp-authz's: mcp-authz's own -32020 has no error.data.
      if (r.status !== 400 || r.response?.error?.code !== -32020 || !r.response?.error?.data?.mismatch) {
        bad(`tampered request: want 400 with JSON-RPC error -32020 and error.data.mismatch from the SDK server, got ${r.status} ${JSON.stringify(r.response)}`);
      }
      if (r.tampered.headers['mcp-name'] !== 'echo' || r.tampered.headers['mcp-method'] !== 'tools/call') bad(`tampered headers ${JSON.stringify(r.tampered.headers)}`);
    }
    if (refundPosts.length) bad('the SDK itself sent a refund');
  }
  return problems;
}

function digest(s) {
  const path = (u) => (u.startsWith(new URL(url).origin) ? u.slice(new URL(url).origin.length) : u);
  const wire = s.seen.map((e) => `${e.method} ${path(e.url)}${e.mcp_method ? ` [${e.mcp_method}${e.mcp_name ? ' ' + e.mcp_name : ''}]` : ''} ${e.status}`).join(' -> ');
  const lines = [`  wire: ${wire}`, `  protocol: ${s.protocol}`];
  if (s.echo) lines.push(`  echo: ${s.echo.ok ? 'ok' : 'FAILED ' + s.echo.error}`);
  if (s.refund) lines.push(`  refund: ${s.refund.ok ? 'ok ' + JSON.stringify(s.refund.result) : 'refused: ' + s.refund.error}`);
  if (s.mismatch) lines.push(`  tampered (Mcp-Name echo, body refund): ${s.mismatch.status} ${JSON.stringify(s.mismatch.response).slice(0, 200)}`);
  if (s.error) lines.push(`  SDK reported: ${s.error}`);
  for (const p of s.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n');
}
