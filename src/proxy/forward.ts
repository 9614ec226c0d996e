import { Agent, ServerResponse, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Agent as HttpsAgent } from 'node:https';
import { createProxyMiddleware, type Plugin } from 'http-proxy-middleware';
import { sendError } from '../http/errors.ts';
import { trackLargeBody } from './body-gc.ts';
import type { Metrics } from '../ops/metrics.ts';

export interface ForwardOptions {
  target: string;
  timeoutMs: number;
  maxSockets: number;
  metrics: Metrics;
}

export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'other';

const TIMEOUT = 'KEYGATE_UPSTREAM_TIMEOUT';

function kindOf(err: NodeJS.ErrnoException): UpstreamErrorKind {
  if (err.code === TIMEOUT) return 'timeout';
  if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return 'refused';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return 'reset';
  return 'other';
}

/** Per-request state the forwarder needs back from the caller. */
export interface ForwardContext {
  requestId: string;
  /** Body bytes already read (assistant routes); written to the upstream exactly as received. */
  body?: Buffer | null;
  /** keygate set CORS headers itself; the upstream's are dropped so they never arrive twice. */
  cors?: boolean;
  /** Called once the upstream answered (for the upstream-duration histogram and access log). */
  onUpstream?: (seconds: number) => void;
}

const contexts = new WeakMap<IncomingMessage, ForwardContext>();

/**
 * http-proxy-middleware with a keep-alive agent and its default plugins ejected: keygate maps upstream failures
 * to its own error envelope (502 `upstream_unavailable`, 504 `upstream_timeout`). Bodies stream both ways;
 * a client that goes away destroys the upstream request (httpxy listens for the response's close).
 */
export function createForwarder(opts: ForwardOptions) {
  const https = opts.target.startsWith('https:');
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: Math.min(opts.maxSockets, 256), scheduling: 'lifo' as const };
  const agent = https ? new HttpsAgent(agentOptions) : new Agent(agentOptions);

  const failed = new WeakSet<IncomingMessage>();

  function fail(err: Error, req: IncomingMessage, res: ServerResponse): void {
    if (failed.has(req)) return;
    failed.add(req);
    // The client left first: nothing to answer, and not the upstream's fault.
    if (res.destroyed || req.socket.destroyed) return;
    const kind = kindOf(err as NodeJS.ErrnoException);
    opts.metrics.upstreamErrors.inc({ kind });
    const requestId = contexts.get(req)?.requestId ?? '';
    if (kind === 'timeout') sendError(res, requestId, 'upstream_timeout', 'The upstream did not answer in time.');
    else sendError(res, requestId, 'upstream_unavailable', 'The upstream is unavailable.');
  }

  // `upstream.timeoutMs` bounds the wait for response headers; a long stream after that is not cut.
  const timing: Plugin = (proxyServer) => {
    // httpxy reports network errors as an 'error' event (and HPM sometimes also through `next(err)`).
    proxyServer.on('error', (err: Error, req?: IncomingMessage, res?: ServerResponse | Socket) => {
      if (req && res instanceof ServerResponse) fail(err, req, res);
    });
    proxyServer.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
      const started = performance.now();
      const ctx = contexts.get(req);
      // The request stream is already consumed; httpxy's pipe of an ended stream only ends proxyReq.
      if (ctx?.body) proxyReq.write(ctx.body);
      else trackLargeBody(req);
      const timer = setTimeout(() => {
        proxyReq.destroy(Object.assign(new Error('upstream timed out'), { code: TIMEOUT }));
      }, opts.timeoutMs);
      proxyReq.once('response', () => {
        clearTimeout(timer);
        ctx?.onUpstream?.((performance.now() - started) / 1000);
      });
      proxyReq.once('close', () => clearTimeout(timer));
    });
    proxyServer.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
      if (!contexts.get(req)?.cors) return;
      for (const name of Object.keys(proxyRes.headers)) if (name.startsWith('access-control-')) delete proxyRes.headers[name];
    });
  };

  const proxy = createProxyMiddleware<IncomingMessage, ServerResponse>({
    target: opts.target,
    agent,
    changeOrigin: false,
    xfwd: false,
    ejectPlugins: true,
    plugins: [timing],
  });

  function forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): void {
    contexts.set(req, ctx);
    // 'proxyReq' (where a buffered body is written) is not emitted for `Expect: 100-continue` requests.
    if (ctx.body) delete req.headers.expect;
    void proxy(req, res, (err?: unknown) => {
      if (err) fail(err as Error, req, res);
    });
  }

  return { forward, agent, close: () => agent.destroy() };
}

export type Forwarder = ReturnType<typeof createForwarder>;
