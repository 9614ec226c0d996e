import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Grant, Pipeline, Refusal } from '../auth/pipeline.ts';
import type { Identity } from '../auth/verify.ts';
import type { KeyCache } from '../cache/key-cache.ts';
import type { Config } from '../config/schema.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { codeToStatus, errorResponse, type ErrorCode } from '../http/errors.ts';
import { STATUS_CODES } from '../http/node-http.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal, type Target } from '../http/target.ts';
import type { SessionMeter, SessionQuota } from '../limits/session-quota.ts';
import type { SessionSlots, SlotResult } from '../limits/sessions.ts';
import type { AccessLog, SessionLog } from '../ops/logger.ts';
import type { SessionTrace, Tracing } from '../ops/tracing.ts';
import { createGate, millis, userAgentOf, type GateDeps } from '../decision/gate.ts';
import { forwardedHeaders, type IdentityHeaderDeps } from '../decision/headers.ts';
import { RequestScope } from '../decision/scope.ts';
import { isManagement } from './public-handler.ts';
import { answeredSubprotocol, forwardedSubprotocols, handshakeProblem } from './ws-handshake.ts';
import { createSessions, expiryOf, type SessionEnd } from './ws-sessions.ts';
import type { TlsMaterial } from '../config/tls-files.ts';
import { Handshake } from './ws-splice.ts';

// WebSocket (voice stream) proxying: the client's handshake is checked, then the upgrade is a door of the one
// decision (decision/gate.ts: IP block, pipeline, failed attempts, rate limits, the store-down answer), whose
// admission for this door takes a session slot and session minutes; only then is the upstream dialled, with
// the head the removal rule leaves (decision/strip.ts). `ws` completes both handshakes and hands the two
// connections over (ws-splice.ts `Handshake`); the session then lives in ws-sessions.ts, its frames relayed as
// they came (ws-splice.ts). Messages are capped at `websocket.maxPayloadBytes` on both sides.

/** Why a dial ended before the session started: the client's answer and the metric's kind; null when the client left. */
type DialFailure = { code: ErrorCode; message: string; kind: 'refused' | 'timeout' | 'other' } | null;

export interface WebSocketDeps extends IdentityHeaderDeps, GateDeps {
  pipeline: Pipeline;
  slots: SessionSlots;
  /** Session minutes per month. */
  sessionQuota: SessionQuota;
  cache: KeyCache;
  plans: Config['plans'];
  upstreamUrl: string;
  timeoutMs: number;
  revalidateSeconds: number;
  /** Largest message either side may send. */
  maxPayloadBytes: number;
  /** How a wss:// upstream is dialled, as requests dial an https one (config/tls-files.ts). */
  upstreamTls: TlsMaterial;
  /** A silent side is pinged after this long, and taken for gone after the idle timeout (ws-splice.ts). */
  pingIntervalSeconds: number;
  idleTimeoutSeconds: number;
  /** OpenTelemetry tracing (ops/tracing.ts), or null when it is off. */
  tracing: Tracing | null;
  /** The upgrade's access line, and its session's line when the session ends (docs/logging.md). */
  access: AccessLog;
  sessionLog: SessionLog;
}

/** The socket an upgrade is answered on, and what its admission took (released if the dial never completes). */
interface Upgrade {
  socket: Duplex;
  head: Buffer;
  sessionId: string;
  meter: SessionMeter | null;
}

// (Host stays: forwardedHeaders sets the one the upstream receives, the same as on a proxied request.)
const DROP_HEADERS = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length'];

