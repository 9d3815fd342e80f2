// The MCP client of the token-exchange scenario (@modelcontextprotocol/sdk: Client +
// StreamableHTTPClientTransport + ClientCredentialsProvider). It starts with no token, follows
// mcp-authz's 401 to the resource metadata and the authorization server, gets a token for the
// MCP resource, calls the "whoami" tool and prints one JSON line: the tool's answer and the
// SHA-256 of its own token (never the token), so the harness can tell whether the upstream
// received the caller's token.
//
// Usage: node exchange-client.mjs URL CLIENT_ID CLIENT_SECRET ISSUER SCOPE
import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, clientSecret, issuer, scope] = process.argv.slice(2);
const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer, scope });
const client = new Client({ name: 'exchange-client', version: '1.0.0' });
const out = { ok: false };
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  const r = await client.callTool({ name: 'whoami', arguments: {} });
  if (r.isError) throw new Error('tool error');
  out.ok = true;
  out.seen = JSON.parse(r.content[0].text);
} catch (e) {
  out.error = String(e?.message ?? e);
}
const own = provider.tokens()?.access_token;
out.caller_token_sha256 = own ? crypto.createHash('sha256').update(own).digest('hex') : null;
await client.close().catch(() => {});
console.log(JSON.stringify(out));
process.exitCode = out.ok ? 0 : 1;
