// The upstream MCP server of the token-exchange scenario (@modelcontextprotocol/sdk, Streamable
// HTTP, stateless). Its tool "whoami" reports the credential the request carried: the scheme,
// the SHA-256 of the token (never the token), and the token's claims that matter downstream
// (aud, sub, act, scope, client_id, iss), with the identity headers mcp-authz set. It is what
// an MCP server would forward to the downstream API: the test checks it is a token minted for
// that API on the caller's behalf, and never the caller's own token.
//
// Usage: node exchange-server.mjs PORT      serves http://127.0.0.1:PORT/mcp
import crypto from 'node:crypto';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const PORT = Number(process.argv[2]);

function describe(authorization) {
  const [scheme, token] = String(authorization ?? '').split(' ');
  if (!token) return { scheme: scheme || null };
  let claims = null;
  try {
    const p = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
    claims = { aud: p.aud, sub: p.sub, act: p.act, scope: p.scope, client_id: p.client_id, iss: p.iss };
  } catch { /* opaque */ }
  return { scheme, token_sha256: crypto.createHash('sha256').update(token).digest('hex'), claims };
}

http.createServer(async (req, res) => {
  if (!req.url.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  const server = new McpServer({ name: 'exchange-upstream', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Describes the credential this request carried' }, async () => {
    const seen = {
      credential: describe(req.headers.authorization),
      act_header: req.headers['x-mcp-act'] ?? null,
      subject_header: req.headers['x-auth-subject'] ?? null,
    };
    console.log(JSON.stringify({ tool_call: 'whoami', ...seen }));
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}).listen(PORT, '127.0.0.1', () => console.log(`mcp server on http://127.0.0.1:${PORT}/mcp`));