export function createWebSocketProxy(deps: WebSocketDeps) {
  const { metrics, logger, maxPayloadBytes } = deps;
  // What the client's 101 carries, looked up by request (`ws` passes it): X-Request-Id, RateLimit-*, and the
  // subprotocol the upstream chose (not `ws`'s default, the client's first offer, which may differ).
  const upgrading = new WeakMap<IncomingMessage, { requestId: string; fields: string[]; protocol: string }>();
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false, // the session, not `ws`, holds the connection
    WebSocket: Handshake,
    perMessageDeflate: false,
    maxPayload: maxPayloadBytes,
    handleProtocols: (_offered, req) => upgrading.get(req)?.protocol || false,
  });
  const sessions = createSessions(deps);
  // Each upgrade's scope and request until it is answered (on the socket, where `reject` and the 101 find it):
  // its access line is written then, once.
  const answering = new WeakMap<Duplex, { scope: RequestScope; req: IncomingMessage }>();

  /** The upgrade's access line: the 101 (`code` null), a refusal with its code, or status 0 when the client left first. */
  function answered(socket: Duplex, status: number, code: ErrorCode | null, responseBytes: number): void {
    const pending = answering.get(socket);
    if (pending === undefined) return;
    answering.delete(socket);
    const { scope, req } = pending;
    const ms = performance.now() - scope.started;
    const trace = deps.tracing?.upgrades.get(socket);
    deps.access({
      requestId: scope.requestId,
      method: req.method ?? 'GET',
      path: scope.target?.path ?? '(refused)',
      status,
      durationMs: millis(ms),
      keygateMs: millis(scope.forwardedAt > 0 ? scope.forwardedAt - scope.started : ms),
      upstreamStatus: scope.upstreamStatus,
      upstreamMs: scope.upstreamSeconds === null ? null : millis(scope.upstreamSeconds * 1000),
      clientIp: scope.clientIp || (req.socket.remoteAddress ?? ''),
      userAgent: userAgentOf(req),
      requestBytes: 0,
      responseBytes,
      tenantId: scope.tenantId,
      keyId: scope.keyId,
      decision: code === null ? 'allowed' : codeToStatus[code] >= 500 ? 'failed' : 'refused',
      code,
      upgrade: 'websocket',
      ...(trace === undefined ? {} : { trace_id: trace.traceId, span_id: trace.spanId }),
    });
  }
  const upstreamBase = deps.upstreamUrl.replace(/^http/, 'ws').replace(/\/$/, '');
  wss.on('headers', (lines: string[], req: IncomingMessage) => {
    const fields = upgrading.get(req)?.fields ?? [];
    for (let i = 0; i < fields.length; i += 2) lines.push(`${fields[i]}: ${fields[i + 1]}`);
  });
  // handshakeProblem() refuses whatever `ws` would; should `ws` refuse anyway, the answer is the envelope too
  // (and the socket's close ends the dial).
  wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => refuseUnread(socket, upgrading.get(req)?.requestId ?? requestIdOf(req), 'malformed_request', err.message));

  /** Answers a refused upgrade on the raw socket with the same envelope as any HTTP error. */
  function reject(socket: Duplex, requestId: string, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
    const res = errorResponse(requestId, code, message, { headers: { ...headers, Connection: 'close' } });
    const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status]}`, ...Object.entries(res.headers).map(([k, v]) => `${k}: ${v}`)];
    if (!socket.destroyed) socket.end(`${lines.join('\r\n')}\r\n\r\n${res.body}`);
    const trace = deps.tracing?.upgrades.get(socket);
    if (trace) {
      trace.decided(code, null, null);
      trace.end(res.status, code, null, 'upgrade', '');
    }
    answered(socket, res.status, code, Buffer.byteLength(res.body));
  }

  /** A refusal before the decision (a handshake or target keygate cannot take) or after it (the dial failed). */
  function refuseUnread(socket: Duplex, requestId: string, code: ErrorCode, message: string, headers?: Record<string, string>): void {
    reject(socket, requestId, code, message, headers);
    metrics.decision(code);
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
   * The session's close line and span. Made here, not in `dial`: a closure there would keep the dial's whole scope
   * (the request, its headers, the decision's scope) for the session's life.
   */
  function sessionEnded(opened: { requestId: string; path: string; clientIp: string; tenantId: string; keyId: string }, ids: { trace_id?: string; span_id?: string }, sessionTrace: SessionTrace | null): (e: SessionEnd) => void {
    return (e) => {
      deps.sessionLog({
        ...opened,
        durationMs: e.durationMs,
        closeCode: e.closeCode,
        closeReason: e.closeReason,
        closedBy: e.closedBy,
        clientMessages: e.client.messages,
        clientBytes: e.client.bytes,
        upstreamMessages: e.upstream.messages,
        upstreamBytes: e.upstream.bytes,
        ...ids,
      });
      sessionTrace?.end(e.closeCode, e.closeReason, e.client, e.upstream);
    };
  }

  /**
   * Opens the upstream WebSocket, then completes the client's handshake. Every way this can end before the
   * session starts (the dial throwing, the upstream refusing or timing out, the client leaving, `ws` not
   * completing the handshake) goes through `fail`: the upstream socket closed, the slot released, once.
   */
  function dial(req: IncomingMessage, target: Target, up: Upgrade, scope: RequestScope, identity: Identity): void {
    const { socket, head, sessionId, meter } = up;
    const requestId = scope.requestId;
    const releaseSlot = slotLease(identity, sessionId);
    // The slot, and the session time reserved and not used (SessionMeter.close is once, too).
    const release = () => {
      releaseSlot();
      meter?.close(Date.now());
    };
    let upstream: Handshake | null = null;
    let deadline: NodeJS.Timeout | undefined;
    let done = false;
    const fail = (why: DialFailure): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      socket.off('end', left).off('close', left);
      upstream?.terminate();
      release();
      if (why === null) {
        deps.tracing?.upgrades.get(socket)?.end(0, null, target.path, 'upgrade', scope.clientIp);
        return answered(socket, 0, null, 0);
      }
      metrics.upstreamErrors.inc({ kind: why.kind });
      refuseUnread(socket, requestId, why.code, why.message);
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
      scope.forwardedAt = performance.now();
      const dialled = new Handshake(upstreamBase + target.url, forwardedSubprotocols(req, deps.keyPrefixes), {
        headers,
        perMessageDeflate: false,
        maxPayload: maxPayloadBytes,
        ...deps.upstreamTls,
      });
      upstream = dialled;
      const headAt = (status: number) => {
        scope.upstreamStatus = status;
        scope.upstreamSeconds = (performance.now() - scope.forwardedAt) / 1000;
      };
      // The handshake's deadline is a timer of its own, not `ws`'s handshakeTimeout: that one is a timeout on the
      // socket, which Node keeps (cleared) for the socket's life and refreshes on every read and write of the
      // session after it (bench/README.md, "Voice relay").
      deadline = setTimeout(() => fail({ code: 'upstream_timeout', message: 'The upstream did not accept the WebSocket in time.', kind: 'timeout' }), deps.timeoutMs).unref();
      dialled.once('unexpected-response', (_req, res) => {
        headAt(res.statusCode ?? 0);
        res.resume();
        fail(unavailable('refused', `The upstream refused the WebSocket (${res.statusCode}).`));
      });
      // Kept until the session starts (which has its own): terminating a dial emits one more 'error'.
      const dialError = () => fail(unavailable('refused'));
      dialled.on('error', dialError);
      dialled.once('open', () => {
        headAt(101);
        clearTimeout(deadline);
        upgrading.set(req, { requestId, fields: scope.responseHeaders, protocol: answeredSubprotocol(dialled.protocol, req) });
        try {
          wss.handleUpgrade(req, socket, head, (client) => {
            done = true;
            upgrading.delete(req);
            socket.off('end', left).off('close', left);
            // Nothing of the dial stays reachable from the session: these listeners hold its whole scope (the
            // request, its headers, the decision's scope).
            dialled.off('error', dialError).removeAllListeners('unexpected-response');
            const trace = deps.tracing?.upgrades.get(socket);
            const sessionTrace = trace ? deps.tracing!.session(trace) : null;
            const ids = trace === undefined ? {} : { trace_id: trace.traceId, span_id: trace.spanId };
            const ended = sessionEnded({ requestId, path: target.path, clientIp: scope.clientIp, tenantId: identity.tenant.id, keyId: identity.key.id }, ids, sessionTrace);
            sessions.start({ id: sessionId, head: { method: req.method, headers: req.headers, socket: req.socket }, target, identity, client: (client as Handshake).taken!, upstream: dialled.taken!, expiresAt: expiryOf(identity), meter, ended });
            if (trace) {
              trace.decided('allowed', identity.tenant.id, identity.key.id);
              trace.upstreamHead(101);
              trace.end(101, null, target.path, 'upgrade', scope.clientIp);
            }
            answered(socket, 101, null, 0);
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

  /**
   * This door's admission, after the rate limits: a session slot, then session minutes. A refusal gives the slot
   * back; a store failure after the slot was taken does too (the store may have taken it before failing to answer).
   */
  async function admit(grant: Grant, scope: RequestScope, up: Upgrade): Promise<Refusal | null> {
    const { identity } = grant;
    const plan = deps.plans[identity.tenant.plan];
    try {
      const slot: SlotResult = await deps.slots.acquire(identity.tenant.id, identity.key.id, up.sessionId, identity.key.policy.maxConcurrentConnections, plan?.maxConcurrentConnections.max ?? null);
      if (slot !== 'ok') {
        metrics.rateLimited.inc({ scope: slot === 'key' ? 'key_connections' : 'tenant_connections' });
        return { ok: false, code: 'concurrency_limit_reached', message: `Too many open sessions for this ${slot === 'key' ? 'API key' : 'tenant'}.`, identity, headers: { 'Retry-After': '1' } };
      }
      const opened = await deps.sessionQuota.open(identity, up.sessionId);
      if (opened && 'refused' in opened) {
        slotLease(identity, up.sessionId)();
        metrics.rateLimited.inc({ scope: `${opened.scope}_quota` });
        const whose = opened.scope === 'key' ? 'API key' : 'tenant';
        const message = `Monthly session minutes used up for this ${whose}; they renew when the month (UTC) ends.`;
        return { ok: false, code: 'quota_exceeded', message, identity, headers: { 'Retry-After': String(opened.retryAfterSeconds) } };
      }
      up.meter = opened;
      return null;
    } catch (err) {
      slotLease(identity, up.sessionId)();
      throw err;
    }
  }

  /** The upgrade passed the decision: usage counted, then the dial. */
  function pass(req: IncomingMessage, up: Upgrade, scope: RequestScope, grant: Grant): void {
    const { identity } = grant;
    try {
      deps.usage.record(identity.tenant.id, identity.key.id, 'allowed');
      dial(req, scope.target!, up, scope, identity);
    } catch (err) {
      slotLease(identity, up.sessionId)(); // whatever fails between the slot and the dial gives the slot back
      logger.error({ err, requestId: scope.requestId }, 'WebSocket upgrade failed');
      up.socket.destroy();
    }
  }

  const gate = createGate<Upgrade>(deps, {
    pass,
    send: (_req, up, scope, code, message, headers) => reject(up.socket, scope.requestId, code, message, headers),
    admit: (grant, scope, _req, up) => admit(grant, scope, up),
  });

  /**
   * The public listener's 'upgrade' handler. Traced, the handshake is a span (ended where the upgrade is answered,
   * on the socket) and the decision runs under it, so its store round trips are its children (the scope carries
   * no trace of its own: the gate would open a second span).
   */
  const handleUpgrade = deps.tracing === null ? upgrade : (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const trace = deps.tracing!.request(req);
    deps.tracing!.upgrades.set(socket, trace);
    trace.gate(() => upgrade(req, socket, head));
  };

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const requestId = requestIdOf(req);
    const scope = new RequestScope(requestId);
    scope.door = 'upgrade';
    scope.clientIp = clientIpOf(req, deps.trustedProxies);
    answering.set(socket, { scope, req });
    const bad = handshakeProblem(req);
    if (bad) return refuseUnread(socket, requestId, bad.code, bad.message, bad.headers);
    const target = canonicalTarget(req.url ?? '/');
    if (isRefusal(target)) return refuseUnread(socket, requestId, 'malformed_request', target.refused);
    if (isManagement(target.path)) return refuseUnread(socket, requestId, 'malformed_request', 'The management API does not accept WebSocket upgrades.');
    scope.target = target;
    gate.enter(req, { socket, head, sessionId: randomUUID(), meter: null }, scope);
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
