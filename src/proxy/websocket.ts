import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Outcome, Pipeline, Refusal } from '../auth/pipeline.ts';
import type { Identity } from '../auth/verify.ts';
import type { TokenReader } from '../auth/session-token.ts';
import type { KeyCache } from '../cache/key-cache.ts';
import type { Config } from '../config/schema.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { errorResponse, refusalMessage, type ErrorCode } from '../http/errors.ts';
import { isFailedAttempt } from '../limits/failures.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal, type Target } from '../http/target.ts';
import type { SessionMeter, SessionQuota } from '../limits/session-quota.ts';
import type { SessionSlots, SlotResult } from '../limits/sessions.ts';
import type { FailureBlock, RateLimits, RateVerdict } from '../limits/types.ts';
import { refusalOutcome, type Usage } from '../limits/usage.ts';
import { throttledWarn, type Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Tracing } from '../ops/tracing.ts';
import { forwardedHeaders, rateLimitedRefusal, rateLimitFields, type IdentityHeaderDeps } from './headers.ts';
import { isManagement } from './public-handler.ts';
import { answeredSubprotocol, forwardedSubprotocols, handshakeProblem } from './ws-handshake.ts';
import { createSessions, expiryOf } from './ws-sessions.ts';

// WebSocket (voice stream) proxying, SPEC §5: the client's handshake is checked and the upgrade passes the same
// pipeline before a session slot is taken or the upstream dialled; the session then lives in ws-sessions.ts.
// Frames are capped at `websocket.maxPayloadBytes` on both sides.

/** Why a dial ended before the session started: the client's answer and the metric's kind; null when the client left. */
type DialFailure = { code: ErrorCode; message: string; kind: 'refused' | 'timeout' | 'other' } | null;

export interface WebSocketDeps extends IdentityHeaderDeps {
  pipeline: Pipeline;
  limits: RateLimits;
  failures: FailureBlock;
  slots: SessionSlots;
  /** Session minutes per month (issue 17). */
  sessionQuota: SessionQuota;
  cache: KeyCache;
  /** Session tokens' reader, for re-checking a token's session against its key; null when tokens are off. */
  tokens: TokenReader | null;
  usage: Usage;
  plans: Config['plans'];
  upstreamUrl: string;
  timeoutMs: number;
  revalidateSeconds: number;
  /** Largest message either side may send; also each direction's backpressure high-water mark. */
  maxPayloadBytes: number;
  metrics: Metrics;
  logger: Logger;
  /** OpenTelemetry tracing (ops/tracing.ts), or null when it is off. */
  tracing: Tracing | null;
}

const DROP_HEADERS = ['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length'];

