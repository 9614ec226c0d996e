import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { answerPreflight, corsResponseHeaders, isPreflight } from '../auth/origin.ts';
import type { Grant, Outcome, Pipeline, Refusal } from '../auth/pipeline.ts';
import type { Identity } from '../auth/verify.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { sendError } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { refusalOutcome, type Usage } from '../limits/usage.ts';
import { isFailedAttempt } from '../limits/failures.ts';
import type { FailureBlock, RateLimits, RateVerdict } from '../limits/types.ts';
import { throttledWarn, type Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Forwarder } from './forward.ts';
import { setForwarded, stripInbound } from './headers.ts';
import { sign } from './signature.ts';

export const MANAGEMENT_PREFIX = '/keygate/v1';

export const isManagement = (url: string): boolean =>
  url.startsWith(MANAGEMENT_PREFIX) && (url.length === MANAGEMENT_PREFIX.length || url[MANAGEMENT_PREFIX.length] === '/' || url[MANAGEMENT_PREFIX.length] === '?');

/** One typed per-request record (the oauth2-proxy RequestScope idea): what the access log and metrics report. */
export interface RequestScope {
  requestId: string;
  started: number;
  decision: string;
  tenantId: string | null;
  keyId: string | null;
  upstreamSeconds: number | null;
}

/** What stamping the identity headers needs (shared by HTTP forwarding and WebSocket upgrades). */
export interface IdentityHeaderDeps {
  trustedProxies: BlockList | null;
  xfccFrom: BlockList | null;
  encrypted: boolean;
  signingSecret: string | null;
}

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
  access: Logger;
  accessLog: boolean;
}

export const pathOf = (url: string): string => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

