// A real MCP server of the TypeScript SDK 2.x (@modelcontextprotocol/server, createMcpHandler:
// 2026-07-28 per-request envelope traffic and, by its default stateless legacy fallback,
// 2025-era traffic), recording what each POST made it execute (see record.mjs).
//
//   POST /mcp         createMcpHandler(factory), a fresh McpServer per request
//   GET  /executed    the record since the last GET, by X-Diff-Case
//
// Usage: node sdk2.mjs [PORT]   (0 or none: any free port; the port is printed as JSON)
import { z } from 'zod';
import { McpServer, ResourceTemplate, createMcpHandler } from '@modelcontextprotocol/server';
import { record, serve, wrapDispatch } from './record.mjs';

const text = (t) => ({ content: [{ type: 'text', text: t }] });

function newServer() {
  const server = new McpServer({ name: 'differential-sdk2', version: '1.0.0' },
    { capabilities: { resources: { subscribe: true } } });
  server.registerTool('delete_file', { description: 'deletes a file', inputSchema: z.object({ path: z.string().optional() }) },
    async () => { record('tools/call', 'delete_file', 'handler'); return text('deleted'); });
  server.registerTool('echo', { description: 'echoes', inputSchema: z.object({ text: z.string().optional() }) },
    async () => { record('tools/call', 'echo', 'handler'); return text('echo'); });
  server.registerResource('file', new ResourceTemplate('file:///{path}', { list: undefined }), {},
    async (uri) => { record('resources/read', uri.href, 'handler'); return { contents: [{ uri: uri.href, text: 'x' }] }; });
  server.registerPrompt('greet', { description: 'greets', argsSchema: z.object({ who: z.string().optional() }) },
    async () => { record('prompts/get', 'greet', 'handler'); return { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }] }; });
  for (const m of ['resources/subscribe', 'resources/unsubscribe']) {
    try {
      server.server.setRequestHandler(m, async (r) => { record(m, r.params.uri, 'handler'); return {}; });
    } catch {
      // not a method of every era this instance may serve
    }
  }
  wrapDispatch(server.server);
  return server;
}

const handler = createMcpHandler(() => newServer(), { responseMode: 'json' });

serve('sdk2', async (req, res) => {
  if (req.url !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  // node:http → web Request, the bytes untouched (what @modelcontextprotocol/node does).
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const request = new Request(`http://${req.headers.host}${req.url}`, {
    method: req.method, headers, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined,
  });
  const response = await handler.fetch(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
