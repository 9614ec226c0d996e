import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Door, Grant, Outcome, Refusal } from '../auth/pipeline.ts';
import { answeredCode, codeToStatus, refusalMessage, type ErrorCode } from '../http/errors.ts';
import type { Target } from '../http/target.ts';
import { isFailedAttempt } from '../limits/failures.ts';
import type { FailureBlock, RateLimits, RateVerdict } from '../limits/types.ts';
import { refusalOutcome, type Usage } from '../limits/usage.ts';
import { throttledWarn, type AccessLog, type Logger } from '../ops/logger.ts';
import type { DecisionListener, Metrics } from '../ops/metrics.ts';
import { rateLimitedRefusal } from './headers.ts';
import type { RequestScope } from './scope.ts';

// The gate: IP block → pipeline → rate limits → the door's own admission, with usage, metrics and failed-attempt
// counting, as one straight line that every door enters once it knows the request's canonical method and
// target, door and client address. Doors differ only in what they do at its two exits and in what they admit
// after the limits (the proxy: the tenant's upstream requests in flight; the WebSocket upgrade: a session slot
// and session minutes): the proxy forwards, the management API hands the request to Express, the upgrade dials
// the upstream, the authorizer (src/authz/) answers the gateway that asked. What reaches the upstream is the
// removal rule's (decision/strip.ts), the same on every door. A cache hit with a live rate-limit lease runs it
// synchronously, without a promise.

export interface GateDeps {
  /** The checks of auth/pipeline.ts (steps 4–11); throws only when the store is unavailable. */
  pipeline: (req: IncomingMessage, target: Target, door: Door) => Outcome | Promise<Outcome>;
  limits: RateLimits;
  failures: FailureBlock;
  usage: Usage;
  metrics: Metrics;
  logger: Logger;
}

/**
 * What a door admits once the key is within its rate limits (the tenant's upstream requests in flight on the
 * proxy; a session slot and session minutes on the upgrade): a refusal, or null to pass. A promise only when
 * it must ask the store, whose failure is answered as the store being down.
 */
export type Admit<R> = (grant: Grant, scope: RequestScope, req: IncomingMessage, res: R) => Refusal | null | Promise<Refusal | null>;

/** keygate_auth_decisions_total's listener: /keygate/v1 and the authorizer are counted apart from the proxy. */
const LISTENER_OF: Record<Door, DecisionListener> = { proxy: 'public', upgrade: 'public', management: 'management', check: 'authz' };

/** What a door does with a decided request; `R` is what it answers on (a response, or an upgrade's socket). */
export interface GateExits<R> {
  /** The request passed; keygate's own response fields (X-Request-Id, RateLimit-*, CORS) are in `scope.responseHeaders`. */
  pass(req: IncomingMessage, res: R, scope: RequestScope, grant: Grant): void;
  /** Answers a refusal with the JSON envelope (http/errors.ts); `headers` are the refusal's own fields. */
  send(req: IncomingMessage, res: R, scope: RequestScope, code: ErrorCode, message: string, headers?: Record<string, string>): void;
  admit?: Admit<R>;
}