const hasUnreadBody = (req: IncomingMessage): boolean =>
  !req.readableEnded && (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'));

/** The RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers) for the tightest window. */
export function rateLimitHeaders(v: RateVerdict): Record<string, string> {
  const h: Record<string, string> = { 'RateLimit-Limit': String(v.limit), 'RateLimit-Remaining': String(v.remaining), 'RateLimit-Reset': String(v.resetSeconds) };
  if (!v.ok) h['Retry-After'] = String(v.retryAfterSeconds);
  return h;
}

/** Sets the identity headers the upstream trusts, after removing every client copy (SPEC §5). */
export function injectIdentity(req: IncomingMessage, id: Identity, requestId: string, deps: IdentityHeaderDeps): void {
  const h = req.headers;
  stripInbound(req, id.credential.source === 'bearer' ? 'authorization' : 'x-api-key', deps.xfccFrom);
  setForwarded(req, deps.trustedProxies, deps.encrypted);
  h['x-tenant-id'] = id.tenant.id;
  h['x-api-key-id'] = id.key.id;
  h['x-api-key-type'] = id.key.keyType;
  h['x-api-key-permissions'] = id.key.permissions.join(',');
  h['x-request-id'] = requestId;
  if (deps.signingSecret) {
    h['x-keygate-signature'] = sign(deps.signingSecret, { method: req.method ?? 'GET', path: pathOf(req.url ?? '/'), tenantId: id.tenant.id, keyId: id.key.id });
  }
}

/**
 * The public listener's request handler. `/keygate/v1` goes to Express; everything else takes the proxy's
 * straight line (SPEC §5) with no Express machinery on it: request id → preflight → IP block → pipeline →
 * rate limits → forward.
 */
export function createPublicHandler(deps: PublicHandlerDeps) {
  const { pipeline, limits, failures, usage, forwarder, metrics, logger, access } = deps;
  const requestDuration = metrics.requestDuration.labels('public');
  const allowed = metrics.authDecisions.labels('allowed');
  const warnStoreDown = throttledWarn(logger, 'key store unavailable during authentication');

  function record(req: IncomingMessage, res: ServerResponse, scope: RequestScope): void {
    const seconds = (performance.now() - scope.started) / 1000;
    metrics.countRequest('public', req.method ?? 'GET', res.statusCode);
    requestDuration.observe(seconds);
    if (!deps.accessLog) return;
    access.info(
      {
        requestId: scope.requestId,
        method: req.method,
        path: pathOf(req.url ?? '/'),
        status: res.statusCode,
        durationMs: Math.round(seconds * 1e6) / 1e3,
        upstreamMs: scope.upstreamSeconds === null ? null : Math.round(scope.upstreamSeconds * 1e6) / 1e3,
        tenantId: scope.tenantId,
        keyId: scope.keyId,
        decision: scope.decision,
      },
      'request',
    );
  }

  function refuse(req: IncomingMessage, res: ServerResponse, scope: RequestScope, r: Refusal, headers?: Record<string, string>): void {
    metrics.authDuration.observe((performance.now() - scope.started) / 1000);
    scope.decision = r.code;
    metrics.authDecisions.inc({ decision: r.code });
    if (r.identity) {
      scope.tenantId = r.identity.tenant.id;
      scope.keyId = r.identity.key.id;
      usage.record(r.identity.tenant.id, r.identity.key.id, refusalOutcome(r.code));
    }
    // An unread body (a refused upload) cannot be left in the connection; a request without one keeps it.
    if (hasUnreadBody(req)) res.setHeader('Connection', 'close');
    const send = () => sendError(res, scope.requestId, r.code, r.message, { headers: { ...r.headers, ...headers } });
    // A failed authentication is counted before it is answered, so the attempt that reaches the threshold
    // is the last one let through.
    if (!r.identity && isFailedAttempt(r.code)) failures.fail(clientIpOf(req, deps.trustedProxies)).then(send, send);
    else send();
  }

  function forward(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant, verdict: RateVerdict | null): void {
    const id = grant.identity;
    scope.decision = 'allowed';
    allowed.inc();
    usage.record(id.tenant.id, id.key.id, 'allowed');
    if (verdict) for (const [k, v] of Object.entries(rateLimitHeaders(verdict))) res.setHeader(k, v);
    const origin = req.headers.origin;
    if (origin !== undefined) corsResponseHeaders(res, origin);
    injectIdentity(req, id, scope.requestId, deps);
    metrics.authDuration.observe((performance.now() - scope.started) / 1000);
    forwarder.forward(req, res, {
      requestId: scope.requestId,
      body: grant.body,
      cors: origin !== undefined,
      onUpstream: (seconds) => {
        scope.upstreamSeconds = seconds;
        metrics.upstreamDuration.observe(seconds);
      },
    });
  }

  function applyVerdict(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant, v: RateVerdict | null): void {
    if (v && !v.ok) {
      metrics.rateLimited.inc({ scope: v.scope });
      return refuse(req, res, scope, { ok: false, code: 'rate_limited', message: 'Rate limit exceeded; retry after the Retry-After interval.', identity: grant.identity }, rateLimitHeaders(v));
    }
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
    metrics.authDecisions.inc({ decision: 'store_unavailable' });
    warnStoreDown({ err, requestId: scope.requestId });
    sendError(res, scope.requestId, 'store_unavailable', 'The key store is unavailable; try again shortly.');
  }

  return function handlePublic(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    if (isManagement(url)) return deps.management(req, res);
    const scope: RequestScope = { requestId: requestIdOf(req), started: performance.now(), decision: 'pending', tenantId: null, keyId: null, upstreamSeconds: null };
    res.once('close', () => record(req, res, scope));
    res.setHeader('X-Request-Id', scope.requestId);
    if (isPreflight(req)) {
      scope.decision = 'preflight';
      return answerPreflight(req, res, scope.requestId);
    }
    const blocked = failures.blockedFor(clientIpOf(req, deps.trustedProxies));
    if (blocked > 0) {
      return refuse(req, res, scope, { ok: false, code: 'too_many_failed_attempts', message: 'Too many failed authentication attempts from this address.' }, { 'Retry-After': String(blocked) });
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
