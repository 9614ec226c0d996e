import { Router, type Response } from 'express';
import { holds } from '../auth/permissions.ts';
import type { Identity } from '../auth/verify.ts';
import { ApiError } from '../http/errors.ts';
import { hexOfDigest } from '../keys/hashing.ts';
import { valueTagOf } from '../keys/session-token.ts';
import { validate } from './http.ts';
import type { KeyService } from './key-service.ts';
import { keyRoutes, pageOf } from './key-routes.ts';
import { mintSessionTokenBody, usageQuery } from './schemas.ts';
import { MINT_PERMISSION, type SessionTokenService } from './session-tokens.ts';
import type { UsageReader } from '../limits/usage-report.ts';
import { webhookRouter } from './webhook-routes.ts';
import type { WebhookQueue } from '../webhooks/types.ts';

/** The caller, as the public listener's gate authenticated it (proxy/public-handler.ts) before Express ran. */
function identityOf(res: Response): Identity {
  const identity = res.locals.identity as Identity | null | undefined;
  // Only the OpenAPI document is let through the gate without a key; no other route may run without one.
  if (!identity) throw new ApiError('missing_api_key', 'An API key is required.');
  return identity;
}

function requirePermission(res: Response, permission: string): void {
  const { key } = identityOf(res);
  if (!holds(key.policy.permissions, permission)) {
    throw new ApiError('insufficient_permissions', `This API key lacks the ${permission} permission.`);
  }
}

export interface SelfServiceDeps {
  service: KeyService;
  usage: UsageReader;
  openapi: () => unknown;
  /** Webhook delivery state; null when webhooks are off. */
  webhooks?: WebhookQueue | null;
  sessionTokens: SessionTokenService;
}

/**
 * `/keygate/v1` on the public listener: a tenant manages its own keys with one of them. The caller was
 * authenticated by the gate every public request passes (key, status, mTLS, origin, key type, rate limits);
 * these routes only check what each operation needs.
 */
export function selfServiceRouter(deps: SelfServiceDeps): Router {
  const { service } = deps;
  const r = Router();
  r.get('/openapi.json', (_req, res) => {
    res.json(deps.openapi());
  });

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

  // A key mints (the gate let no session token in here but for its own status read).
  r.post('/session-tokens', (req, res) => {
    requirePermission(res, MINT_PERMISSION);
    const { tenant, key, hash, hashExpiresAt } = identityOf(res);
    const body = validate(mintSessionTokenBody, req.body);
    const valueTag = valueTagOf(hexOfDigest(hash));
    res.status(201).json(deps.sessionTokens.mint(tenant.id, { ...key, valueEndsAt: hashExpiresAt, valueTag }, body, key.id));
  });
  r.get('/session-tokens/current', (_req, res) => {
    res.json(deps.sessionTokens.status(identityOf(res)));
  });

  r.get('/usage', async (req, res) => {
    requirePermission(res, 'usage:read');
    const q = validate(usageQuery, req.query, 'query');
    if (q.keyId) await service.assertReadable(identityOf(res).tenant.id, q.keyId, { kind: 'key', key: identityOf(res).key });
    res.json({ data: await deps.usage.read(identityOf(res).tenant.id, q) });
  });

  r.use('/webhooks', webhookRouter(deps.webhooks ?? null, {
    ownerOf: (res) => identityOf(res).tenant.id,
    require: requirePermission,
    audit: (res, action, details) => service.audit(identityOf(res).tenant.id, { action, actor: identityOf(res).key.id, keyId: null, details }),
  }));

  r.get('/audit-log', async (req, res) => {
    requirePermission(res, 'audit:read');
    res.json(await service.listAudit(identityOf(res).tenant.id, pageOf(req)));
  });
  return r;
}