export function createGate<R = ServerResponse>(deps: GateDeps, exits: GateExits<R>) {
  const { pipeline, limits, failures, usage, metrics } = deps;
  const admit = exits.admit ?? null;
  const authDuration = metrics.authDuration;
  const warnStoreDown = throttledWarn(deps.logger, 'key store unavailable during authentication');

  function refuse(req: IncomingMessage, res: R, scope: RequestScope, r: Refusal, headers?: Record<string, string>): void {
    authDuration.observe((performance.now() - scope.started) / 1000);
    scope.decision = r.code;
    scope.trace?.decided(r.code, r.identity?.tenant.id ?? null, r.identity?.key.id ?? null);
    if (r.identity) {
      scope.tenantId = r.identity.tenant.id;
      scope.keyId = r.identity.key.id;
      // Usage counts what the key asked of the upstream; management calls are not part of it.
      if (scope.door !== 'management') usage.record(r.identity.tenant.id, r.identity.key.id, refusalOutcome(r.code), r.code);
    }
    metrics.decision(r.code, scope.tenantId, LISTENER_OF[scope.door]);
    const send = () => exits.send(req, res, scope, r.code, r.message, { ...r.headers, ...headers });
    // A failed authentication is counted before it is answered, so the attempt that reaches the threshold
    // is the last one let through.
    if (!r.identity && isFailedAttempt(r.code)) failures.fail(scope.clientIp).then(send, send);
    else send();
  }

  function storeDown(req: IncomingMessage, res: R, scope: RequestScope, err: unknown): void {
    scope.decision = 'store_unavailable';
    scope.trace?.decided('store_unavailable', null, null);
    metrics.decision('store_unavailable', null, LISTENER_OF[scope.door]);
    warnStoreDown({ err, requestId: scope.requestId, door: scope.door });
    exits.send(req, res, scope, 'store_unavailable', refusalMessage.store_unavailable);
  }

  function pass(req: IncomingMessage, res: R, scope: RequestScope, grant: Grant, verdict: RateVerdict | null): void {
    scope.decision = 'allowed';
    scope.trace?.decided('allowed', scope.tenantId, scope.keyId);
    metrics.decision('allowed', scope.tenantId, LISTENER_OF[scope.door]);
    if (verdict) scope.addRateLimit(verdict);
    const origin = req.headers.origin;
    if (origin !== undefined) scope.addCors(origin);
    exits.pass(req, res, scope, grant);
  }

  function applyVerdict(req: IncomingMessage, res: R, scope: RequestScope, grant: Grant, v: RateVerdict | null): void {
    if (v && !v.ok) {
      metrics.rateLimited.inc({ scope: v.scope });
      return refuse(req, res, scope, rateLimitedRefusal(v, grant.identity));
    }
    const admitted = admit === null ? null : admit(grant, scope, req, res);
    if (admitted === null) return pass(req, res, scope, grant, v);
    if (!(admitted instanceof Promise)) return refuse(req, res, scope, admitted);
    admitted.then(
      (r) => (r === null ? pass(req, res, scope, grant, v) : refuse(req, res, scope, r)),
      (err: unknown) => storeDown(req, res, scope, err),
    );
  }

  function limit(req: IncomingMessage, res: R, scope: RequestScope, grant: Grant): void {
    scope.tenantId = grant.identity.tenant.id;
    scope.keyId = grant.identity.key.id;
    // Monthly quotas count what a key asks of the upstream (as usage does): management requests are not charged.
    const verdict = limits.consume(grant.identity, scope.door !== 'management');
    // Synchronous whenever the key's rate-limit and quota leases are live (the common case): no closure, no promise.
    if (!(verdict instanceof Promise)) return applyVerdict(req, res, scope, grant, verdict);
    verdict.then((v) => applyVerdict(req, res, scope, grant, v), (err: unknown) => storeDown(req, res, scope, err));
  }

  function decide(req: IncomingMessage, res: R, scope: RequestScope, outcome: Outcome): void {
    if (!outcome.ok) return refuse(req, res, scope, outcome);
    limit(req, res, scope, outcome);
  }

  /** Runs the gate for a request whose `scope.target`, `scope.door` and `scope.clientIp` are set. */
  function enter(req: IncomingMessage, res: R, scope: RequestScope): void {
    // Traced, the gate runs under its own span, so the store round trips it makes are that span's children.
    if (scope.trace) scope.trace.gate(() => run(req, res, scope));
    else run(req, res, scope);
  }

  function run(req: IncomingMessage, res: R, scope: RequestScope): void {
    const blocked = failures.blockedFor(scope.clientIp);
    if (blocked > 0) {
      return refuse(req, res, scope, { ok: false, code: 'too_many_failed_attempts', message: refusalMessage.too_many_failed_attempts }, { 'Retry-After': String(blocked) });
    }
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = pipeline(req, scope.target!, scope.door);
    } catch (err) {
      return storeDown(req, res, scope, err);
    }
    if (outcome instanceof Promise) outcome.then((o) => decide(req, res, scope, o), (err: unknown) => storeDown(req, res, scope, err));
    else decide(req, res, scope, outcome);
  }

  return { enter, refuse };
}

export type Gate<R = ServerResponse> = ReturnType<typeof createGate<R>>;

/** The access line and request metrics of a listener's requests, written when the response closes. */
export function createRecorder(listener: 'public' | 'authz', metrics: Metrics, access: AccessLog) {
  const requestDuration = metrics.requestDuration.series(listener);
  return function record(req: IncomingMessage, res: ServerResponse, scope: RequestScope): void {
    const ms = performance.now() - scope.started;
    const status = res.statusCode;
    const trace = scope.trace;
    metrics.countRequest(listener, req.method ?? 'GET', status, scope.tenantId);
    if (trace !== null && trace.sampled) requestDuration.observeWithExemplar(ms / 1000, trace.traceId, trace.spanId);
    else requestDuration.observe(ms / 1000);
    const code = answeredCode(res) ?? (scope.decision in codeToStatus ? (scope.decision as ErrorCode) : null);
    trace?.end(res.writableFinished ? status : 0, code, scope.target?.path ?? null, scope.door, scope.clientIp);
    const forwarded = scope.forwardedAt > 0;
    access({
      requestId: scope.requestId,
      method: req.method ?? 'GET',
      path: scope.target?.path ?? '(refused)',
      status,
      durationMs: millis(ms),
      keygateMs: millis(forwarded ? scope.forwardedAt - scope.started : ms),
      upstreamStatus: scope.upstreamStatus,
      upstreamMs: scope.upstreamSeconds === null ? null : millis(scope.upstreamSeconds * 1000),
      clientIp: scope.clientIp || (req.socket.remoteAddress ?? ''),
      userAgent: userAgentOf(req),
      requestBytes: forwarded ? scope.requestBytes : bodyBytesRead(req),
      responseBytes: forwarded ? scope.responseBytes : req.method === 'HEAD' ? 0 : Number(res.getHeader('content-length') ?? 0),
      tenantId: scope.tenantId,
      keyId: scope.keyId,
      decision: code === null ? scope.decision : codeToStatus[code] >= 500 ? 'failed' : 'refused',
      code,
      ...(listener === 'authz' ? { listener } : {}),
      ...(trace === null ? {} : { trace_id: trace.traceId, span_id: trace.spanId }),
    });
  };
}

/** User agents are cut to this many characters on the access line (a header may be 16 KiB). */
const MAX_USER_AGENT = 256;
/** The request's user agent as access lines carry it: cut, or null without one. */
export function userAgentOf(req: IncomingMessage): string | null {
  const agent = req.headers['user-agent'];
  return agent === undefined ? null : agent.length > MAX_USER_AGENT ? agent.slice(0, MAX_USER_AGENT) : agent;
}
/** Milliseconds as access lines carry them: to the microsecond. */
export const millis = (ms: number): number => Math.round(ms * 1e3) / 1e3;
/** A body keygate read itself (management requests): its declared length; an unread one (a refusal) counts 0. */
const bodyBytesRead = (req: IncomingMessage): number => (req.readableEnded ? Number(req.headers['content-length'] ?? 0) || 0 : 0);
