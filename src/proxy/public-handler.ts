import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerPreflight, isPreflight } from '../auth/origin.ts';
import type { Door, Grant, Outcome, Pipeline, Refusal } from '../auth/pipeline.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { refusalMessage, sendError } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal } from '../http/target.ts';
import { isFailedAttempt } from '../limits/failures.ts';
import type { FailureBlock, RateLimits, RateVerdict } from '../limits/types.ts';
import { refusalOutcome, type Usage } from '../limits/usage.ts';
import { throttledWarn, type AccessLog, type Logger } from '../ops/logger.ts';
import type { DecisionListener, Metrics } from '../ops/metrics.ts';
import { declaresBody } from './body.ts';
import type { Forwarder } from './forward.ts';
import { forwardedHeaders, rateLimitedRefusal, type IdentityHeaderDeps } from './headers.ts';
import { RequestScope } from './scope.ts';

export const MANAGEMENT_PREFIX = '/keygate/v1';
/** The one management resource that needs no key: the API's own description. */
const OPENAPI_PATH = `${MANAGEMENT_PREFIX}/openapi.json`;

/** keygate_auth_decisions_total's listener: the gate counts /keygate/v1 apart from the proxy. */
const decidedAt = (scope: RequestScope): DecisionListener => (scope.door === 'management' ? 'management' : 'public');

/** Whether a canonical path is the management API's (http/target.ts). */
export const isManagement = (path: string): boolean =>
  path.startsWith(MANAGEMENT_PREFIX) && (path.length === MANAGEMENT_PREFIX.length || path[MANAGEMENT_PREFIX.length] === '/');

export interface PublicHandlerDeps extends IdentityHeaderDeps {
  /** The Express app serving `/keygate/v1`, entered only through the gate: `res.locals.identity` is the caller. */
  management: (req: IncomingMessage, res: ServerResponse) => void;
  /** How long a management request's body may take to arrive once it has passed the gate (408 after). */
  managementBodyTimeoutMs: number;
  pipeline: Pipeline;
  limits: RateLimits;
  failures: FailureBlock;
  usage: Usage;
  forwarder: Forwarder;
  metrics: Metrics;
  logger: Logger;
  access: AccessLog;
}

/**
 * The public listener's request handler: one gate for both doors (SPEC §3, §5). Every request takes the same
 * straight line — request id → canonical target → preflight → IP block → pipeline → rate limits — and only then
 * is forwarded (the proxy) or handed to Express (`/keygate/v1`), so no check exists on one door and not on the
 * other, and an unauthenticated request is answered before its body is read. A cache hit with a live
 * rate-limit lease runs it synchronously, without a promise.
 */
