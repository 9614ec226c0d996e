import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { credentialOf } from '../auth/credential.ts';
import type { AuthResult, Authenticator, Identity } from '../auth/verify.ts';
import { sendError } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Forwarder } from './forward.ts';
import { setForwarded, stripInbound } from './headers.ts';
import { sign } from './signature.ts';

export const MANAGEMENT_PREFIX = '/keygate/v1';

const isManagement = (url: string): boolean =>
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

export interface PublicHandlerDeps {
  /** The Express app serving `/keygate/v1`. */
  management: (req: IncomingMessage, res: ServerResponse) => void;
  authenticate: Authenticator;
  forwarder: Forwarder;
  trustedProxies: BlockList | null;
  encrypted: boolean;
  signingSecret: string | null;
  metrics: Metrics;
  logger: Logger;
  accessLog: boolean;
}

const pathOf = (url: string): string => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/**
 * The public listener's request handler. `/keygate/v1` goes to Express; everything else takes the proxy's
 * straight line (SPEC §5) with no Express machinery on it: request id → credential → verify → forward.
 */
export function createPublicHandler(deps: PublicHandlerDeps) {
  const { authenticate, forwarder, metrics, logger } = deps;

  function record(req: IncomingMessage, res: ServerResponse, scope: RequestScope): void {
    const seconds = (performance.now() - scope.started) / 1000;
    metrics.requests.inc({ listener: 'public', method: req.method ?? 'GET', status_class: `${Math.floor(res.statusCode / 100)}xx` });
    metrics.requestDuration.observe({ listener: 'public' }, seconds);
    if (!deps.accessLog) return;
    logger.info(
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

  function forward(req: IncomingMessage, res: ServerResponse, scope: RequestScope, id: Identity): void {
    const h = req.headers;
    stripInbound(h, id.credential.source === 'bearer' ? 'authorization' : 'x-api-key');
    setForwarded(req, deps.trustedProxies, deps.encrypted);
    h['x-tenant-id'] = id.tenant.id;
    h['x-api-key-id'] = id.key.id;
    h['x-api-key-type'] = id.key.keyType;
    h['x-api-key-permissions'] = id.key.permissions.join(',');
    h['x-request-id'] = scope.requestId;
    if (deps.signingSecret) {
      h['x-keygate-signature'] = sign(deps.signingSecret, { method: req.method ?? 'GET', path: pathOf(req.url ?? '/'), tenantId: id.tenant.id, keyId: id.key.id });
    }
    forwarder.forward(req, res, {
      requestId: scope.requestId,
      onUpstream: (seconds) => {
        scope.upstreamSeconds = seconds;
        metrics.upstreamDuration.observe(seconds);
      },
    });
  }

  function decide(req: IncomingMessage, res: ServerResponse, scope: RequestScope, result: AuthResult): void {
    metrics.authDuration.observe((performance.now() - scope.started) / 1000);
    if (!result.ok) {
      scope.decision = result.code;
      metrics.authDecisions.inc({ decision: result.code });
      sendError(res, scope.requestId, result.code, result.message, { headers: result.headers });
      return;
    }
    scope.decision = 'allowed';
    scope.tenantId = result.tenant.id;
    scope.keyId = result.key.id;
    metrics.authDecisions.inc({ decision: 'allowed' });
    forward(req, res, scope, result);
  }

  function storeDown(res: ServerResponse, scope: RequestScope, err: unknown): void {
    scope.decision = 'store_unavailable';
    metrics.authDecisions.inc({ decision: 'store_unavailable' });
    logger.warn({ err, requestId: scope.requestId }, 'key store unavailable during authentication');
    sendError(res, scope.requestId, 'store_unavailable', 'The key store is unavailable; try again shortly.');
  }

  return function handlePublic(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    if (isManagement(url)) return deps.management(req, res);
    const scope: RequestScope = { requestId: requestIdOf(req), started: performance.now(), decision: 'pending', tenantId: null, keyId: null, upstreamSeconds: null };
    res.once('close', () => record(req, res, scope));
    res.setHeader('X-Request-Id', scope.requestId);
    let result: AuthResult | Promise<AuthResult>;
    try {
      result = authenticate(credentialOf(req.headers, url, false));
    } catch (err) {
      return storeDown(res, scope, err);
    }
    if (result instanceof Promise) {
      result.then((r) => decide(req, res, scope, r), (err: unknown) => storeDown(res, scope, err));
    } else {
      decide(req, res, scope, result);
    }
  };
}
