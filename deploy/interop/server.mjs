// A real MCP server (@modelcontextprotocol/sdk, Streamable HTTP, stateless) behind the front
// door. Its one tool, "echo", returns its argument together with what the request carried:
// the identity headers nginx set from mcp-authz's answer, and whether any Authorization
// header reached it (it must not: no token passthrough). Each tool call is also logged to
// stdout as one JSON line, so a harness can count what reached the server.
//
// Usage: node server.mjs PORT      (or PORT=... node server.mjs); serves http://127.0.0.1:PORT/mcp
//
// Under /mcp/payments it serves the SDK 2.x payments server instead (server2.mjs): nginx has
// one upstream, and the two SDK lines load side by side in one process.
import http from 'node:http';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { handlePayments } from './server2.mjs';

const PORT = Number(process.argv[2] || process.env.PORT || 3000);

http.createServer(async (req, res) => {
  if (!req.url.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/mcp/payments' || path.startsWith('/mcp/payments/')) {
    await handlePayments(req, res);
    return;
  }
  const server = new McpServer({ name: 'interop-upstream', version: '1.0.0' });
  server.registerTool('echo', {
    description: 'Echoes text, with the caller identity mcp-authz established',
    inputSchema: { text: z.string() },
  }, async ({ text }) => {
    const seen = {
      echo: text,
      subject: req.headers['x-auth-subject'] ?? null,
      client_id: req.headers['x-auth-client-id'] ?? null,
      scopes: req.headers['x-auth-scopes'] ?? null,
      authorization_seen: req.headers.authorization !== undefined && req.headers.authorization !== '',
      // A DPoP proof is for mcp-authz; it must not reach the server either.
      dpop_seen: req.headers.dpop !== undefined && req.headers.dpop !== '',
      token_binding: req.headers['x-auth-token-binding'] || null,
    };
    console.log(JSON.stringify({ tool_call: 'echo', ...seen }));
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  // Stateless: a transport per request, no session.
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}).listen(PORT, '127.0.0.1', () => console.log(`mcp server on http://127.0.0.1:${PORT}/mcp`));
