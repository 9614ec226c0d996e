import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, Pool, type Dispatcher } from 'undici';
import { sendError } from '../http/errors.ts';
import type { Metrics } from '../ops/metrics.ts';
import { declaresBody } from './body.ts';
import { countStreamed, isLargeBody } from './body-gc.ts';
import { fieldsRecord, responseHeaders } from './headers.ts';
import type { RequestScope } from './scope.ts';

// The upstream side of the proxy is undici's Pool (the Node.js project's HTTP/1.1 client), driven through its
// low-level `dispatch` handler interface: the head goes out as a flat [name, value, ...] list, the response
// arrives as raw header bytes and body chunks that are written straight to the client. Measured against
// `http.request` with a keep-alive agent on the same hot path: a forwarded request costs roughly half the CPU
// (bench/README.md, "What the numbers decided"), which is what lets keygate authenticate and still beat a bare
// node:http proxy.
// http-proxy-middleware (measured ~45 µs per request over node:http) is not on this path either.

export interface ForwardOptions {
  target: string;
  timeoutMs: number;
  maxSockets: number;
  metrics: Metrics;
}

export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'other';

function kindOf(err: NodeJS.ErrnoException): UpstreamErrorKind {
  switch (err.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timeout';
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'reset';
    default:
      return 'other';
  }
}

/** What the forwarder needs to know of its caller for one exchange. */
interface ExchangeContext {
  timeoutMs: number;
  upstreamDuration: { observe(seconds: number): void };
  fail(err: NodeJS.ErrnoException, res: ServerResponse, scope: RequestScope): void;
}

/**
 * One request/response exchange with the upstream, as undici's dispatch handler: the response head is written
 * to the client when it arrives, body chunks as they come (the upstream is paused while the client is slow),
 * and `cancel()` aborts it when the client leaves first. A class, so no closures are made per request.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #scope: RequestScope;
  readonly #ctx: ExchangeContext;
  readonly #started = performance.now();
  readonly #countBody: boolean;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(res: ServerResponse, scope: RequestScope, ctx: ExchangeContext, countBody: boolean) {
    this.#res = res;
    this.#scope = scope;
    this.#ctx = ctx;
    this.#countBody = countBody;
  }

  cancel(): void {
    this.#abort?.();
  }

  /**
   * Written to an upstream socket: the response head must arrive within `upstream.timeoutMs`. A plain timer,
   * cleared when the head arrives, rather than undici's `headersTimeout`: undici keeps each of those in a list
   * it sweeps twice a second, so every request's timer outlived two young-generation GCs and was promoted
   * (half of what keygate promoted under load; bench/README.md).
   */
  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    this.#timer = setTimeout(expire, this.#ctx.timeoutMs, this);
  }

  expire(): void {
    this.#timer = null;
    this.#abort?.(new errors.HeadersTimeoutError());
  }

  #stopTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** undici 7 passes the chunk sent (its typings say a size): large uploads are counted for body-gc.ts. */
  onBodySent(chunk: Buffer | number): void {
    if (this.#countBody) countStreamed(typeof chunk === 'number' ? chunk : chunk.length);
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // informational (1xx): not passed on
    this.#stopTimer();
    this.#resume = resume;
    const seconds = (performance.now() - this.#started) / 1000;
    this.#scope.upstreamSeconds = seconds;
    this.#ctx.upstreamDuration.observe(seconds);
    this.#res.writeHead(statusCode, statusText, responseHeaders(raw, this.#scope, this.#scope.responseHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#res.write(chunk)) return true;
    // A slow client pauses the upstream: undici stops reading until the client has drained.
    this.#res.once('drain', this.#resume!);
    return false;
  }

  onComplete(): void {
    this.#res.end();
  }

  onError(err: Error): void {
    this.#stopTimer();
    this.#ctx.fail(err, this.#res, this.#scope);
  }
}

const expire = (exchange: Exchange) => exchange.expire();

/**
 * Forwards a request with the head keygate built for it: bodies stream both ways (or the exact buffered bytes
 * are written), refused or reset upstreams answer 502 `upstream_unavailable`, and no response head within
 * `upstream.timeoutMs` 504 `upstream_timeout`. The caller cancels `scope.upstream` when the client leaves.
 */
export function createForwarder(opts: ForwardOptions) {
  const target = new URL(opts.target);
  const base = target.pathname === '/' ? '' : target.pathname.replace(/\/$/, '');
  const pool = new Pool(target.origin, {
    connections: opts.maxSockets,
    headersTimeout: 0, // the exchange times the head itself (Exchange.onConnect)
    connectTimeout: opts.timeoutMs,
    bodyTimeout: 0, // streams (SSE, voice) may be quiet for long; the client going away ends them
  });
  const upstreamErrors = opts.metrics.upstreamErrors;

  const ctx: ExchangeContext = {
    timeoutMs: opts.timeoutMs,
    upstreamDuration: opts.metrics.upstreamDuration,
    fail(err, res, scope) {
      // The client left first: nothing to answer, and not the upstream's fault.
      if (res.destroyed || res.socket?.destroyed) return;
      const kind = kindOf(err);
      upstreamErrors.inc({ kind });
      if (res.headersSent) {
        res.destroy(); // a stream cut mid-way cannot become an error reply
        return;
      }
      const headers = fieldsRecord(scope.responseHeaders); // keygate's own fields (RateLimit-*, CORS) stay
      if (kind === 'timeout') sendError(res, scope.requestId, 'upstream_timeout', 'The upstream did not answer in time.', { headers });
      else sendError(res, scope.requestId, 'upstream_unavailable', 'The upstream is unavailable.', { headers });
    },
  };

  /** `headers`: the forwarded head (proxy/headers.ts); `body`: bytes already read (assistant routes), else null. */
  function forward(req: IncomingMessage, res: ServerResponse, scope: RequestScope, headers: string[], body: Buffer | null): void {
    const streamed = !body && declaresBody(req);
    const exchange = new Exchange(res, scope, ctx, streamed && isLargeBody(req));
    scope.upstream = exchange;
    pool.dispatch({ path: base + scope.target!.url, method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: streamed ? req : body }, exchange);
  }

  return { forward, close: () => pool.close() };
}

export type Forwarder = ReturnType<typeof createForwarder>;
