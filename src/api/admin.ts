import { Router, type Request, type RequestHandler, type Response } from 'express';
import { bearerToken } from '../auth/credential.ts';
import { TENANT_ID } from '../keys/ids.ts';
import { ApiError } from '../http/errors.ts';
import type { Metrics } from '../ops/metrics.ts';
import { jsonBody, validate } from './http.ts';
import { actorName, type Actor } from './key-rules.ts';
import type { KeyService } from './key-service.ts';
import { READ_METHODS, type Operator } from './operators.ts';
import { pathOf } from '../http/path.ts';
import type { Logger } from '../ops/logger.ts';
import { keysUsageQuery, tenantSearchQuery, usageQuery } from './schemas.ts';
import { keyRoutes, pageOf } from './key-routes.ts';
import { adminMintSessionTokenBody, createTenantBody, updateTenantBody } from './schemas.ts';
import type { SessionTokenService } from './session-tokens.ts';
import { toAuthKey } from '../keys/types.ts';
import type { UsageReader } from '../limits/usage-report.ts';
import type { FleetReader } from './fleet.ts';
import { closeTenantEndpoints, webhookRouter } from './webhook-routes.ts';
import type { WebhookQueue } from '../webhooks/types.ts';

/**
 * The admin token or a named operator's, from `Authorization: Bearer` (the admin API's door). Every outcome is
 * counted in keygate_auth_decisions_total{listener="internal"} by the router: a guessed token shows there.
 */
export function bearerOperator(operatorOf: (token: string, req: Request) => Promise<Operator | null>): (req: Request) => Promise<Operator> {
  return async (req) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw new ApiError('missing_api_key', 'The admin API needs Authorization: Bearer <admin token>.');
    const operator = await operatorOf(token, req);
    if (!operator) throw new ApiError('invalid_api_key', 'The admin token is not valid.');
    return operator;
  };
}

export const operatorOf = (res: Response): Operator => res.locals.operator as Operator;
const actorOf = (res: Response): Actor => {
  const op = operatorOf(res);
  return op.named ? { kind: 'admin', operator: op.name } : { kind: 'admin' };
};

/**
 * Who may call: the door's own authentication (a bearer token, or the console's session cookie), then the role.
 * A `read` operator is refused every method but GET/HEAD here, in front of every route, so no write route can
 * forget the check. Each write is logged with its operator (the tenant's audit log names them too).
 */
function authorize(deps: AdminDeps): RequestHandler {
  const count = (decision: string) => deps.metrics?.decision(decision, null, 'internal');
  return async (req, res, next) => {
    let operator: Operator;
    try {
      operator = await deps.authenticate(req, res);
    } catch (err) {
      if (err instanceof ApiError) count(err.code);
      throw err;
    }
    if (operator.role === 'read' && !READ_METHODS.has(req.method)) {
      count('insufficient_permissions');
      throw new ApiError('insufficient_permissions', `Operator ${operator.name} may only read (role "read").`);
    }
    count('allowed');
    res.locals.operator = operator;
    if (!READ_METHODS.has(req.method)) {
      res.once('finish', () => deps.logger?.info({ audit: { operator: operator.name, role: operator.role, method: req.method, path: pathOf(req.originalUrl), status: res.statusCode }, requestId: res.locals.requestId as string }, 'operator write'));
    }
    next();
  };
}

function tenantIdOf(id: string): string {
  if (!TENANT_ID.test(id)) throw new ApiError('not_found', `No tenant ${id}.`);
  return id;
}

export interface AdminDeps {
  service: KeyService;
  /** The door's authentication: the operator, or a thrown ApiError (401/403). */
  authenticate: (req: Request, res: Response) => Operator | Promise<Operator>;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** The fleet view (`GET /fleet`); absent in routers that do not serve it. */
  fleet?: FleetReader;
  usage: UsageReader;
  metrics?: Pick<Metrics, 'decision'>;
  /** Webhook delivery state; null when webhooks are off. */
  webhooks?: WebhookQueue | null;
  /** `server.maxBodyBytes`: request bodies are read only once the admin token is checked. */
  maxBodyBytes: number;
  sessionTokens: SessionTokenService;
}

