// A real MCP client (@modelcontextprotocol/sdk: Client + StreamableHTTPClientTransport with the
// SDK's ClientCredentialsProvider). It calls the front door with no token, gets mcp-authz's
// 401, follows resource_metadata to the Protected Resource Metadata, finds the authorization
// server there, obtains a token for the resource, then initializes and calls the "echo" tool.
// Every request also carries forged identity headers (X-Auth-Subject: forged, ...), which
// must never reach the server.
//
// Usage: node client.mjs [--expect=SCENARIO] URL CLIENT_ID CLIENT_SECRET ISSUER [SCOPE]
//   URL     the front door's MCP endpoint, e.g. http://127.0.0.1:8080/mcp
//   ISSUER  the issuer the client's credentials belong to (the SDK refuses any other AS)
//   SCOPE   what the client asks the AS for (the SDK's provider does not use the challenge's)
//   --expect=ok-jwt | ok-opaque | insufficient_scope
//           check the run against that scenario: the JSON gets verdict PASS or FAIL and
//           problems, and the exit status is 0 only on PASS.
// Prints one JSON line. Without --expect, exits 1 when the MCP calls failed.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const argv = process.argv.slice(2);
const expect = argv.find((a) => a.startsWith('--expect='))?.slice('--expect='.length);
const [url, clientId, clientSecret, issuer, scope] = argv.filter((a) => !a.startsWith('--'));
if (!issuer) {
  console.error('usage: node client.mjs [--expect=ok-jwt|ok-opaque|insufficient_scope] URL CLIENT_ID CLIENT_SECRET ISSUER [SCOPE]');
  process.exit(2);
}
if (expect && !['ok-jwt', 'ok-opaque', 'insufficient_scope'].includes(expect)) {
  console.error(`unknown --expect=${expect}`);
  process.exit(2);
}

// What the client saw on the wire: every request the SDK made (MCP, metadata, token).
const seen = [];
const loggingFetch = async (input, init) => {
  const res = await fetch(input, init);
  const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const entry = { method: init?.method ?? 'GET', url: u.origin + u.pathname, status: res.status };
  const challenge = res.headers.get('www-authenticate');
  if (challenge) entry.challenge = challenge;
  if (u.pathname.endsWith('/token') && init?.body) {
    // What was asked for (never the secret, which travels in the Authorization header).
    const form = new URLSearchParams(String(init.body));
    entry.requested = { scope: form.get('scope') ?? undefined, resource: form.get('resource') ?? undefined };
  }
  seen.push(entry);
  return res;
};

const forged = { 'X-Auth-Subject': 'forged', 'X-Auth-Client-Id': 'forged', 'X-Auth-Scopes': 'mcp:admin' };
const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer, scope });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  authProvider: provider, fetch: loggingFetch, requestInit: { headers: forged },
});
const client = new Client({ name: 'interop-client', version: '1.0.0' });

const summary = { client_id: clientId, requested_scope: scope ?? null, ok: false };
const text = `hello from ${clientId}`;
try {
  await client.connect(transport);
  const result = await client.callTool({ name: 'echo', arguments: { text } });
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  summary.ok = true;
  summary.server = client.getServerVersion()?.name;
  summary.tool_result = JSON.parse(result.content[0].text);
} catch (e) {
  summary.error = String(e?.message ?? e);
}
summary.token = describeToken(provider.tokens()?.access_token);
summary.seen = seen;
await client.close().catch(() => {});

if (expect) {
  const problems = check(expect, summary);
  Object.assign(summary, { expect, verdict: problems.length ? 'FAIL' : 'PASS', problems });
  process.exitCode = problems.length ? 1 : 0;
} else {
  process.exitCode = summary.ok ? 0 : 1;
}
console.log(JSON.stringify(summary));
if (expect) console.error(digest(summary));

// The run in a few lines, for people (run.sh shows it; the Go test logs it).
function digest(s) {
  const path = (u) => (u.startsWith(new URL(url).origin) ? u.slice(new URL(url).origin.length) : u);
  const wire = s.seen.map((e) => `${e.method} ${path(e.url)} ${e.status}`
    + (e.requested ? ` (scope=${e.requested.scope ?? '-'} resource=${e.requested.resource ?? '-'})` : '')).join(' -> ');
  const lines = [`  wire: ${wire}`];
  for (const e of s.seen) if (e.status === 403) lines.push(`  403 challenge: ${e.challenge}`);
  const t = s.token;
  if (t) lines.push(`  token: ${t.kind}${t.kind === 'jwt' ? ` typ=${t.typ} alg=${t.alg} aud=${t.aud} sub=${t.sub} scope=${t.scope ?? '-'}` : ''}`);
  const r = s.tool_result;
  if (r) lines.push(`  server saw: subject=${r.subject} client_id=${r.client_id} scopes=${r.scopes} authorization=${r.authorization_seen ? 'PRESENT' : 'none'} echo=${JSON.stringify(r.echo)}`);
  if (s.error) lines.push(`  SDK reported: ${s.error}`);
  for (const p of s.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n');
}

// The header and the claims that matter of a JWT access token, or just "opaque".
function describeToken(token) {
  if (!token) return null;
  const parts = token.split('.');
  if (parts.length !== 3) return { kind: 'opaque' };
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString());
  const h = dec(parts[0]), p = dec(parts[1]);
  return { kind: 'jwt', typ: h.typ, alg: h.alg, iss: p.iss, aud: p.aud, sub: p.sub, client_id: p.client_id, scope: p.scope };
}

