import { Router, type Response } from 'express';
import { monotonicFactory } from 'ulid';
import { ApiError } from '../http/errors.ts';
import { guarded, validate } from './http.ts';
import { newSecret } from '../webhooks/deliver.ts';
import { PLATFORM_EVENT_TYPES } from '../webhooks/events.ts';
import { createEndpointBody, deliveriesQuery, rotateSecretBody } from '../webhooks/schemas.ts';
import { endpointOfJob, type Endpoint, type EndpointHealth, type WebhookQueue } from '../webhooks/types.ts';

const ulid = monotonicFactory();
const ENDPOINT_ID = /^whe_[0-9A-HJKMNP-TV-Z]{26}$/;
const DEAD_LETTERS = 1000;
/** How long endpoint creation stays closed for a deleted tenant: far beyond any request that verified before. */
const CLOSED_MS = 86_400_000;

/** Whose endpoints a request addresses, and what the caller must hold (the admin holds everything). */
export interface WebhookRouteContext {
  /** The caller's tenant (self-service), or null for the platform (admin). */
  ownerOf(res: Response): string | null;
  require(res: Response, permission: 'webhooks:read' | 'webhooks:write'): void;
  /** Writes a done write's audit line (the owner's audit log: a tenant's, or the platform's), naming the caller. */
  audit(res: Response, action: WebhookAuditAction, details: Record<string, unknown>): Promise<void>;
}

/** What each endpoint write is audited as (beside `webhook.disabled`, which keygate itself records). */
export type WebhookAuditAction = 'webhook.created' | 'webhook.enabled' | 'webhook.deleted' | 'webhook.secret_rotated' | 'webhook.redelivered';

const view = (e: Endpoint, h: EndpointHealth | undefined, now = Date.now()) => ({
  id: e.id,
  url: e.url,
  description: e.description,
  events: e.events,
  secretsActive: e.secrets.filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now).length,
  failingSince: h?.failingSince ? new Date(h.failingSince).toISOString() : null,
  disabledAt: h?.disabledAt ?? null,
  createdAt: e.createdAt,
  updatedAt: e.updatedAt,
});

/**
 * Deleting a tenant, its webhook side: endpoint creation is closed first (atomically with the count in
 * createEndpoint), so the list read next is complete; then each endpoint goes. Store failures answer 503.
 */
export async function closeTenantEndpoints(queue: WebhookQueue, tenantId: string): Promise<void> {
  await guarded(queue.closeTenant(tenantId, CLOSED_MS));
  const mine = (await guarded(queue.listEndpoints())).filter((e) => e.tenantId === tenantId);
  for (const e of mine) await guarded(queue.deleteEndpoint(e.id));
}

/**
 * Webhook endpoints, their delivery logs and dead letters: the platform's on `/admin/v1/webhooks`, a
 * tenant's own on `/keygate/v1/webhooks`. Each owner sees only its own endpoints; another owner's are 404.
 */
