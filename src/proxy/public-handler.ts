import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerPreflight, isPreflight } from '../auth/origin.ts';
import type { Grant, Outcome, Pipeline, Refusal } from '../auth/pipeline.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { refusalMessage, sendError } from '../http/errors.ts';
import { pathOf } from '../http/path.ts';
import { requestIdOf } from '../http/request-id.ts';
import { isFailedAttempt } from '../limits/failures.ts';
import type { FailureBlock, RateLimits, RateVerdict } from '../limits/types.ts';
import { refusalOutcome, type Usage } from '../limits/usage.ts';
import { throttledWarn, type AccessLog, type Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import { declaresBody } from './body.ts';
import type { Forwarder } from './forward.ts';
import { forwardedHeaders, rateLimitedRefusal, type IdentityHeaderDeps } from './headers.ts';
import { RequestScope } from './scope.ts';

export const MANAGEMENT_PREFIX = '/keygate/v1';

export const isManagement = (url: string): boolean =>
  url.startsWith(MANAGEMENT_PREFIX) && (url.length === MANAGEMENT_PREFIX.length || url[MANAGEMENT_PREFIX.length] === '/' || url[MANAGEMENT_PREFIX.length] === '?');

export interface PublicHandlerDeps extends IdentityHeaderDeps {
  /** The Express app serving `/keygate/v1`. */
  management: (req: IncomingMessage, res: ServerResponse) => void;
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
 * The public listener's request handler. `/keygate/v1` goes to Express; everything else takes the proxy's
 * straight line (SPEC §5) with no Express machinery on it: request id → preflight → IP block → pipeline →
 * rate limits → forward. A cache hit with a live rate-limit lease runs it synchronously, without a promise.
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
      path: pathOf(req.url ?? '/'),
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
      usage.record(r.identity.tenant.id, r.identity.key.id, refusalOutcome(r.code));
    }
    metrics.decision(r.code, scope.tenantId);
    // An unread body (a refused upload) cannot be left in the connection; a request without one keeps it.
    if (!req.readableEnded && declaresBody(req)) res.setHeader('Connection', 'close');
    const send = () => sendError(res, scope.requestId, r.code, r.message, { headers: { ...r.headers, ...headers } });
    // A failed authentication is counted before it is answered, so the attempt that reaches the threshold
    // is the last one let through.
    if (!r.identity && isFailedAttempt(r.code)) failures.fail(clientIpOf(req, deps.trustedProxies)).then(send, send);
    else send();
  }

  function forward(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant, verdict: RateVerdict | null): void {
    const { identity } = grant;
    scope.decision = 'allowed';
    metrics.decision('allowed', scope.tenantId);
    usage.record(identity.tenant.id, identity.key.id, 'allowed');
    if (verdict) scope.addRateLimit(verdict);
    const origin = req.headers.origin;
    if (origin !== undefined) scope.addCors(origin);
    const headers = forwardedHeaders(req, identity, scope.requestId, deps);
    authDuration.observe((performance.now() - scope.started) / 1000);
    forwarder.forward(req, res, scope, headers, grant.body);
  }

  function applyVerdict(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant, v: RateVerdict | null): void {
    if (v && !v.ok) {
      metrics.rateLimited.inc({ scope: v.scope });
      return refuse(req, res, scope, rateLimitedRefusal(v, grant.identity));
    }
    const busy = forwarder.busy(grant.identity); // the tenant's plan maxInFlight (SPEC §5)
    if (busy) return refuse(req, res, scope, busy);
    forward(req, res, scope, grant, v);
  }

  function limit(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant): void {
    scope.tenantId = grant.identity.tenant.id;
    scope.keyId = grant.identity.key.id;
    const verdict = limits.consume(grant.identity);
    // Synchronous whenever the key's rate-limit leases are live (the common case): no closure, no promise.
    if (!(verdict instanceof Promise)) return applyVerdict(req, res, scope, grant, verdict);
    verdict.then((v) => applyVerdict(req, res, scope, grant, v), (err: unknown) => storeDown(res, scope, err));
  }

  function decide(req: IncomingMessage, res: ServerResponse, scope: RequestScope, outcome: Outcome): void {
    if (!outcome.ok) return refuse(req, res, scope, outcome);
    limit(req, res, scope, outcome);
  }

  function storeDown(res: ServerResponse, scope: RequestScope, err: unknown): void {
    scope.decision = 'store_unavailable';
    metrics.decision('store_unavailable');
    warnStoreDown({ err, requestId: scope.requestId });
    sendError(res, scope.requestId, 'store_unavailable', refusalMessage.store_unavailable);
  }

  return function handlePublic(req: IncomingMessage, res: ServerResponse): void {
    if (isManagement(req.url ?? '/')) return deps.management(req, res);
    const scope = new RequestScope(requestIdOf(req));
    res.on('close', () => {
      if (!res.writableFinished) scope.upstream?.cancel(); // the client left first: so does the upstream request
      record(req, res, scope);
    });
    if (isPreflight(req)) {
      scope.decision = 'preflight';
      return answerPreflight(req, res, scope.requestId);
    }
    const blocked = failures.blockedFor(clientIpOf(req, deps.trustedProxies));
    if (blocked > 0) {
      return refuse(req, res, scope, { ok: false, code: 'too_many_failed_attempts', message: refusalMessage.too_many_failed_attempts }, { 'Retry-After': String(blocked) });
    }
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = pipeline(req, false);
    } catch (err) {
      return storeDown(res, scope, err);
    }
    if (outcome instanceof Promise) outcome.then((o) => decide(req, res, scope, o), (err: unknown) => storeDown(res, scope, err));
    else decide(req, res, scope, outcome);
  };
}
