import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Outcome, Pipeline, Refusal } from '../auth/pipeline.ts';
import { statusOf, type Identity } from '../auth/verify.ts';
import type { KeyCache } from '../cache/key-cache.ts';
import type { Config } from '../config/schema.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { errorResponse, refusalMessage, type ErrorCode } from '../http/errors.ts';
import { isFailedAttempt } from '../limits/failures.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal, type Target } from '../http/target.ts';
import type { SessionSlots } from '../limits/sessions.ts';
import type { FailureBlock, RateLimits, RateVerdict } from '../limits/types.ts';
import { refusalOutcome, type Usage } from '../limits/usage.ts';
import { throttledWarn, type Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { StoreEvent } from '../store/types.ts';
import { forwardedHeaders, rateLimitedRefusal, rateLimitFields, type IdentityHeaderDeps } from './headers.ts';
import { isManagement } from './public-handler.ts';

// WebSocket (voice stream) proxying, SPEC §5: the upgrade passes the same pipeline before the upstream
// connection opens; frames are relayed by `ws` on both sides, so keygate can close a session cleanly with
// 1008 when its key is revoked, disabled or expires (and 1001 at shutdown).

interface Session {
  id: string;
  identity: Identity;
  client: WebSocket;
  upstream: WebSocket;
  /** ms since epoch when the key or the presented value stops being valid; null for never. */
  expiresAt: number | null;
}

const CLOSE_REASON: Partial<Record<ErrorCode, string>> = {
  invalid_api_key: 'key_revoked',
  key_disabled: 'key_disabled',
  key_expired: 'key_expired',
  tenant_suspended: 'tenant_suspended',
};

/** When a session must end: the key's expiry or the end of the presented value's rotation grace, whichever is first. */
function expiryOf(identity: Identity): number | null {
  const { expiresAt } = identity.key;
  const { hashExpiresAt } = identity;
  if (expiresAt === null) return hashExpiresAt;
  return hashExpiresAt === null ? expiresAt : Math.min(expiresAt, hashExpiresAt);
}

// Codes a peer may not send in a close frame (RFC 6455 §7.4.1) are mapped to sendable ones.
const sendable = (code: number): number => (code === 1005 ? 1000 : code === 1006 || code === 1015 || code < 1000 || code >= 5000 ? 1011 : code);

export interface WebSocketDeps extends IdentityHeaderDeps {
  pipeline: Pipeline;
  limits: RateLimits;
  failures: FailureBlock;
  slots: SessionSlots;
  cache: KeyCache;
  usage: Usage;
  plans: Config['plans'];
  upstreamUrl: string;
  timeoutMs: number;
  revalidateSeconds: number;
  metrics: Metrics;
  logger: Logger;
}

const DROP_HEADERS = ['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length'];

export function createWebSocketProxy(deps: WebSocketDeps) {
  const { metrics, logger } = deps;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sessions = new Map<string, Session>();
  const warnStoreDown = throttledWarn(logger, 'key store unavailable during a WebSocket upgrade');
  const upstreamBase = deps.upstreamUrl.replace(/^http/, 'ws').replace(/\/$/, '');

  /** Answers a refused upgrade on the raw socket with the same envelope as any HTTP error. */
  function reject(socket: Duplex, requestId: string, code: ErrorCode, message: string, headers: Record<string, string> = {}, tenantId: string | null = null): void {
    const res = errorResponse(requestId, code, message, { headers: { ...headers, Connection: 'close' } });
    const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status]}`, ...Object.entries(res.headers).map(([k, v]) => `${k}: ${v}`)];
    socket.end(`${lines.join('\r\n')}\r\n\r\n${res.body}`);
    metrics.decision(code, tenantId);
  }

  function refuse(req: IncomingMessage, socket: Duplex, requestId: string, r: Refusal, headers?: Record<string, string>): void {
    if (r.identity) deps.usage.record(r.identity.tenant.id, r.identity.key.id, refusalOutcome(r.code));
    else if (isFailedAttempt(r.code)) void deps.failures.fail(clientIpOf(req, deps.trustedProxies)).catch(() => {});
    reject(socket, requestId, r.code, r.message, { ...r.headers, ...headers }, r.identity?.tenant.id ?? null);
  }

  function close(session: Session, code: number, reason: string): void {
    if (!sessions.delete(session.id)) return;
    session.client.close(code, reason);
    session.upstream.close(code === 1008 ? 1000 : code, reason);
    setTimeout(() => {
      session.client.terminate();
      session.upstream.terminate();
    }, 2_000).unref();
  }

  function relay(session: Session): void {
    const { client, upstream, identity } = session;
    metrics.websockets.inc();
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
    });
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      sessions.delete(session.id);
      metrics.websockets.dec();
      void deps.slots.release(identity.tenant.id, identity.key.id, session.id).catch(() => {});
    };
    client.on('close', (code, reason) => {
      end();
      if (upstream.readyState === WebSocket.OPEN) upstream.close(sendable(code), reason);
    });
    upstream.on('close', (code, reason) => {
      end();
      if (client.readyState === WebSocket.OPEN) client.close(sendable(code), reason);
    });
    client.on('error', () => upstream.terminate());
    upstream.on('error', () => client.terminate());
  }

  function connect(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string, sessionId: string, identity: Identity, verdict: RateVerdict | null, canonical: Target): void {
    const target = upstreamBase + canonical.url;
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    // `ws` takes a header object and makes the handshake fields itself; repeated fields are joined.
    const fields = forwardedHeaders(req, identity, canonical.path, requestId, deps);
    const headers: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!.toLowerCase();
      if (!DROP_HEADERS.includes(name)) headers[name] = headers[name] === undefined ? fields[i + 1]! : `${headers[name]}, ${fields[i + 1]!}`;
    }
    const upstream = new WebSocket(target, protocols, { headers, perMessageDeflate: false, handshakeTimeout: deps.timeoutMs });
    let opened = false;
    const failed = (code: ErrorCode, message: string) => {
      if (opened) return;
      opened = true;
      metrics.upstreamErrors.inc({ kind: code === 'upstream_timeout' ? 'timeout' : 'refused' });
      void deps.slots.release(identity.tenant.id, identity.key.id, sessionId).catch(() => {});
      reject(socket, requestId, code, message);
    };
    upstream.once('unexpected-response', (_req, res) => {
      res.resume();
      failed('upstream_unavailable', `The upstream refused the WebSocket (${res.statusCode}).`);
    });
    upstream.once('error', (err: Error) => failed(/timed out/i.test(err.message) ? 'upstream_timeout' : 'upstream_unavailable', 'The upstream is unavailable.'));
    socket.once('close', () => {
      if (!opened) upstream.terminate();
    });
    upstream.once('open', () => {
      opened = true;
      const extra = verdict ? rateLimitFields(verdict, ['X-Request-Id', requestId]) : ['X-Request-Id', requestId];
      wss.once('headers', (lines: string[]) => {
        for (let i = 0; i < extra.length; i += 2) lines.push(`${extra[i]}: ${extra[i + 1]}`);
      });
      wss.handleUpgrade(req, socket, head, (client) => {
        const session: Session = { id: sessionId, identity, client, upstream, expiresAt: expiryOf(identity) };
        sessions.set(sessionId, session);
        relay(session);
      });
    });
  }

  function afterPipeline(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string, target: Target, outcome: Outcome): void {
    if (!outcome.ok) return refuse(req, socket, requestId, outcome);
    const identity = outcome.identity;
    const plan = deps.plans[identity.tenant.plan];
    void (async () => {
      const verdict = await deps.limits.consume(identity);
      if (verdict && !verdict.ok) {
        metrics.rateLimited.inc({ scope: verdict.scope });
        return refuse(req, socket, requestId, rateLimitedRefusal(verdict, identity));
      }
      const sessionId = randomUUID();
      const slot = await deps.slots.acquire(identity.tenant.id, identity.key.id, sessionId, identity.key.policy.maxConcurrentConnections, plan?.maxConcurrentConnections.max ?? null);
      if (slot !== 'ok') {
        metrics.rateLimited.inc({ scope: slot === 'key' ? 'key_connections' : 'tenant_connections' });
        return refuse(req, socket, requestId, { ok: false, code: 'concurrency_limit_reached', message: `Too many open sessions for this ${slot === 'key' ? 'API key' : 'tenant'}.`, identity }, { 'Retry-After': '1' });
      }
      deps.usage.record(identity.tenant.id, identity.key.id, 'allowed');
      metrics.decision('allowed', identity.tenant.id);
      connect(req, socket, head, requestId, sessionId, identity, verdict, target);
    })().catch((err: unknown) => {
      warnStoreDown({ err, requestId });
      reject(socket, requestId, 'store_unavailable', refusalMessage.store_unavailable);
    });
  }

  /** The public listener's 'upgrade' handler. */
  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const requestId = requestIdOf(req);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return reject(socket, requestId, 'malformed_request', 'Only WebSocket upgrades are supported.');
    const target = canonicalTarget(req.url ?? '/');
    if (isRefusal(target)) return reject(socket, requestId, 'malformed_request', target.refused);
    if (isManagement(target.path)) return reject(socket, requestId, 'malformed_request', 'The management API does not accept WebSocket upgrades.');
    const blocked = deps.failures.blockedFor(clientIpOf(req, deps.trustedProxies));
    if (blocked > 0) return reject(socket, requestId, 'too_many_failed_attempts', refusalMessage.too_many_failed_attempts, { 'Retry-After': String(blocked) });
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = deps.pipeline(req, target, 'upgrade');
    } catch {
      return reject(socket, requestId, 'store_unavailable', refusalMessage.store_unavailable);
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => afterPipeline(req, socket, head, requestId, target, o),
        () => reject(socket, requestId, 'store_unavailable', refusalMessage.store_unavailable),
      );
    } else afterPipeline(req, socket, head, requestId, target, outcome);
  }

  /** Re-checks sessions against the store (the cache entry was just evicted, so this reads fresh state). */
  async function revalidate(targets: Session[]): Promise<void> {
    await Promise.all(
      targets.map(async (s) => {
        try {
          const v = await deps.cache.get(s.identity.hash);
          const result = v ? statusOf(v, s.identity.credential, s.identity.hash, Date.now()) : { ok: false as const, code: 'invalid_api_key' as const };
          if (!result.ok) close(s, 1008, CLOSE_REASON[result.code] ?? 'key_revoked');
          else s.expiresAt = expiryOf(result);
        } catch {
          // Store unreachable: live sessions continue, as cached keys do (SPEC §8).
        }
      }),
    );
  }

  // Expiry is checked locally every second; the lease renewal and a slower store re-check run alongside.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const s of sessions.values()) if (s.expiresAt !== null && s.expiresAt <= now) close(s, 1008, 'key_expired');
  }, 1_000);
  ticker.unref();
  const renewer = setInterval(() => {
    const live = [...sessions.values()].map((s) => ({ tenantId: s.identity.tenant.id, keyId: s.identity.key.id, sessionId: s.id }));
    if (live.length) void deps.slots.renew(live).catch(() => {});
  }, 20_000);
  renewer.unref();
  const sweeper = setInterval(() => void revalidate([...sessions.values()]), deps.revalidateSeconds * 1000);
  sweeper.unref();

  return {
    handleUpgrade,
    get size() {
      return sessions.size;
    },
    /** Called for every store mutation event, after the cache has applied it. */
    onEvent(event: StoreEvent): void {
      const affected = [...sessions.values()].filter((s) =>
        event.kind === 'key' ? s.identity.key.id === event.keyId : s.identity.tenant.id === event.tenantId,
      );
      if (affected.length) void revalidate(affected);
    },
    onReset(): void {
      void revalidate([...sessions.values()]);
    },
    /** Shutdown: every session gets 1001 (going away). */
    closeAll(): void {
      clearInterval(ticker);
      clearInterval(renewer);
      clearInterval(sweeper);
      for (const s of [...sessions.values()]) close(s, 1001, 'shutting_down');
    },
  };
}

export type WebSocketProxy = ReturnType<typeof createWebSocketProxy>;
