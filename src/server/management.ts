import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Request, type RequestHandler } from 'express';
import { adminRouter, bearerOperator } from '../api/admin.ts';
import { createFleetReader } from '../api/fleet.ts';
import { createOperators, guardedOperators, operatorsByCredential, type Operator, type OperatorGuard } from '../api/operators.ts';
import { consoleRouter } from '../console/router.ts';
import type { ConsoleSessions } from '../console/sessions.ts';
import type { RecentBlocks } from '../limits/recent-blocks.ts';
import type { DecisionRing } from '../ops/decision-ring.ts';
import { assignRequestId, errorHandler, jsonBody, notFound } from '../api/http.ts';
import { KeyService } from '../api/key-service.ts';
import { buildOpenApi } from '../api/openapi.ts';
import { selfServiceRouter } from '../api/self-service.ts';
import { MintAudit, SessionTokenService } from '../api/session-tokens.ts';
import type { Config } from '../config/schema.ts';
import { answeredCode } from '../http/errors.ts';
import { pathOf } from '../http/path.ts';
import type { KeyFormat } from '../keys/format.ts';
import type { KeyHasher } from '../keys/hashing.ts';
import type { SigningKey } from '../keys/session-token.ts';
import type { Usage } from '../limits/usage.ts';
import type { Readiness } from '../ops/health.ts';
import type { AccessLog, Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import { MANAGEMENT_PREFIX } from '../proxy/public-handler.ts';
import type { KeyStore } from '../store/types.ts';
import type { WebhookQueue } from '../webhooks/types.ts';

// The management APIs (Express, their zod schemas, the OpenAPI document): loaded on their first request, not at
// start, because a sidecar that never serves one should not hold them (measured: about 4 MB of an idle
// process's heap). server/listeners.ts answers the internal listener's probes (/healthz, /readyz, /metrics) without them.

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** What the APIs need from the running keygate; `ready` is null until the store and everything on it exist. */
export interface ManagementDeps {
  config: Config;
  version: string;
  adminToken: string;
  /** Decisions per minute (the console's fleet chart) and recently blocked addresses, of this process. */
  ring: DecisionRing;
  blocks: RecentBlocks;
  metrics: Metrics;
  logger: Logger;
  access: AccessLog;
  readiness: Readiness;
  cacheSize: () => number;
  ready: () => {
    store: KeyStore;
    format: KeyFormat;
    hash: KeyHasher;
    usage: Usage;
    webhooks: WebhookQueue | null;
    /** The key that signs new session tokens; null when session tokens are off. */
    tokenSigner: SigningKey | null;
    /** The failed-attempt block for operator tokens (api/operators.ts guardedOperators). */
    operatorGuard: OperatorGuard;
    /** The console's sign-in sessions: on Redis when the store is, so every worker and replica shares them. */
    consoleSessions: ConsoleSessions;
    /** Registers work to finish when keygate stops (before the store closes). */
    atShutdown(flush: () => Promise<void>): void;
  } | null;
}

/** Counts and logs the internal listener's requests (the public listener's gate records its own, with auth details). */
function observe(metrics: Metrics, access: AccessLog): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.once('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      metrics.countRequest('internal', req.method, res.statusCode);
      metrics.requestDuration.series('internal').observe(seconds);
      if (req.path !== '/healthz' && req.path !== '/readyz' && req.path !== '/metrics') {
        const code = answeredCode(res);
        // The admin API has no gate: `management` names the listener's kind of request; its refusals carry their code.
        access({ requestId: res.locals.requestId as string, method: req.method, path: pathOf(req.originalUrl), status: res.statusCode, durationMs: Math.round(seconds * 1e6) / 1e3, clientIp: req.socket.remoteAddress ?? '', userAgent: req.headers['user-agent']?.slice(0, 256) ?? null, decision: 'management', code, listener: 'internal' });
      }
    });
    next();
  };
}