/** `/admin/v1` on the internal listener: the platform manages every tenant. */
export function adminRouter(deps: AdminDeps): Router {
  const { service } = deps;
  const r = Router();
  r.use(authorize(deps));
  // After the token: a caller without it is refused before its body is read or parsed.
  r.use(...jsonBody(deps.maxBodyBytes));

  r.post('/tenants', async (req, res) => {
    res.status(201).json(await service.createTenant(validate(createTenantBody, req.body), actorOf(res)));
  });
  r.get('/tenants', async (req, res) => {
    res.json(await service.listTenants(pageOf(req)));
  });
  r.get('/tenant-search', async (req, res) => {
    const { q, limit } = validate(tenantSearchQuery, req.query, 'query');
    res.json(await service.searchTenants(q ?? '', limit));
  });
  r.get('/tenants/:tenantId/summary', async (req, res) => {
    res.json(await service.tenantSummary(tenantIdOf(req.params.tenantId as string)));
  });
  r.get('/tenants/:tenantId', async (req, res) => {
    res.json(await service.getTenant(tenantIdOf(req.params.tenantId as string)));
  });
  r.patch('/tenants/:tenantId', async (req, res) => {
    const id = tenantIdOf(req.params.tenantId as string);
    res.json(await service.updateTenant(id, validate(updateTenantBody, req.body), actorOf(res)));
  });
  r.delete('/tenants/:tenantId', async (req, res) => {
    const id = tenantIdOf(req.params.tenantId as string);
    // Stopped, then its webhook endpoints removed (none can be made meanwhile), then its keys revoked: their
    // key.revoked reach the platform's endpoints only. A deletion that fails part-way is finished by the retry.
    const webhooks = deps.webhooks;
    await service.deleteTenant(id, actorOf(res), webhooks ? () => closeTenantEndpoints(webhooks, id) : undefined);
    // Deleted, its last events written: its outbox is forgotten once they are delivered. A failure here leaves
    // it read by the sweep (a cost, not a loss), and the deletion stands.
    await webhooks?.retireOutbox(id).catch((err: unknown) => deps.logger?.warn({ err, tenantId: id }, 'webhook outbox of a deleted tenant not retired'));
    res.status(204).end();
  });
  r.get('/tenants/:tenantId/audit-log', async (req, res) => {
    res.json(await service.listAudit(tenantIdOf(req.params.tenantId as string), pageOf(req)));
  });
  r.use(
    '/tenants/:tenantId/api-keys',
    keyRoutes(service, {
      tenantOf: (req) => tenantIdOf(req.params.tenantId as string),
      actorOf,
      require: () => {},
    }),
  );

  // Platform-side minting: a token of one of the tenant's keys, which is charged for everything it does.
  r.post('/tenants/:tenantId/session-tokens', async (req, res) => {
    const tenantId = tenantIdOf(req.params.tenantId as string);
    const { keyId, ...settings } = validate(adminMintSessionTokenBody, req.body);
    const [tenant, key] = await Promise.all([service.getTenant(tenantId), service.getKey(tenantId, keyId, { kind: 'admin' })]);
    if (tenant.status !== 'active') throw new ApiError('tenant_suspended', 'The tenant is suspended: its keys mint nothing.');
    if (!key.isActive) throw new ApiError('key_disabled', 'The key is disabled: it mints nothing.');
    if (key.expiresAt !== null && Date.parse(key.expiresAt) <= Date.now()) throw new ApiError('key_expired', 'The key has expired: it mints nothing.');
    res.status(201).json(deps.sessionTokens.mint(tenantId, toAuthKey(key), settings, actorName(actorOf(res))));
  });

  r.use('/webhooks', webhookRouter(deps.webhooks ?? null, {
    ownerOf: () => null,
    require: () => {},
    // The platform's endpoints belong to no tenant: their writes go to the platform's audit log.
    audit: (res, action, details) => service.audit(null, { action, actor: actorName(actorOf(res)), keyId: null, details }),
  }));
  r.get('/audit-log', async (req, res) => {
    res.json(await service.listPlatformAudit(pageOf(req)));
  });

  r.get('/overview', async (_req, res) => {
    res.json(await deps.usage.overview());
  });
  r.get('/whoami', (_req, res) => {
    const { name, role } = operatorOf(res);
    res.json({ name, role });
  });
  r.get('/tenants/:tenantId/usage', async (req, res) => {
    const tenantId = tenantIdOf(req.params.tenantId as string);
    const q = validate(usageQuery, req.query, 'query');
    // The tenant's existence (404 otherwise) and its counters are read together, not one after the other.
    const [, data] = await Promise.all([service.getTenant(tenantId), deps.usage.read(tenantId, q)]);
    res.json({ data });
  });
  r.get('/tenants/:tenantId/keys-usage', async (req, res) => {
    const tenantId = tenantIdOf(req.params.tenantId as string);
    const { period, keyIds } = validate(keysUsageQuery, req.query, 'query');
    res.json({ data: await deps.usage.readKeys(tenantId, period, keyIds) });
  });
  r.get('/fleet', async (req, res) => {
    if (!deps.fleet) throw new ApiError('not_found', `No route for GET ${req.path}.`);
    res.json(await deps.fleet.read());
  });
  return r;
}
