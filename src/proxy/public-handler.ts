import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerPreflight, isPreflight } from '../auth/origin.ts';
import type { Door, Grant } from '../auth/pipeline.ts';
import { clientIpOf } from '../http/client-ip.ts';
import { sendError, type ErrorCode } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal } from '../http/target.ts';
import type { AccessLog } from '../ops/logger.ts';
import { declaresBody } from '../http/body.ts';
import type { Tracing } from '../ops/tracing.ts';
import type { Forwarder } from './forward.ts';
import { createGate, createRecorder, type GateDeps } from '../decision/gate.ts';
import { forwardedHeaders, type IdentityHeaderDeps } from '../decision/headers.ts';
import { RequestScope } from '../decision/scope.ts';

export const MANAGEMENT_PREFIX = '/keygate/v1';
/** The one management resource that needs no key: the API's own description. */
const OPENAPI_PATH = `${MANAGEMENT_PREFIX}/openapi.json`;

/** Whether a canonical path is the management API's (http/target.ts). */
export const isManagement = (path: string): boolean =>
  path.startsWith(MANAGEMENT_PREFIX) && (path.length === MANAGEMENT_PREFIX.length || path[MANAGEMENT_PREFIX.length] === '/');

export interface PublicHandlerDeps extends IdentityHeaderDeps, GateDeps {
  /** The Express app serving `/keygate/v1`, entered only through the gate: `res.locals.identity` is the caller. */
  management: (req: IncomingMessage, res: ServerResponse) => void;
  /** How long a management request's body may take to arrive once it has passed the gate (408 after). */
  managementBodyTimeoutMs: number;
  forwarder: Forwarder;
  access: AccessLog;
  /** OpenTelemetry tracing (ops/tracing.ts), or null when it is off. */
  tracing: Tracing | null;
}

const SCOPE = Symbol('keygate.scope');
type Tracked = ServerResponse & { [SCOPE]: RequestScope };

function sendRefusal(req: IncomingMessage, res: ServerResponse, scope: RequestScope, code: ErrorCode, message: string, headers?: Record<string, string>): void {
  // An unread body (a refused upload) cannot be left in the connection; a request without one keeps it.
  if (!req.readableEnded && declaresBody(req)) res.setHeader('Connection', 'close');
  sendError(res, scope.requestId, code, message, { headers });
}

/**
 * The public listener's request handler: one gate for both doors (SPEC §3, §5). Every request takes the same
 * straight line — request id → canonical target → preflight → the gate (IP block → pipeline → rate limits,
 * decision/gate.ts) — and only then is forwarded (the proxy) or handed to Express (`/keygate/v1`), so no check
 * exists on one door and not on the other, and an unauthenticated request is answered before its body is read.
 */
export function createPublicHandler(deps: PublicHandlerDeps) {
  const { usage, forwarder, metrics, tracing } = deps;
  const authDuration = metrics.authDuration;
  const record = createRecorder('public', metrics, deps.access);

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

  const busy = forwarder.busy;
  const gate = createGate(deps, {
    pass: (req, res, scope, grant) => (scope.door === 'management' ? manage(req, res, scope, grant) : forward(req, res, scope, grant)),
    send: sendRefusal,
    // The tenant's plan maxInFlight counts upstream requests: management calls hold none.
    admit: (grant, scope) => (scope.door === 'proxy' ? busy(grant.identity) : null),
  });

  /** One listener for every response (no closure per request): the scope rides on the response. */
  function closed(this: Tracked): void {
    const scope = this[SCOPE];
    if (!this.writableFinished) scope.upstream?.cancel(); // the client left first: so does the upstream request
    record(this.req, this, scope);
  }

  return function handlePublic(req: IncomingMessage, res: ServerResponse): void {
    const scope = new RequestScope(requestIdOf(req));
    (res as Tracked)[SCOPE] = scope;
    res.on('close', closed);
    if (tracing !== null) scope.trace = tracing.request(req);
    // Derived first, so that every access line (preflights and malformed targets too) names the client.
    scope.clientIp = clientIpOf(req, deps.trustedProxies);
    const target = canonicalTarget(req.url ?? '/');
    if (isRefusal(target)) return gate.refuse(req, res, scope, { ok: false, code: 'malformed_request', message: target.refused });
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
    gate.enter(req, res, scope);
  };
}
