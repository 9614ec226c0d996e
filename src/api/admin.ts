import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import { bearerToken } from '../auth/credential.ts';
import { TENANT_ID } from '../keys/ids.ts';
import { ApiError } from '../http/errors.ts';
import type { Metrics } from '../ops/metrics.ts';
import { jsonBody, validate } from './http.ts';
import type { KeyService } from './key-service.ts';
import { keyRoutes, pageOf } from './key-routes.ts';
import { adminMintSessionTokenBody, createTenantBody, updateTenantBody } from './schemas.ts';
import type { SessionTokenService } from './session-tokens.ts';
import { toAuthKey } from '../keys/types.ts';
import type { UsageReader } from './usage.ts';
import { deleteTenantEndpoints, webhookRouter } from '../webhooks/routes.ts';
import type { WebhookQueue } from '../webhooks/types.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * `Authorization: Bearer <admin token>`, compared in constant time (equal-length digests, so no length leak).
 * Every outcome is counted in keygate_auth_decisions_total{listener="internal"}: a guessed token shows there.
 */
function requireAdminToken(token: string, count: (decision: string) => void): RequestHandler {
  const expected = digest(token);
  const refuse = (code: 'missing_api_key' | 'invalid_api_key', message: string): never => {
    count(code);
    throw new ApiError(code, message);
  };
  return (req, _res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) refuse('missing_api_key', 'The admin API needs Authorization: Bearer <admin token>.');
    else if (!timingSafeEqual(digest(token), expected)) refuse('invalid_api_key', 'The admin token is not valid.');
    count('allowed');
    next();
  };
}

function tenantIdOf(id: string): string {
  if (!TENANT_ID.test(id)) throw new ApiError('not_found', `No tenant ${id}.`);
  return id;
}

export interface AdminDeps {
  service: KeyService;
  adminToken: string;
  usage: UsageReader;
  metrics?: Pick<Metrics, 'decision'>;
  /** Webhook delivery state (issue 17); null when webhooks are off. */
  webhooks?: WebhookQueue | null;
  /** `server.maxBodyBytes`: request bodies are read only once the admin token is checked. */
  maxBodyBytes: number;
  sessionTokens: SessionTokenService;
}

/** `/admin/v1` on the internal listener: the platform manages every tenant (SPEC §3). */
export function adminRouter(deps: AdminDeps): Router {
  const { service } = deps;
  const r = Router();
  r.use(requireAdminToken(deps.adminToken, (decision) => deps.metrics?.decision(decision, null, 'internal')));
  // After the token: a caller without it is refused before its body is read or parsed.
  r.use(...jsonBody(deps.maxBodyBytes));

  r.post('/tenants', async (req, res) => {
    res.status(201).json(await service.createTenant(validate(createTenantBody, req.body)));
  });
  r.get('/tenants', async (req, res) => {
    res.json(await service.listTenants(pageOf(req)));
  });
  r.get('/tenants/:tenantId', async (req, res) => {
    res.json(await service.getTenant(tenantIdOf(req.params.tenantId as string)));
  });
  r.patch('/tenants/:tenantId', async (req, res) => {
    const id = tenantIdOf(req.params.tenantId as string);
    res.json(await service.updateTenant(id, validate(updateTenantBody, req.body)));
  });
  r.delete('/tenants/:tenantId', async (req, res) => {
    const id = tenantIdOf(req.params.tenantId as string);
    // Its webhook endpoints first (their URLs and secrets; the platform's endpoints hear of the keys' key.revoked):
    // a deletion that fails after this is finished by the retry.
    if (deps.webhooks) await deleteTenantEndpoints(deps.webhooks, id);
    await service.deleteTenant(id);
    res.status(204).end();
  });
  r.get('/tenants/:tenantId/audit-log', async (req, res) => {
    res.json(await service.listAudit(tenantIdOf(req.params.tenantId as string), pageOf(req)));
  });
  r.use(
    '/tenants/:tenantId/api-keys',
    keyRoutes(service, {
      tenantOf: (req) => tenantIdOf(req.params.tenantId as string),
      actorOf: () => ({ kind: 'admin' }),
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
    res.status(201).json(deps.sessionTokens.mint(tenantId, toAuthKey(key), settings, 'admin'));
  });

  r.use('/webhooks', webhookRouter(deps.webhooks ?? null, { ownerOf: () => null, require: () => {} }));

  r.get('/overview', async (_req, res) => {
    res.json(await deps.usage.overview());
  });
  return r;
}
