import { Router, type RequestHandler, type Response } from 'express';
import { credentialOf } from '../auth/credential.ts';
import { holds } from '../auth/permissions.ts';
import type { Authenticator, Identity } from '../auth/verify.ts';
import { ApiError } from '../http/errors.ts';
import { validate } from './http.ts';
import type { KeyService } from './key-service.ts';
import { keyRoutes, pageOf } from './key-routes.ts';
import { usageQuery } from './schemas.ts';
import type { UsageReader } from './usage.ts';

const identityOf = (res: Response): Identity => res.locals.identity as Identity;

function requirePermission(res: Response, permission: string): void {
  const { key } = identityOf(res);
  if (!holds(key.policy.permissions, permission)) {
    throw new ApiError('insufficient_permissions', `This API key lacks the ${permission} permission.`);
  }
}

/** Authenticates the caller's own key (header or Bearer; never the query string) with the proxy's pipeline. */
function authenticateCaller(authenticate: Authenticator): RequestHandler {
  return async (req, res, next) => {
    const result = await authenticate(credentialOf(req.headers, req.url, false));
    if (!result.ok) throw new ApiError(result.code, result.message, { headers: result.headers });
    res.locals.identity = result;
    next();
  };
}

export interface SelfServiceDeps {
  service: KeyService;
  authenticate: Authenticator;
  usage: UsageReader;
  openapi: () => unknown;
}

/** `/keygate/v1` on the public listener: a tenant manages its own keys with one of them (SPEC §3). */
export function selfServiceRouter(deps: SelfServiceDeps): Router {
  const { service } = deps;
  const r = Router();
  r.get('/openapi.json', (_req, res) => {
    res.json(deps.openapi());
  });
  r.use(authenticateCaller(deps.authenticate));

  r.get('/tenants/me', async (_req, res) => {
    res.json(await service.tenantSummary(identityOf(res).tenant.id));
  });

  r.use(
    '/api-keys',
    keyRoutes(service, {
      tenantOf: (_req, res) => identityOf(res).tenant.id,
      actorOf: (res) => ({ kind: 'key', key: identityOf(res).key }),
      require: requirePermission,
    }),
  );

  r.get('/usage', async (req, res) => {
    requirePermission(res, 'usage:read');
    const q = validate(usageQuery, req.query, 'query');
    res.json({ data: await deps.usage.read(identityOf(res).tenant.id, q) });
  });

  r.get('/audit-log', async (req, res) => {
    requirePermission(res, 'audit:read');
    res.json(await service.listAudit(identityOf(res).tenant.id, pageOf(req)));
  });
  return r;
}
