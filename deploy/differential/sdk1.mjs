// A real MCP server of the TypeScript SDK 1.x (@modelcontextprotocol/sdk, McpServer over
// StreamableHTTPServerTransport), recording what each POST made it execute (see record.mjs).
//
//   POST /stateless   a server and transport per request, no session (sessionIdGenerator undefined)
//   POST /session     2025-11-25 sessions: initialize first, then Mcp-Session-Id on every POST
//   GET  /executed    the record since the last GET, by X-Diff-Case
//
// Usage: node sdk1.mjs [PORT]   (0 or none: any free port; the port is printed as JSON)
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { record, serve, wrapDispatch } from './record.mjs';

const text = (t) => ({ content: [{ type: 'text', text: t }] });

function newServer() {
  const server = new McpServer({ name: 'differential-sdk1', version: '1.0.0' },
    { capabilities: { resources: { subscribe: true } } });
  server.registerTool('delete_file', { description: 'deletes a file', inputSchema: { path: z.string().optional() } },
    async () => { record('tools/call', 'delete_file', 'handler'); return text('deleted'); });
  server.registerTool('echo', { description: 'echoes', inputSchema: { text: z.string().optional() } },
    async () => { record('tools/call', 'echo', 'handler'); return text('echo'); });
  server.registerResource('file', new ResourceTemplate('file:///{path}', { list: undefined }), {},
    async (uri) => { record('resources/read', uri.href, 'handler'); return { contents: [{ uri: uri.href, text: 'x' }] }; });
  server.registerPrompt('greet', { description: 'greets', argsSchema: { who: z.string().optional() } },
    async () => { record('prompts/get', 'greet', 'handler'); return { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }] }; });
  server.server.setRequestHandler(SubscribeRequestSchema, async (r) => { record('resources/subscribe', r.params.uri, 'handler'); return {}; });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (r) => { record('resources/unsubscribe', r.params.uri, 'handler'); return {}; });
  wrapDispatch(server.server);
  return server;
}

const sessions = new Map(); // Mcp-Session-Id → transport

serve('sdk1', async (req, res) => {
  if (req.url === '/stateless') {
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res);
    return;
  }
  if (req.url === '/session') {
    const sid = req.headers['mcp-session-id'];
    let transport = sid === undefined ? undefined : sessions.get(sid);
    if (transport === undefined) {
      // The transport itself refuses anything but an initialize without a known session.
      const server = newServer();
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id) => { sessions.set(id, transport); },
      });
      transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
      await server.connect(transport);
    }
    await transport.handleRequest(req, res);
    return;
  }
  res.writeHead(404).end();
});
