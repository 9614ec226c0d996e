import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import express from 'express';
import FindMyWay from 'find-my-way';

// Real routers as upstreams for the routing-security tests: each registers the same handlers, and
// records which one ran and with what path. A handler is named by the permission the route policy in
// ROUTE_POLICY guards it with, so a test can tell whether a key reached a handler it may not.

export const ROUTE_POLICY = {
  defaultAction: 'allow',
  defaultPermission: '*',
  routes: [
    { method: 'POST', path: '/v1/calls', permission: 'calls:write', assistant: { from: 'body', field: 'assistantId', transientField: 'assistant' } },
    { method: 'GET', path: '/v1/calls/:id', permission: 'calls:read' },
    { method: 'GET', path: '/v1/admin/**', permission: 'admin:read' },
    { method: 'GET', path: '/v1/public/:id', permission: 'usage:read' },
    { method: 'GET', path: '/v1/keys', permission: 'keys:read' },
  ],
};

/** The same routes behind a catch-all the narrow keys hold: a variant the policy does not match is forwarded. */
export const CATCH_ALL_POLICY = { ...ROUTE_POLICY, routes: [...ROUTE_POLICY.routes, { method: '*', path: '/v1/**', permission: 'usage:read' }] };

export interface Hit {
  handler: string;
  method: string;
  url: string;
  body: string;
}

export interface RouterUpstream {
  name: string;
  url: string;
  hits: Hit[];
  close(): Promise<void>;
}

function record(hits: Hit[], handler: string, req: IncomingMessage, res: ServerResponse, parsedBody?: unknown): void {
  const chunks: Buffer[] = [];
  const done = () => {
    hits.push({ handler, method: req.method ?? '', url: req.url ?? '', body: parsedBody === undefined ? Buffer.concat(chunks).toString() : JSON.stringify(parsedBody) });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ handler }));
  };
  if (req.readableEnded || parsedBody !== undefined) return done();
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', done);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: Server) {
  return () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
}

/** Express 5 with its defaults (case-insensitive, non-strict routing) and the body parsers an API would use. */
export async function startExpressUpstream(): Promise<RouterUpstream> {
  const hits: Hit[] = [];
  const app = express();
  app.use(express.json(), express.urlencoded({ extended: false }));
  const h = (handler: string) => (req: express.Request, res: express.Response) => record(hits, handler, req, res, req.body ?? {});
  app.post('/v1/calls', h('calls:write'));
  app.get('/v1/calls/:id', h('calls:read'));
  app.get('/v1/admin/*splat', h('admin:read'));
  app.get('/v1/public/:id', h('usage:read'));
  app.get('/v1/keys', h('keys:read'));
  app.use((req, res) => record(hits, 'none', req, res.status(404)));
  const server = createServer(app);
  return { name: 'express', url: await listen(server), hits, close: closer(server) };
}

/** find-my-way (Fastify's router), set up as permissively as it can be: the likeliest to route a variant. */
export async function startFindMyWayUpstream(): Promise<RouterUpstream> {
  const hits: Hit[] = [];
  const router = FindMyWay({
    caseSensitive: false,
    ignoreTrailingSlash: true,
    ignoreDuplicateSlashes: true,
    defaultRoute: (req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = 404;
      record(hits, 'none', req, res);
    },
    // Honoured by find-my-way 9, missing from its typings: `/v1/calls;x` routes as `/v1/calls`.
    ...{ useSemicolonDelimiter: true },
  });
  const h = (handler: string) => (req: IncomingMessage, res: ServerResponse) => record(hits, handler, req, res);
  router.on('POST', '/v1/calls', h('calls:write'));
  router.on('GET', '/v1/calls/:id', h('calls:read'));
  router.on('GET', '/v1/admin/*', h('admin:read'));
  router.on('GET', '/v1/public/:id', h('usage:read'));
  router.on('GET', '/v1/keys', h('keys:read'));
  const server = createServer((req, res) => router.lookup(req, res));
  return { name: 'find-my-way', url: await listen(server), hits, close: closer(server) };
}

/**
 * Sends a request exactly as given — any target bytes, any method — on a fresh connection, and resolves with
 * the response's status and body (http.request would refuse or rewrite many of the targets under test).
 */
export function sendRaw(baseUrl: string, method: string, target: string, headers: Record<string, string> = {}, body = ''): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return reject(new Error(`no HTTP response to ${method} ${JSON.stringify(target)}: ${JSON.stringify(text.slice(0, 200))}`));
      resolve({ status: Number(m[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    // Written, not ended: Node's server aborts a request whose client half-closes (httpAllowHalfOpen false).
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}
