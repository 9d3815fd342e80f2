// The payments MCP server of the interop run, on the TypeScript SDK 2.x
// (@modelcontextprotocol/server 2.4.0, createMcpHandler): it speaks MCP 2026-07-28 and, as
// that revision requires, validates the SEP-2243 Mcp-Method / Mcp-Name headers against the
// JSON-RPC body (a disagreement is HTTP 400 with JSON-RPC error -32020 HeaderMismatch).
// server.mjs serves it under /mcp/payments, the resource whose refund tool mcp-authz limits
// to the finance group (mcp-authz.yaml.in).
//
// Tools: "echo" (anyone with mcp:tools) and "refund" (finance only, by mcp-authz's rule).
// Logged to stdout, one JSON line each, so a harness can see what reached the server and
// what it executed:
//   {"payments_request": ...}   every request: method, Mcp-Method, Mcp-Name, the body's
//                               method and params.name, and the identity header nginx set
//   {"payments_call": "echo"|"refund", ...}   a tool handler ran (server.mjs's own tools log
//                               "tool_call", so the two are counted apart)
import { z } from 'zod';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';

// A fresh McpServer per request (stateless); ctx.requestInfo is the request it serves.
function newServer(ctx) {
  const server = new McpServer({ name: 'interop-payments', version: '1.0.0' });
  const h = ctx.requestInfo?.headers ?? new Headers();
  const who = () => ({
    subject: h.get('x-auth-subject'),
    client_id: h.get('x-auth-client-id'),
    scopes: h.get('x-auth-scopes'),
    authorization_seen: (h.get('authorization') ?? '') !== '',
  });
  server.registerTool('echo', {
    description: 'Echoes text, with the caller identity mcp-authz established',
    inputSchema: z.object({ text: z.string() }),
  }, async ({ text }) => {
    const seen = { echo: text, ...who() };
    console.log(JSON.stringify({ payments_call: 'echo', ...seen }));
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  server.registerTool('refund', {
    description: 'Refunds an amount (mcp-authz lets only the finance group call it)',
    inputSchema: z.object({ amount: z.number() }),
  }, async ({ amount }) => {
    const seen = { refunded: amount, ...who() };
    console.log(JSON.stringify({ payments_call: 'refund', ...seen }));
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  return server;
}

const handler = createMcpHandler(newServer, { responseMode: 'json' });

// handlePayments serves one node:http request with the 2.x handler, the bytes untouched
// (node:http → web Request, as @modelcontextprotocol/node does).
export async function handlePayments(req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  let msg = {};
  try { msg = JSON.parse(body.toString() || '{}'); } catch { /* logged as is: the SDK answers it */ }
  console.log(JSON.stringify({ payments_request: {
    method: req.method, mcp_method: req.headers['mcp-method'] ?? null, mcp_name: req.headers['mcp-name'] ?? null,
    body_method: msg?.method ?? null, body_name: msg?.params?.name ?? null, client_id: req.headers['x-auth-client-id'] ?? null,
  } }));
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const request = new Request(`http://${req.headers.host}${req.url}`, {
    method: req.method, headers, body: req.method === 'POST' ? body : undefined,
  });
  const response = await handler.fetch(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}
