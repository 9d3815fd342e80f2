// Shared by sdk1.mjs and sdk2.mjs: the loopback HTTP front, and the record of what each POST
// made the SDK execute. Every POST carries X-Diff-Case; the SDK's handling of it runs inside
// an AsyncLocalStorage context holding that case, so whatever request handler the SDK
// dispatches to (however it parsed the body) is recorded under the case that caused it.
import http from 'node:http';
import { AsyncLocalStorage } from 'node:async_hooks';

const als = new AsyncLocalStorage();
let executed = {}; // case → [{method, name, via}]

// The member of params that names what is operated on, as mcp-authz's Operation.Name does.
const NAME_OF = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'resources/subscribe': 'uri',
  'resources/unsubscribe': 'uri',
};

export function record(method, name, via, nonString = false) {
  const c = als.getStore();
  const e = { method, via };
  if (nonString) e.nonString = true;
  if (name !== undefined) {
    e.name = name;
    // JSON.stringify escapes a lone surrogate; Go would read it back as U+FFFD, hiding it.
    if (typeof name === 'string' && !name.isWellFormed()) e.illFormed = true;
  }
  (executed[c ?? '(no case)'] ??= []).push(e);
}

// wrapDispatch makes every request handler the SDK registered record its method and the
// name it was handed before it runs: this is the SDK's own dispatch, after its own parsing.
export function wrapDispatch(protocol) {
  for (const [method, handler] of protocol._requestHandlers) {
    protocol._requestHandlers.set(method, (request, extra) => {
      const field = NAME_OF[request.method];
      let name;
      if (field !== undefined) {
        const v = request.params?.[field];
        if (typeof v !== 'string') {
          // Not a name mcp-authz could have read: kept as JSON, marked.
          record(request.method, JSON.stringify(v ?? null), 'dispatch', true);
          return handler(request, extra);
        }
        name = v;
      }
      record(request.method, name, 'dispatch');
      return handler(request, extra);
    });
  }
}

// serve listens on 127.0.0.1 (port from argv[2], 0 for any) and prints {"port":N} once ready.
// Every other request goes to handle(req, res); GET /executed hands over and clears
// the record.
export function serve(name, handle) {
  const srv = http.createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/executed') {
      const out = executed;
      executed = {};
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
      return;
    }
    const c = req.headers['x-diff-case'] ?? '(no case)';
    try {
      // The body is left unread: the SDK reads and parses it itself.
      await als.run(c, () => handle(req, res));
    } catch (err) {
      if (!res.headersSent) res.writeHead(599, { 'content-type': 'text/plain' });
      res.end(`harness: ${err?.stack ?? err}`);
    }
  });
  srv.keepAliveTimeout = 60_000;
  srv.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
    console.log(JSON.stringify({ server: name, port: srv.address().port }));
  });
}