function check(scenario, s) {
  const problems = [];
  const bad = (m) => problems.push(m);
  const origin = new URL(url).origin;
  const prm = `${origin}/.well-known/oauth-protected-resource${new URL(url).pathname}`;
  const mcp = s.seen.filter((e) => e.url === url);

  // Discovery, the same for every scenario: no token at first, our 401 pointing at the PRM on
  // the front door, the PRM, then the AS it names, then a token for this resource.
  const first = mcp[0];
  if (!first || first.status !== 401 || !first.challenge?.includes(`resource_metadata="${prm}"`)
      || !first.challenge.includes('scope="mcp:tools"')) {
    bad(`first MCP response: want 401 with resource_metadata="${prm}" and scope="mcp:tools", got ${JSON.stringify(first)}`);
  }
  if (!s.seen.some((e) => e.url === prm && e.status === 200)) bad(`protected resource metadata ${prm} was not fetched`);
  const tokenReqs = s.seen.filter((e) => e.url.endsWith('/token'));
  if (!tokenReqs.length) bad('no token request');
  for (const t of tokenReqs) {
    if (!t.url.startsWith(issuer + '/')) bad(`token request to ${t.url}, not to the issuer ${issuer}`);
    if (t.status !== 200) bad(`token request answered ${t.status}`);
    if (t.requested?.resource !== url) bad(`token request resource=${t.requested?.resource}, want ${url} (RFC 8707)`);
  }

  if (scenario === 'insufficient_scope') {
    if (s.ok) bad('the tool call succeeded with a token lacking mcp:tools');
    const stepUp = mcp.filter((e) => e.status === 403);
    if (!stepUp.length) bad('no 403 from the front door');
    for (const e of stepUp) {
      if (!e.challenge?.startsWith('Bearer error="insufficient_scope"') || !e.challenge.includes('scope="mcp:tools"')
          || !e.challenge.includes(`resource_metadata="${prm}"`)) {
        bad(`403 challenge ${JSON.stringify(e.challenge)}: want error="insufficient_scope", scope="mcp:tools", resource_metadata`);
      }
    }
    if (mcp.some((e) => e.status >= 200 && e.status < 300)) bad('an MCP request passed the front door');
    return problems;
  }

  const kind = scenario === 'ok-jwt' ? 'jwt' : 'opaque';
  if (!s.ok) return [...problems, `MCP client failed: ${s.error}`];
  if (s.server !== 'interop-upstream') bad(`server name ${s.server}`);
  if (s.token?.kind !== kind) bad(`token kind ${s.token?.kind}, want ${kind}`);
  if (kind === 'jwt' && (s.token.typ !== 'at+jwt' || s.token.alg !== 'RS256' || s.token.aud !== url || s.token.iss !== issuer)) {
    bad(`JWT ${JSON.stringify(s.token)}: want typ at+jwt, alg RS256, aud ${url}, iss ${issuer}`);
  }
  const r = s.tool_result;
  if (r.echo !== text) bad(`echo ${JSON.stringify(r.echo)}, want ${JSON.stringify(text)}`);
  if (r.authorization_seen) bad('the Authorization header reached the MCP server (token passthrough)');
  if (r.client_id !== clientId) bad(`x-auth-client-id ${r.client_id}, want ${clientId}`);
  // RFC 9068 JWTs of client_credentials carry sub = client id; oidc-provider's introspection
  // answer for an opaque client_credentials token has no sub, so no x-auth-subject at all.
  const wantSubject = kind === 'jwt' ? clientId : null;
  if (r.subject !== wantSubject) bad(`x-auth-subject ${r.subject}, want ${wantSubject}`);
  if (!String(r.scopes).split(' ').includes('mcp:tools') || String(r.scopes).includes('mcp:admin')) {
    bad(`x-auth-scopes ${r.scopes}, want the token's scopes (mcp:tools), never the forged mcp:admin`);
  }
  return problems;
}
