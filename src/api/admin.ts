import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import { bearerToken } from '../auth/credential.ts';
import { TENANT_ID } from '../keys/ids.ts';
import { ApiError } from '../http/errors.ts';
import { validate } from './http.ts';
import type { KeyService } from './key-service.ts';
import { keyRoutes, pageOf } from './key-routes.ts';
import { createTenantBody, updateTenantBody } from './schemas.ts';
import type { UsageReader } from './usage.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <admin token>`, compared in constant time (equal-length digests, so no length leak). */
function requireAdminToken(token: string): RequestHandler {
  const expected = digest(token);
  return (req, _res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw new ApiError('missing_api_key', 'The admin API needs Authorization: Bearer <admin token>.');
    if (!timingSafeEqual(digest(token), expected)) throw new ApiError('invalid_api_key', 'The admin token is not valid.');
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
}

/** `/admin/v1` on the internal listener: the platform manages every tenant (SPEC §3). */
export function adminRouter(deps: AdminDeps): Router {
  const { service } = deps;
  const r = Router();
  r.use(requireAdminToken(deps.adminToken));

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
    await service.deleteTenant(tenantIdOf(req.params.tenantId as string));
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

  r.get('/overview', async (_req, res) => {
    res.json(await deps.usage.overview());
  });
  return r;
}
