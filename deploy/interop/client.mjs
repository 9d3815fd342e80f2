// A real MCP client (@modelcontextprotocol/sdk) with OAuth client credentials. It calls the
// front door with no token, gets mcp-authz's 401, follows resource_metadata to the protected
// resource metadata, finds the authorization server, obtains a token for the resource, then
// initializes and calls the "whoami" tool. Prints one JSON line; exits 1 on failure.
// Usage: node client.mjs URL CLIENT_ID CLIENT_SECRET ISSUER [SCOPE]
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, clientSecret, issuer, scope] = process.argv.slice(2);
const seen = []; // what the client saw on the wire: status and challenge of each MCP response
const loggingFetch = async (input, init) => {
  const res = await fetch(input, init);
  const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const entry = { url: u.pathname, status: res.status, challenge: res.headers.get('www-authenticate') ?? undefined };
  if (u.pathname.endsWith('/token') && init?.body) {
    // What was asked for (never the secret, which travels in the Authorization header).
    const form = new URLSearchParams(String(init.body));
    entry.requested = { scope: form.get('scope') ?? undefined, resource: form.get('resource') ?? undefined };
  }
  seen.push(entry);
  return res;
};
const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer, scope });
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: loggingFetch });
const client = new Client({ name: 'interop-client', version: '1.0.0' });
try {
  await client.connect(transport);
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const token = provider.tokens()?.access_token ?? '';
  console.log(JSON.stringify({
    ok: true, server: client.getServerVersion()?.name, whoami: JSON.parse(result.content[0].text),
    token_kind: token.split('.').length === 3 ? 'jwt' : 'opaque', seen,
  }));
  await client.close();
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e), seen }));
  process.exitCode = 1;
}