export function webhookRouter(queue: WebhookQueue | null, ctx: WebhookRouteContext): Router {
  const r = Router();
  const q = (): WebhookQueue => {
    if (!queue) throw new ApiError('not_found', 'Webhooks are not enabled on this deployment (webhooks.enabled).');
    return queue;
  };
  const endpoint = async (res: Response, id: string): Promise<Endpoint> => {
    const found = ENDPOINT_ID.test(id) ? await guarded(q().getEndpoint(id)) : null;
    if (!found || found.tenantId !== ctx.ownerOf(res)) throw new ApiError('not_found', `No webhook endpoint ${id}.`);
    return found;
  };
  const own = async (res: Response): Promise<Endpoint[]> => (await guarded(q().listEndpoints())).filter((e) => e.tenantId === ctx.ownerOf(res));

  r.post('/', async (req, res) => {
    ctx.require(res, 'webhooks:write');
    const body = validate(createEndpointBody, req.body ?? {});
    const owner = ctx.ownerOf(res);
    const platformOnly = owner === null ? [] : body.events.filter((t) => PLATFORM_EVENT_TYPES.has(t));
    if (platformOnly.length) {
      throw new ApiError('validation_error', `${platformOnly.join(', ')} ${platformOnly.length > 1 ? 'are' : 'is'} sent to the platform's endpoints only.`, { details: [{ path: 'events', message: `platform only: ${platformOnly.join(', ')}` }] });
    }
    const now = new Date().toISOString();
    const secret = newSecret();
    const e: Endpoint = { id: `whe_${ulid()}`, tenantId: owner, url: body.url, description: body.description ?? null, events: body.events, secrets: [{ secret, expiresAt: null }], createdAt: now, updatedAt: now };
    // Counted and written in one step (concurrent creates cannot pass the cap together).
    const made = await guarded(q().createEndpoint(e));
    if (made === 'limit') {
      const max = q().caps.maxEndpointsPerTenant;
      throw new ApiError('validation_error', `A tenant may have at most ${max} webhook endpoints.`, { details: [{ path: '(body)', message: `at most ${max} endpoints` }] });
    }
    if (made === 'closed') throw new ApiError('tenant_suspended', 'The tenant is being deleted.');
    await ctx.audit(res, 'webhook.created', { endpointId: e.id, url: e.url, events: e.events });
    res.status(201).json({ ...view(e, undefined), secret });
  });
  r.get('/', async (_req, res) => {
    ctx.require(res, 'webhooks:read');
    const health = await guarded(q().health());
    res.json({ data: (await own(res)).map((e) => view(e, health.get(e.id))) });
  });
  r.get('/dead-letters', async (_req, res) => {
    ctx.require(res, 'webhooks:read');
    const owner = ctx.ownerOf(res);
    // Read from the owner's own index: a tenant's dead letters, or each platform endpoint's (its own group).
    const groups = owner !== null ? [owner] : (await own(res)).map((e) => e.id);
    const lists = await Promise.all(groups.map((g) => guarded(q().deadLetters(g, DEAD_LETTERS))));
    const data = lists.flat().sort((a, b) => (b.deadAt ?? '').localeCompare(a.deadAt ?? '')).slice(0, DEAD_LETTERS);
    res.json({ data });
  });
  r.post('/dead-letters/:key/redeliver', async (req, res) => {
    ctx.require(res, 'webhooks:write');
    const key = req.params.key as string;
    // A job key is `<event id>:<endpoint id>`: only the endpoint's owner may send it again.
    const endpointId = endpointOfJob(key);
    const mine = ENDPOINT_ID.test(endpointId) ? await guarded(q().getEndpoint(endpointId)) : null;
    const done = mine && mine.tenantId === ctx.ownerOf(res) ? await guarded(q().redeliver(key, Date.now())) : 'missing';
    if (done === 'missing') throw new ApiError('not_found', `No dead letter ${key}.`);
    if (done === 'full') {
      throw new ApiError('rate_limited', 'The endpoint (or its owner) has its most pending deliveries (webhooks.maxPendingJobsPerEndpoint, maxPendingJobsPerTenant); try again once some are delivered.', { headers: { 'Retry-After': 60 } });
    }
    await ctx.audit(res, 'webhook.redelivered', { endpointId, url: mine!.url, deadLetter: key });
    res.status(204).end();
  });
  r.get('/:endpointId', async (req, res) => {
    ctx.require(res, 'webhooks:read');
    const e = await endpoint(res, req.params.endpointId as string);
    res.json(view(e, (await guarded(q().health())).get(e.id)));
  });
  r.post('/:endpointId/enable', async (req, res) => {
    ctx.require(res, 'webhooks:write');
    const e = await endpoint(res, req.params.endpointId as string);
    // Delivering again; what was dead-lettered meanwhile can be redelivered.
    await guarded(q().setHealth(e.id, null));
    await ctx.audit(res, 'webhook.enabled', { endpointId: e.id, url: e.url });
    res.json(view(e, undefined));
  });
  r.delete('/:endpointId', async (req, res) => {
    ctx.require(res, 'webhooks:write');
    const e = await endpoint(res, req.params.endpointId as string);
    if (!(await guarded(q().deleteEndpoint(e.id)))) throw new ApiError('not_found', `No webhook endpoint ${e.id}.`);
    await ctx.audit(res, 'webhook.deleted', { endpointId: e.id, url: e.url });
    res.status(204).end();
  });
  r.post('/:endpointId/rotate-secret', async (req, res) => {
    ctx.require(res, 'webhooks:write');
    const { gracePeriodSeconds } = validate(rotateSecretBody, req.body ?? {});
    const current = await endpoint(res, req.params.endpointId as string);
    const now = Date.now();
    const secret = newSecret();
    const until = new Date(now + gracePeriodSeconds * 1000).toISOString();
    // Until the grace period ends, each delivery is signed with both secrets (the receiver may hold either).
    const kept = gracePeriodSeconds > 0 ? current.secrets.filter((s) => s.expiresAt === null).map((s) => ({ secret: s.secret, expiresAt: until })) : [];
    const next: Endpoint = { ...current, secrets: [{ secret, expiresAt: null }, ...kept], updatedAt: new Date(now).toISOString() };
    await guarded(q().putEndpoint(next));
    // The secret itself is never written to the audit log.
    await ctx.audit(res, 'webhook.secret_rotated', { endpointId: next.id, url: next.url, gracePeriodSeconds });
    res.json({ ...view(next, (await guarded(q().health())).get(next.id)), secret });
  });
  r.get('/:endpointId/deliveries', async (req, res) => {
    ctx.require(res, 'webhooks:read');
    const { limit } = validate(deliveriesQuery, req.query, 'query');
    const e = await endpoint(res, req.params.endpointId as string);
    res.json({ data: await guarded(q().deliveries(e.id, limit)) });
  });
  return r;
}
