import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Dispatcher, errors as UndiciErrors, Pool as UndiciPool } from 'undici';
import type { Refusal } from '../auth/pipeline.ts';
import type { Identity } from '../auth/verify.ts';
import type { Config } from '../config/schema.ts';
import { sendError } from '../http/errors.ts';
import { InFlight } from '../limits/in-flight.ts';
import type { Metrics } from '../ops/metrics.ts';
import { declaresBody } from '../http/body.ts';
import { countStreamed, isLargeBody } from './body-gc.ts';
import { basePathOf, fieldsRecord, responseHeaders } from '../decision/headers.ts';
import type { TlsMaterial } from '../config/tls-files.ts';
import type { RequestScope } from '../decision/scope.ts';

// undici's Pool and its errors alone, from their own files: the package's entry point loads its whole API (fetch,
// web streams, caches, mocks), about 2 MB of idle heap and 1 MB of idle RSS that the proxy never uses
// (bench/README.md, "Memory"). The errors are the same classes the pool throws (one module, one copy).
const load = createRequire(import.meta.url);
const Pool = load('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
type Pool = UndiciPool;
const errors = load('undici/lib/core/errors.js') as typeof UndiciErrors;

// The upstream side of the proxy is undici's Pool (the Node.js project's HTTP/1.1 client), driven through its
// low-level `dispatch` handler interface: the head goes out as a flat [name, value, ...] list, the response
// arrives as raw header bytes and body chunks that are written straight to the client. Measured against
// `http.request` with a keep-alive agent on the same hot path: a forwarded request costs roughly half the CPU
// (bench/README.md, "What the numbers decided"), which is what lets keygate authenticate and still beat a bare
// node:http proxy.
// http-proxy-middleware (measured ~45 µs per request over node:http) is not on this path either.
//
// Fairness: the pool has `upstream.maxSockets` connections. A request is handed to undici
// only when one of them is free; until then it waits in keygate's own queue of at most `upstream.maxQueue`
// (beyond it: 502 at once, as Envoy's circuit breaker overflows), where a timeout or a client that leaves
// takes it out at once (undici's queue cannot drop an entry). `upstream.timeoutMs` runs from the hand-over to
// the forwarder, so a request waiting behind connections held by long streams times out too (504). And no
// tenant holds more than its plan's `maxInFlight` of them (429, before anything is queued).

export interface ForwardOptions {
  target: string;
  timeoutMs: number;
  maxSockets: number;
  /** Requests waiting for one of the maxSockets connections; more are answered 502 at once. */
  maxQueue: number;
  /** Each plan's maxInFlight. */
  plans: Config['plans'];
  metrics: Metrics;
  /** How an https upstream is dialled: its CA, keygate's client certificate (config/tls-files.ts). */
  tls: TlsMaterial;
}

export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'invalid' | 'overloaded' | 'other';

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
    // A response keygate cannot relay: node refused to write its head (or undici's parser refused it, below).
    case 'ERR_INVALID_CHAR':
    case 'ERR_INVALID_HTTP_TOKEN':
    case 'ERR_HTTP_INVALID_STATUS_CODE':
      return 'invalid';
    default:
      return err instanceof errors.HTTPParserError ? 'invalid' : 'other';
  }
}

const QUEUED = 0; // in the forwarder's queue, waiting for a connection
const SENT = 1; // handed to undici
const ENDED = 2; // undici is done with it, or it never reached undici