/**
 * The two Express apps: `internal` serves everything on the internal listener that the probes (server/listeners.ts) do not (the
 * admin API, 404s, and the probes' paths in forms other than the plain GET, such as `/healthz/`), and `public`
 * serves `/keygate/v1` behind the public listener's gate.
 */
export function createManagement(deps: ManagementDeps): { internal: Handler; public: Handler } {
  const { config, metrics, logger } = deps;
  // The admin token and the named operators' token digests (admin.tokens): who may call /admin/v1 and /console.
  const operatorOf = guardedOperators(createOperators(deps.adminToken, config.admin.tokens), () => deps.ready()?.operatorGuard ?? null);
  let built: { admin: RequestHandler; consoleAdmin: (authenticate: (req: Request) => Operator | Promise<Operator>) => RequestHandler; selfService: RequestHandler } | null = null;
  let openapi: object | null = null;
  // The routers need the store: until it is open, /admin/v1 answers 404 as an empty router did.
  const routers = () => {
    if (built) return built;
    const ready = deps.ready();
    if (!ready) return null;
    const { store, format, hash, usage, webhooks } = ready;
    const mintAudit = new MintAudit(store, (err) => logger.warn({ err }, 'session-token mint counts not written to the audit log'));
    ready.atShutdown(() => mintAudit.flush());
    const sessionTokens = new SessionTokenService({ signer: ready.tokenSigner, maxTtlSeconds: config.tokens.maxTtlSeconds, audit: mintAudit });
    const service = new KeyService({ store, config, format, hash, lastUsed: usage, logger, cursorSecret: deps.adminToken });
    const fleet = createFleetReader({ store, webhooks, ring: deps.ring, blocks: deps.blocks, readiness: () => deps.readiness.report() });
    const admin = (authenticate: (req: Request) => Operator | Promise<Operator>) => adminRouter({ service, authenticate, logger, fleet, usage, metrics, webhooks, maxBodyBytes: config.server.maxBodyBytes, sessionTokens });
    built = {
      admin: admin(bearerOperator(operatorOf)),
      consoleAdmin: admin,
      selfService: express.Router().use(...jsonBody(config.server.maxBodyBytes), selfServiceRouter({ service, usage, openapi: () => (openapi ??= buildOpenApi(deps.version)), webhooks, sessionTokens })),
    };
    return built;
  };

  const internal = express();
  internal.disable('x-powered-by');
  internal.set('etag', false);
  internal.use(assignRequestId, observe(metrics, deps.access));
  internal.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  internal.get('/readyz', async (_req, res) => {
    const { httpStatus, body } = await deps.readiness.report();
    res.status(httpStatus).json(body);
  });
  internal.get('/metrics', async (_req, res) => {
    metrics.cacheEntries.set(deps.cacheSize());
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  internal.use('/admin/v1', (req, res, next) => {
    const r = routers();
    if (r) r.admin(req, res, next);
    else next();
  });
  if (config.console.enabled) {
    internal.use('/console', consoleRouter({
      sessions: () => deps.ready()?.consoleSessions ?? null,
      origins: config.console.origins,
      operatorOf,
      currentOperator: operatorsByCredential(deps.adminToken, config.admin.tokens),
      adminApi: (authenticate) => routers()?.consoleAdmin(authenticate) ?? null,
      count: (decision) => metrics.decision(decision, null, 'internal'),
    }));
  }
  internal.use(notFound);
  internal.use(errorHandler(logger));

  const management = express();
  management.disable('x-powered-by');
  management.set('etag', false);
  // Entered only through the public listener's gate (proxy/public-handler.ts), which counts and logs the request.
  management.use(assignRequestId);
  management.use(MANAGEMENT_PREFIX, (req, res, next) => {
    const r = routers();
    if (r) r.selfService(req, res, next);
    else next();
  });
  management.use(notFound);
  management.use(errorHandler(logger));

  return { internal: internal as unknown as Handler, public: management as unknown as Handler };
}
