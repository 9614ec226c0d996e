import { Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { sendError } from '../http/errors.ts';
import type { Metrics } from '../ops/metrics.ts';
import { trackLargeBody } from './body-gc.ts';

// The proxied hot path forwards with node:http and a keep-alive agent. http-proxy-middleware 4 was measured
// on this path (bench/README.md): its per-request machinery (async middleware, option merging, URL parsing,
// pass pipeline) cost about 45 µs of CPU per request over plain node:http — more than keygate's whole
// budget for authentication, limits, metrics and logs — so the forwarding is done here, in one function.

export interface ForwardOptions {
  target: string;
  timeoutMs: number;
  maxSockets: number;
  metrics: Metrics;
}

export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'other';

/** Per-request state the forwarder needs from the caller. */
export interface ForwardContext {
  requestId: string;
  /** Body bytes already read (assistant routes); written to the upstream exactly as received. */
  body?: Buffer | null;
  /** keygate set CORS headers itself; the upstream's are dropped so they never arrive twice. */
  cors?: boolean;
  /** Called once the upstream answered (for the upstream-duration histogram and access log). */
  onUpstream?: (seconds: number) => void;
}

const TIMEOUT = 'KEYGATE_UPSTREAM_TIMEOUT';

function kindOf(err: NodeJS.ErrnoException): UpstreamErrorKind {
  if (err.code === TIMEOUT) return 'timeout';
  if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return 'refused';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return 'reset';
  return 'other';
}

// RFC 9110 §7.6.1: hop-by-hop response fields are not passed on; node frames the response itself.
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te']);

function responseHeaders(upstream: IncomingHttpHeaders, dropCors: boolean): IncomingHttpHeaders {
  const connection = upstream.connection;
  const listed = connection ? new Set(connection.split(',').map((t) => t.trim().toLowerCase())) : null;
  const out: IncomingHttpHeaders = {};
  for (const name in upstream) {
    if (HOP_BY_HOP_RESPONSE.has(name) || listed?.has(name)) continue;
    if (dropCors && name.startsWith('access-control-')) continue;
    out[name] = upstream[name];
  }
  return out;
}

/**
 * Forwards a request whose headers keygate has already cleaned and stamped: bodies stream both ways (or the
 * exact buffered bytes are written), a client that leaves aborts the upstream request, refused or reset
 * upstreams answer 502 `upstream_unavailable`, and no response headers within `upstream.timeoutMs` 504.
 */
export function createForwarder(opts: ForwardOptions) {
  const target = new URL(opts.target);
  const https = target.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: Math.min(opts.maxSockets, 256), scheduling: 'lifo' as const };
  const agent = https ? new HttpsAgent(agentOptions) : new Agent(agentOptions);
  const send = https ? httpsRequest : httpRequest;
  const base = target.pathname === '/' ? '' : target.pathname.replace(/\/$/, '');
  const { hostname, port } = target;

  function fail(err: NodeJS.ErrnoException, res: ServerResponse, ctx: ForwardContext): void {
    // The client left first: nothing to answer, and not the upstream's fault.
    if (res.destroyed || res.socket?.destroyed) return;
    const kind = kindOf(err);
    opts.metrics.upstreamErrors.inc({ kind });
    if (res.headersSent) {
      res.destroy(); // a stream cut mid-way cannot become an error reply
      return;
    }
    if (kind === 'timeout') sendError(res, ctx.requestId, 'upstream_timeout', 'The upstream did not answer in time.');
    else sendError(res, ctx.requestId, 'upstream_unavailable', 'The upstream is unavailable.');
  }

  function forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): void {
    const started = performance.now();
    if (ctx.body) delete req.headers.expect;
    const proxyReq: ClientRequest = send({ hostname, port, method: req.method, path: base + (req.url ?? '/'), headers: req.headers, agent });
    const timer = setTimeout(() => proxyReq.destroy(Object.assign(new Error('upstream timed out'), { code: TIMEOUT })), opts.timeoutMs);
    proxyReq.once('response', (up) => {
      clearTimeout(timer);
      ctx.onUpstream?.((performance.now() - started) / 1000);
      res.writeHead(up.statusCode ?? 502, up.statusMessage, responseHeaders(up.headers, ctx.cors === true));
      up.pipe(res);
      up.once('error', () => res.destroy());
    });
    proxyReq.once('error', (err) => {
      clearTimeout(timer);
      fail(err, res, ctx);
    });
    // A client that goes away takes the upstream request with it.
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
    if (ctx.body) {
      proxyReq.end(ctx.body);
    } else {
      trackLargeBody(req);
      req.pipe(proxyReq);
    }
  }

  return { forward, agent, close: () => agent.destroy() };
}

export type Forwarder = ReturnType<typeof createForwarder>;