/**
 * One request/response exchange with the upstream, as undici's dispatch handler: the response head is written
 * to the client when it arrives, body chunks as they come (the upstream is paused while the client is slow),
 * and `cancel()` aborts it when the client leaves first. A class, so no closures are made per request; it is
 * also its own link in the wait queue.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #scope: RequestScope;
  readonly #upstream: Upstream;
  readonly #started = performance.now();
  readonly #countBody: boolean;
  /** What undici is handed (held while the exchange waits). */
  readonly request: Dispatcher.DispatchOptions;
  /** The tenant whose in-flight count this exchange holds, if any. */
  readonly #tenant: string | null;
  prev: Exchange | null = null;
  next: Exchange | null = null;
  /** When the response head is due (performance.now() ms), and the links of the upstream's deadline list. */
  deadline: number;
  timed = false;
  earlier: Exchange | null = null;
  later: Exchange | null = null;
  #state = QUEUED;
  /** The client has its answer from keygate already (a timeout before undici connected), or has left. */
  #settled = false;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;

  constructor(res: ServerResponse, scope: RequestScope, upstream: Upstream, request: Dispatcher.DispatchOptions, countBody: boolean) {
    this.#res = res;
    this.#scope = scope;
    this.#upstream = upstream;
    this.request = request;
    this.#countBody = countBody;
    this.#tenant = scope.tenantId;
    if (this.#tenant !== null) upstream.inFlight.take(this.#tenant);
    // The response head must arrive within `upstream.timeoutMs` of now, queued or not: the exchange joins the
    // upstream's deadline list (Upstream.watch) and leaves it when the head arrives. Not undici's
    // `headersTimeout`: undici keeps each of those in a list it sweeps twice a second, so every request's timer
    // outlived two young-generation GCs and was promoted (half of what keygate promoted under load;
    // bench/README.md), and it would start only at the connection. Nor a timer per request (an insert and a
    // removal in node's timer lists each time): one timer serves the whole list.
    this.deadline = this.#started + upstream.timeoutMs;
    upstream.watch(this);
  }

  /** Handed to undici (from the queue or at once). */
  sent(): void {
    this.#state = SENT;
  }

  /** The client left first: so does the upstream request, wherever it is. */
  cancel(): void {
    if (this.#state === QUEUED) return this.#drop();
    if (this.#state !== SENT) return;
    if (this.#abort) this.#abort();
    else this.#settled = true; // not connected yet: aborted as soon as undici connects it (onConnect)
  }

  expire(): void {
    const timeout = new errors.HeadersTimeoutError();
    if (this.#state === QUEUED) {
      this.#drop();
      this.#upstream.fail(timeout, this.#res, this.#scope);
    } else if (this.#state === SENT) {
      if (this.#abort) return this.#abort(timeout);
      // Handed to undici but not written yet (a connection being opened): answered now, aborted on connect.
      this.#settled = true;
      this.#upstream.fail(timeout, this.#res, this.#scope);
    }
  }

  /** The queue is full: never queued, answered at once. */
  overflow(): void {
    this.#end();
    this.#upstream.overflowed(this.#res, this.#scope);
  }

  /** Out of the queue without reaching undici. */
  #drop(): void {
    this.#upstream.unqueue(this);
    this.#end();
  }

  #stopTimer(): void {
    if (this.timed) this.#upstream.unwatch(this);
  }

  /** Once per exchange: the tenant's in-flight count, and the connection if undici had it, are released. */
  #end(): void {
    if (this.#state === ENDED) return;
    const wasSent = this.#state === SENT;
    this.#state = ENDED;
    this.#stopTimer();
    if (this.#tenant !== null) this.#upstream.inFlight.release(this.#tenant);
    if (wasSent) this.#upstream.ended();
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#settled) return abort(); // timed out or left while undici was connecting: never written
    this.#abort = abort;
  }

  /** undici 7 passes the chunk sent (its typings say a size): large uploads are counted for body-gc.ts. */
  onBodySent(chunk: Buffer | number): void {
    const bytes = typeof chunk === 'number' ? chunk : chunk.length;
    this.#scope.requestBytes += bytes;
    if (this.#countBody) countStreamed(bytes);
  }

  // The upstream's reason phrase (the fourth argument) is never copied: node writes the standard one for the
  // status. A reason with a control byte made writeHead throw, and then the error reply too.
  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // informational (1xx): not passed on
    this.#stopTimer();
    this.#resume = resume;
    const seconds = (performance.now() - this.#started) / 1000;
    this.#scope.upstreamSeconds = seconds;
    this.#scope.upstreamStatus = statusCode;
    this.#scope.trace?.upstreamHead(statusCode);
    this.#upstream.upstreamDuration.observe(seconds);
    try {
      this.#res.writeHead(statusCode, responseHeaders(raw, this.#scope, this.#scope.responseHeaders));
    } catch (err) {
      // A head node will not write (a field value with a control byte, a name that is not a token): nothing
      // has been sent, so the client gets a 502 (onError) and the upstream exchange is aborted.
      this.#res.statusMessage = ''; // the failed writeHead left the status's reason set; the 502 sets its own
      this.#abort!(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#scope.responseBytes += chunk.length;
    if (this.#res.write(chunk)) return true;
    // A slow client pauses the upstream: undici stops reading until the client has drained.
    this.#res.once('drain', this.#resume!);
    return false;
  }

  onComplete(): void {
    this.#res.end();
    this.#scope.trace?.upstreamEnd();
    this.#end();
  }

  onError(err: Error): void {
    this.#scope.trace?.upstreamEnd(kindOf(err));
    this.#stopTimer();
    if (!this.#settled) this.#upstream.fail(err, this.#res, this.#scope);
    this.#end();
  }
}

/** The pool, the queue in front of it, and the per-tenant in-flight counts: what every exchange shares. */
class Upstream {
  readonly pool: Pool;
  readonly timeoutMs: number;
  readonly inFlight: InFlight;
  readonly upstreamDuration: { observe(seconds: number): void };
  readonly #upstreamErrors: Metrics['upstreamErrors'];
  readonly #maxSockets: number;
  readonly #maxQueue: number;
  /** Exchanges handed to undici that it has not finished: at most maxSockets. */
  #running = 0;
  /** The wait queue, oldest first, linked through the exchanges themselves (no node per request). */
  #head: Exchange | null = null;
  #tail: Exchange | null = null;
  #waiting = 0;
  /**
   * Exchanges waiting for their response head, by deadline: every exchange has the same timeout, so the order
   * they started in is the order they expire in, and one timer, set for the earliest deadline, serves them all.
   */
  #earliest: Exchange | null = null;
  #latest: Exchange | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #expireDue = () => this.#expire();

  constructor(opts: ForwardOptions) {
    this.pool = new Pool(new URL(opts.target).origin, {
      connections: opts.maxSockets,
      headersTimeout: 0, // the exchange times the head itself, from the hand-over (Exchange)
      connectTimeout: opts.timeoutMs,
      bodyTimeout: 0, // streams (SSE, voice) may be quiet for long; the client going away ends them
      connect: opts.tls,
    });
    this.timeoutMs = opts.timeoutMs;
    this.inFlight = new InFlight(opts.plans);
    this.upstreamDuration = opts.metrics.upstreamDuration;
    this.#upstreamErrors = opts.metrics.upstreamErrors;
    this.#maxSockets = opts.maxSockets;
    this.#maxQueue = opts.maxQueue;
  }

  watch(exchange: Exchange): void {
    exchange.timed = true;
    exchange.earlier = this.#latest;
    if (this.#latest) this.#latest.later = exchange;
    else this.#earliest = exchange;
    this.#latest = exchange;
    if (this.#timer === null) this.#timer = this.#at(exchange.deadline - performance.now());
  }

  /** Out of the deadline list (the head arrived, or the exchange ended). The timer stays: it finds nothing due. */
  unwatch(exchange: Exchange): void {
    exchange.timed = false;
    if (exchange.earlier) exchange.earlier.later = exchange.later;
    else this.#earliest = exchange.later;
    if (exchange.later) exchange.later.earlier = exchange.earlier;
    else this.#latest = exchange.earlier;
    exchange.earlier = exchange.later = null;
  }

  #expire(): void {
    this.#timer = null;
    const now = performance.now();
    for (let e = this.#earliest; e !== null && e.deadline <= now; e = this.#earliest) {
      this.unwatch(e);
      e.expire();
    }
    if (this.#earliest) this.#timer = this.#at(this.#earliest.deadline - now);
  }

  /** Unreferenced: an exchange's sockets keep the process up, an empty list does not. */
  #at(ms: number): NodeJS.Timeout {
    return setTimeout(this.#expireDue, Math.max(0, ms)).unref();
  }

  start(exchange: Exchange): void {
    if (this.#running < this.#maxSockets) return this.#send(exchange);
    if (this.#waiting >= this.#maxQueue) return exchange.overflow();
    exchange.prev = this.#tail;
    if (this.#tail) this.#tail.next = exchange;
    else this.#head = exchange;
    this.#tail = exchange;
    this.#waiting++;
  }

  unqueue(exchange: Exchange): void {
    if (exchange.prev) exchange.prev.next = exchange.next;
    else this.#head = exchange.next;
    if (exchange.next) exchange.next.prev = exchange.prev;
    else this.#tail = exchange.prev;
    exchange.prev = exchange.next = null;
    this.#waiting--;
  }

  /** undici is done with an exchange: its connection takes the oldest waiting one. */
  ended(): void {
    this.#running--;
    while (this.#running < this.#maxSockets && this.#head) {
      const next = this.#head;
      this.unqueue(next);
      this.#send(next);
    }
  }

  #send(exchange: Exchange): void {
    this.#running++;
    exchange.sent();
    this.pool.dispatch(exchange.request, exchange);
  }

  fail(err: NodeJS.ErrnoException, res: ServerResponse, scope: RequestScope): void {
    // The client left first: nothing to answer, and not the upstream's fault.
    if (res.destroyed || res.socket?.destroyed) return;
    const kind = kindOf(err);
    this.#upstreamErrors.inc({ kind });
    if (res.headersSent) {
      res.destroy(); // a stream cut mid-way cannot become an error reply
      return;
    }
    const headers = fieldsRecord(scope.responseHeaders); // keygate's own fields (RateLimit-*, CORS) stay
    if (kind === 'timeout') sendError(res, scope.requestId, 'upstream_timeout', 'The upstream did not answer in time.', { headers });
    else sendError(res, scope.requestId, 'upstream_unavailable', 'The upstream is unavailable.', { headers });
  }

  overflowed(res: ServerResponse, scope: RequestScope): void {
    this.#upstreamErrors.inc({ kind: 'overloaded' });
    const headers = fieldsRecord(scope.responseHeaders);
    sendError(res, scope.requestId, 'upstream_unavailable', 'Too many requests are waiting for the upstream; try again shortly.', { headers });
  }
}

const RETRY_AFTER = { 'Retry-After': '1' };

/**
 * Forwards a request with the head keygate built for it: bodies stream both ways (or the exact buffered bytes
 * are written), refused or reset upstreams answer 502 `upstream_unavailable`, and no response head within
 * `upstream.timeoutMs` 504 `upstream_timeout`. The caller cancels `scope.upstream` when the client leaves, and
 * asks `busy()` first: a tenant at its plan's maxInFlight is refused, never forwarded.
 */
export function createForwarder(opts: ForwardOptions) {
  const base = basePathOf(opts.target);
  const origin = new URL(opts.target).origin;
  const upstream = new Upstream(opts);

  /** `headers`: the forwarded head (decision/headers.ts); `body`: bytes already read (assistant routes), else null. */
  function forward(req: IncomingMessage, res: ServerResponse, scope: RequestScope, headers: string[], body: Buffer | null): void {
    const streamed = !body && declaresBody(req);
    scope.forwardedAt = performance.now();
    if (scope.trace) scope.trace.upstream(req.method ?? 'GET', origin + base + scope.target!.path, headers);
    const request: Dispatcher.DispatchOptions = { path: base + scope.target!.url, method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: streamed ? req : body };
    const exchange = new Exchange(res, scope, upstream, request, streamed && isLargeBody(req));
    scope.upstream = exchange;
    upstream.start(exchange);
  }

  /** 429 `concurrency_limit_reached` when the tenant already holds its plan's maxInFlight upstream requests. */
  function busy(identity: Identity): Refusal | null {
    if (!upstream.inFlight.full(identity.tenant.id, identity.tenant.plan)) return null;
    return { ok: false, code: 'concurrency_limit_reached', message: "Too many of this tenant's requests are in flight; retry after the Retry-After interval.", identity, headers: RETRY_AFTER };
  }

  return { forward, busy, close: () => upstream.pool.close() };
}

export type Forwarder = ReturnType<typeof createForwarder>;
