// A real MCP server (Streamable HTTP, @modelcontextprotocol/sdk) standing behind the front
// door. Its tool "whoami" answers with the identity headers mcp-authz set, and says whether
// any Authorization header reached it (it must not: no token passthrough).
// Usage: PORT=3000 node server.mjs
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const PORT = Number(process.env.PORT || 3000);

http.createServer(async (req, res) => {
  const server = new McpServer({ name: 'interop-upstream', version: '1.0.0' });
  server.tool('whoami', 'Who mcp-authz says is calling', async () => ({
    content: [{
      type: 'text',
      text: JSON.stringify({
        subject: req.headers['x-auth-subject'] ?? null,
        client_id: req.headers['x-auth-client-id'] ?? null,
        scopes: req.headers['x-auth-scopes'] ?? null,
        authorization_seen: req.headers.authorization !== undefined && req.headers.authorization !== '',
      }),
    }],
  }));
  // Stateless: a transport per request, no session.
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}).listen(PORT, '127.0.0.1', () => console.log(`mcp server on http://127.0.0.1:${PORT}/mcp`));