export function createPublicHandler(deps: PublicHandlerDeps) {
  const { pipeline, limits, failures, usage, forwarder, metrics, logger, access } = deps;
  const requestDuration = metrics.requestDuration.series('public');
  const authDuration = metrics.authDuration;
  const warnStoreDown = throttledWarn(logger, 'key store unavailable during authentication');

  function record(req: IncomingMessage, res: ServerResponse, scope: RequestScope): void {
    const seconds = (performance.now() - scope.started) / 1000;
    metrics.countRequest('public', req.method ?? 'GET', res.statusCode, scope.tenantId);
    requestDuration.observe(seconds);
    access({
      requestId: scope.requestId,
      method: req.method ?? 'GET',
      path: scope.target?.path ?? '(refused)',
      status: res.statusCode,
      durationMs: Math.round(seconds * 1e6) / 1e3,
      upstreamMs: scope.upstreamSeconds === null ? null : Math.round(scope.upstreamSeconds * 1e6) / 1e3,
      tenantId: scope.tenantId,
      keyId: scope.keyId,
      decision: scope.decision,
    });
  }

  function refuse(req: IncomingMessage, res: ServerResponse, scope: RequestScope, r: Refusal, headers?: Record<string, string>): void {
    authDuration.observe((performance.now() - scope.started) / 1000);
    scope.decision = r.code;
    if (r.identity) {
      scope.tenantId = r.identity.tenant.id;
      scope.keyId = r.identity.key.id;
      // Usage counts what the key asked of the upstream; management calls are not part of it.
      if (scope.door !== 'management') usage.record(r.identity.tenant.id, r.identity.key.id, refusalOutcome(r.code));
    }
    metrics.decision(r.code, scope.tenantId, decidedAt(scope));
    // An unread body (a refused upload) cannot be left in the connection; a request without one keeps it.
    if (!req.readableEnded && declaresBody(req)) res.setHeader('Connection', 'close');
    const send = () => sendError(res, scope.requestId, r.code, r.message, { headers: { ...r.headers, ...headers } });
    // A failed authentication is counted before it is answered, so the attempt that reaches the threshold
    // is the last one let through.
    if (!r.identity && isFailedAttempt(r.code)) failures.fail(clientIpOf(req, deps.trustedProxies)).then(send, send);
    else send();
  }

  function forward(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant): void {
    const { identity } = grant;
    usage.record(identity.tenant.id, identity.key.id, 'allowed');
    const headers = forwardedHeaders(req, identity, scope.target!.path, scope.requestId, deps);
    authDuration.observe((performance.now() - scope.started) / 1000);
    forwarder.forward(req, res, scope, headers, grant.body);
  }

  /**
   * Hands a request that passed the gate (or needs none: `grant` null) to Express, with keygate's own response
   * fields set, the canonical target as its URL, and a deadline for its body (a slow upload holds a socket and a
   * parser; the proxy's long streams have no such limit).
   */
  function manage(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant | null): void {
    const fields = scope.responseHeaders;
    for (let i = 0; i < fields.length; i += 2) res.setHeader(fields[i]!, fields[i + 1]!);
    (res as ServerResponse & { locals: object }).locals = { requestId: scope.requestId, identity: grant?.identity ?? null };
    req.url = scope.target!.url;
    if (!req.readableEnded && declaresBody(req)) {
      const deadline = setTimeout(() => {
        if (req.complete) return;
        scope.decision = 'request_timeout';
        res.once('finish', () => req.socket.destroy());
        sendError(res, scope.requestId, 'request_timeout', 'The request body did not arrive in time.', { headers: { Connection: 'close' } });
      }, deps.managementBodyTimeoutMs);
      deadline.unref();
      res.once('close', () => clearTimeout(deadline));
    }
    deps.management(req, res);
  }

  function pass(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant, verdict: RateVerdict | null): void {
    scope.decision = 'allowed';
    metrics.decision('allowed', scope.tenantId, decidedAt(scope));
    if (verdict) scope.addRateLimit(verdict);
    const origin = req.headers.origin;
    if (origin !== undefined) scope.addCors(origin);
    if (scope.door === 'management') manage(req, res, scope, grant);
    else forward(req, res, scope, grant);
  }

  function applyVerdict(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant, v: RateVerdict | null): void {
    if (v && !v.ok) {
      metrics.rateLimited.inc({ scope: v.scope });
      return refuse(req, res, scope, rateLimitedRefusal(v, grant.identity));
    }
    // The tenant's plan maxInFlight (SPEC §5) counts upstream requests: management calls hold none.
    const busy = scope.door === 'proxy' ? forwarder.busy(grant.identity) : null;
    if (busy) return refuse(req, res, scope, busy);
    pass(req, res, scope, grant, v);
  }

  function limit(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant): void {
    scope.tenantId = grant.identity.tenant.id;
    scope.keyId = grant.identity.key.id;
    // Monthly quotas count what a key asks of the upstream (as usage does): management requests are not charged.
    const verdict = limits.consume(grant.identity, scope.door !== 'management');
    // Synchronous whenever the key's rate-limit and quota leases are live (the common case): no closure, no promise.
    if (!(verdict instanceof Promise)) return applyVerdict(req, res, scope, grant, verdict);
    verdict.then((v) => applyVerdict(req, res, scope, grant, v), (err: unknown) => storeDown(res, scope, err));
  }

  function decide(req: IncomingMessage, res: ServerResponse, scope: RequestScope, outcome: Outcome): void {
    if (!outcome.ok) return refuse(req, res, scope, outcome);
    limit(req, res, scope, outcome);
  }

  function storeDown(res: ServerResponse, scope: RequestScope, err: unknown): void {
    scope.decision = 'store_unavailable';
    metrics.decision('store_unavailable', null, decidedAt(scope));
    warnStoreDown({ err, requestId: scope.requestId });
    sendError(res, scope.requestId, 'store_unavailable', refusalMessage.store_unavailable);
  }

  return function handlePublic(req: IncomingMessage, res: ServerResponse): void {
    const scope = new RequestScope(requestIdOf(req));
    res.on('close', () => {
      if (!res.writableFinished) scope.upstream?.cancel(); // the client left first: so does the upstream request
      record(req, res, scope);
    });
    const target = canonicalTarget(req.url ?? '/');
    if (isRefusal(target)) return refuse(req, res, scope, { ok: false, code: 'malformed_request', message: target.refused });
    scope.target = target;
    const door: Door = isManagement(target.path) ? 'management' : 'proxy';
    scope.door = door;
    if (isPreflight(req)) {
      scope.decision = 'preflight';
      return answerPreflight(req, res, scope.requestId);
    }
    if (door === 'management' && target.path === OPENAPI_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      scope.decision = 'open';
      return manage(req, res, scope, null);
    }
    const blocked = failures.blockedFor(clientIpOf(req, deps.trustedProxies));
    if (blocked > 0) {
      return refuse(req, res, scope, { ok: false, code: 'too_many_failed_attempts', message: refusalMessage.too_many_failed_attempts }, { 'Retry-After': String(blocked) });
    }
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = pipeline(req, target, door);
    } catch (err) {
      return storeDown(res, scope, err);
    }
    if (outcome instanceof Promise) outcome.then((o) => decide(req, res, scope, o), (err: unknown) => storeDown(res, scope, err));
    else decide(req, res, scope, outcome);
  };
}