export function createWebSocketProxy(deps: WebSocketDeps) {
  const { metrics, logger, maxPayloadBytes } = deps;
  // What the client's 101 carries, looked up by request (`ws` passes it): X-Request-Id, RateLimit-*, and the
  // subprotocol the upstream chose (not `ws`'s default, the client's first offer, which may differ).
  const upgrading = new WeakMap<IncomingMessage, { requestId: string; fields: string[]; protocol: string }>();
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: maxPayloadBytes,
    handleProtocols: (_offered, req) => upgrading.get(req)?.protocol || false,
  });
  const sessions = createSessions({ ...deps, highWater: maxPayloadBytes });
  const warnStoreDown = throttledWarn(logger, 'key store unavailable during a WebSocket upgrade');
  const upstreamBase = deps.upstreamUrl.replace(/^http/, 'ws').replace(/\/$/, '');
  wss.on('headers', (lines: string[], req: IncomingMessage) => {
    const fields = upgrading.get(req)?.fields ?? [];
    for (let i = 0; i < fields.length; i += 2) lines.push(`${fields[i]}: ${fields[i + 1]}`);
  });
  // handshakeProblem() refuses whatever `ws` would; should `ws` refuse anyway, the answer is the envelope too
  // (and the socket's close ends the dial).
  wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => reject(socket, upgrading.get(req)?.requestId ?? requestIdOf(req), 'malformed_request', err.message));

  /** Answers a refused upgrade on the raw socket with the same envelope as any HTTP error. */
  function reject(socket: Duplex, requestId: string, code: ErrorCode, message: string, headers: Record<string, string> = {}, tenantId: string | null = null): void {
    const res = errorResponse(requestId, code, message, { headers: { ...headers, Connection: 'close' } });
    const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status]}`, ...Object.entries(res.headers).map(([k, v]) => `${k}: ${v}`)];
    if (!socket.destroyed) socket.end(`${lines.join('\r\n')}\r\n\r\n${res.body}`);
    metrics.decision(code, tenantId);
    deps.tracing?.upgrades.get(socket)?.end(res.status, code, null, 'upgrade', '');
  }

  function refuse(req: IncomingMessage, socket: Duplex, requestId: string, r: Refusal, headers?: Record<string, string>): void {
    const send = () => reject(socket, requestId, r.code, r.message, { ...r.headers, ...headers }, r.identity?.tenant.id ?? null);
    if (r.identity) deps.usage.record(r.identity.tenant.id, r.identity.key.id, refusalOutcome(r.code));
    // As on HTTP, a failed authentication is counted before it is answered: parallel upgrades cannot pass the block.
    if (!r.identity && isFailedAttempt(r.code)) deps.failures.fail(clientIpOf(req, deps.trustedProxies)).then(send, send);
    else send();
  }

  function storeDown(socket: Duplex, requestId: string, err: unknown): void {
    warnStoreDown({ err, requestId });
    reject(socket, requestId, 'store_unavailable', refusalMessage.store_unavailable);
  }

  function slotLease(identity: Identity, sessionId: string): () => void {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      void deps.slots.release(identity.tenant.id, identity.key.id, sessionId).catch(() => {});
    };
  }

  /** The request's headers for the upstream handshake: `ws` takes an object and makes the handshake fields itself. */
  function upstreamHeaders(req: IncomingMessage, identity: Identity, target: Target, requestId: string): Record<string, string> {
    const fields = forwardedHeaders(req, identity, target.path, requestId, deps);
    const headers: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!.toLowerCase();
      if (!DROP_HEADERS.includes(name)) headers[name] = headers[name] === undefined ? fields[i + 1]! : `${headers[name]}, ${fields[i + 1]!}`;
    }
    return headers;
  }

  /**
   * Opens the upstream WebSocket, then completes the client's handshake. Every way this can end before the
   * session starts (the dial throwing, the upstream refusing or timing out, the client leaving, `ws` not
   * completing the handshake) goes through `fail`: the upstream socket closed, the slot released, once.
   */
  function dial(req: IncomingMessage, target: Target, socket: Duplex, head: Buffer, requestId: string, sessionId: string, identity: Identity, verdict: RateVerdict | null, meter: SessionMeter | null): void {
    const releaseSlot = slotLease(identity, sessionId);
    // The slot, and the session time reserved and not used (SessionMeter.close is once, too).
    const release = () => {
      releaseSlot();
      meter?.close(Date.now());
    };
    let upstream: WebSocket | null = null;
    let done = false;
    const fail = (why: DialFailure): void => {
      if (done) return;
      done = true;
      socket.off('end', left).off('close', left);
      upstream?.terminate();
      release();
      if (why === null) return;
      metrics.upstreamErrors.inc({ kind: why.kind });
      reject(socket, requestId, why.code, why.message);
    };
    // The client hung up (or half-closed: a handshake cannot complete then) while keygate waited for the upstream.
    const left = () => {
      fail(null);
      socket.destroy();
    };
    const unavailable = (kind: 'refused' | 'other', message = 'The upstream is unavailable.'): DialFailure => ({ code: 'upstream_unavailable', message, kind });
    socket.once('end', left).once('close', left);
    if (socket.destroyed || socket.readableEnded) return left();
    try {
      const headers = upstreamHeaders(req, identity, target, requestId);
      deps.tracing?.upgrades.get(socket)?.upstreamFields('GET', upstreamBase + target.path, headers);
      const dialled = new WebSocket(upstreamBase + target.url, forwardedSubprotocols(req), {
        headers,
        perMessageDeflate: false,
        handshakeTimeout: deps.timeoutMs,
        maxPayload: maxPayloadBytes,
      });
      upstream = dialled;
      dialled.once('unexpected-response', (_req, res) => {
        res.resume();
        fail(unavailable('refused', `The upstream refused the WebSocket (${res.statusCode}).`));
      });
      // Kept for good: terminating a dial emits one more 'error'.
      dialled.on('error', (err: Error) => fail(/timed out/i.test(err.message) ? { code: 'upstream_timeout', message: 'The upstream did not accept the WebSocket in time.', kind: 'timeout' } : unavailable('refused')));
      dialled.once('open', () => {
        const fields = verdict ? rateLimitFields(verdict, ['X-Request-Id', requestId]) : ['X-Request-Id', requestId];
        upgrading.set(req, { requestId, fields, protocol: answeredSubprotocol(dialled.protocol, req) });
        try {
          wss.handleUpgrade(req, socket, head, (client) => {
            done = true;
            socket.off('end', left).off('close', left);
            sessions.start({ id: sessionId, req, target, identity, client, upstream: dialled, expiresAt: expiryOf(identity), meter, release });
            const trace = deps.tracing?.upgrades.get(socket);
            if (trace) {
              trace.decided('allowed', identity.tenant.id, identity.key.id);
              trace.upstreamHead(101);
              trace.end(101, null, target.path, 'upgrade', clientIpOf(req, deps.trustedProxies));
              deps.tracing!.session(trace, client, dialled);
            }
          });
        } catch (err) {
          logger.error({ err, requestId }, 'WebSocket handshake failed');
          fail(unavailable('other'));
        }
      });
    } catch (err) {
      // Only the error's name: `ws` puts the whole target (query included) in its messages.
      logger.warn({ requestId, error: err instanceof Error ? err.name : typeof err }, 'WebSocket upstream dial failed');
      fail(unavailable('other'));
    }
  }

  /** Rate limits and request quotas, then a session slot, then session minutes, then the dial; only the store failing here is a 503. */
  async function admit(req: IncomingMessage, target: Target, socket: Duplex, head: Buffer, requestId: string, identity: Identity): Promise<void> {
    const sessionId = randomUUID();
    let verdict: RateVerdict | null;
    let slot: SlotResult;
    let meter: SessionMeter | null = null;
    try {
      verdict = await deps.limits.consume(identity);
      if (verdict && !verdict.ok) {
        metrics.rateLimited.inc({ scope: verdict.scope });
        return refuse(req, socket, requestId, rateLimitedRefusal(verdict, identity));
      }
      const plan = deps.plans[identity.tenant.plan];
      slot = await deps.slots.acquire(identity.tenant.id, identity.key.id, sessionId, identity.key.policy.maxConcurrentConnections, plan?.maxConcurrentConnections.max ?? null);
      if (slot === 'ok') {
        const opened = await deps.sessionQuota.open(identity, sessionId);
        if (opened && 'refused' in opened) {
          slotLease(identity, sessionId)();
          metrics.rateLimited.inc({ scope: `${opened.scope}_quota` });
          const whose = opened.scope === 'key' ? 'API key' : 'tenant';
          const message = `Monthly session minutes used up for this ${whose}; they renew when the month (UTC) ends.`;
          return refuse(req, socket, requestId, { ok: false, code: 'quota_exceeded', message, identity }, { 'Retry-After': String(opened.retryAfterSeconds) });
        }
        meter = opened;
      }
    } catch (err) {
      slotLease(identity, sessionId)(); // the store may have taken the slot before failing to answer
      return storeDown(socket, requestId, err);
    }
    if (slot !== 'ok') {
      metrics.rateLimited.inc({ scope: slot === 'key' ? 'key_connections' : 'tenant_connections' });
      return refuse(req, socket, requestId, { ok: false, code: 'concurrency_limit_reached', message: `Too many open sessions for this ${slot === 'key' ? 'API key' : 'tenant'}.`, identity }, { 'Retry-After': '1' });
    }
    try {
      deps.usage.record(identity.tenant.id, identity.key.id, 'allowed');
      metrics.decision('allowed', identity.tenant.id);
      dial(req, target, socket, head, requestId, sessionId, identity, verdict, meter);
    } catch (err) {
      slotLease(identity, sessionId)(); // whatever fails between the slot and the dial gives the slot back
      throw err;
    }
  }

  function afterPipeline(req: IncomingMessage, target: Target, socket: Duplex, head: Buffer, requestId: string, outcome: Outcome): void {
    if (!outcome.ok) return refuse(req, socket, requestId, outcome);
    admit(req, target, socket, head, requestId, outcome.identity).catch((err: unknown) => {
      logger.error({ err, requestId }, 'WebSocket upgrade failed');
      socket.destroy();
    });
  }

  /**
   * The public listener's 'upgrade' handler. Traced, the handshake is a span (ended where the upgrade is answered,
   * on the socket) and the checks run under it, so their store round trips are its children.
   */
  const handleUpgrade = deps.tracing === null ? upgrade : (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const trace = deps.tracing!.request(req);
    deps.tracing!.upgrades.set(socket, trace);
    trace.gate(() => upgrade(req, socket, head));
  };

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const requestId = requestIdOf(req);
    const bad = handshakeProblem(req);
    if (bad) return reject(socket, requestId, bad.code, bad.message, bad.headers);
    const target = canonicalTarget(req.url ?? '/');
    if (isRefusal(target)) return reject(socket, requestId, 'malformed_request', target.refused);
    if (isManagement(target.path)) return reject(socket, requestId, 'malformed_request', 'The management API does not accept WebSocket upgrades.');
    const blocked = deps.failures.blockedFor(clientIpOf(req, deps.trustedProxies));
    if (blocked > 0) return reject(socket, requestId, 'too_many_failed_attempts', refusalMessage.too_many_failed_attempts, { 'Retry-After': String(blocked) });
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = deps.pipeline(req, target, 'upgrade');
    } catch (err) {
      return storeDown(socket, requestId, err);
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => afterPipeline(req, target, socket, head, requestId, o),
        (err: unknown) => storeDown(socket, requestId, err),
      );
    } else afterPipeline(req, target, socket, head, requestId, outcome);
  }

  return {
    handleUpgrade,
    get size() {
      return sessions.size;
    },
    onEvent: sessions.onEvent,
    onReset: sessions.onReset,
    closeAll: sessions.closeAll,
  };
}

export type WebSocketProxy = ReturnType<typeof createWebSocketProxy>;
