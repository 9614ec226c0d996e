import { Router } from 'express';
import { monotonicFactory } from 'ulid';
import { StoreUnavailableError } from '../cache/key-cache.ts';
import { ApiError } from '../http/errors.ts';
import { validate } from '../api/http.ts';
import { newSecret } from './deliver.ts';
import { createEndpointBody, deliveriesQuery, rotateSecretBody } from './schemas.ts';
import type { Endpoint, WebhookQueue } from './types.ts';

const ulid = monotonicFactory();
const ENDPOINT_ID = /^whe_[0-9A-HJKMNP-TV-Z]{26}$/;
const DEAD_LETTERS = 1000;

const view = (e: Endpoint, now = Date.now()) => ({
  id: e.id,
  url: e.url,
  description: e.description,
  events: e.events,
  secretsActive: e.secrets.filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now).length,
  createdAt: e.createdAt,
  updatedAt: e.updatedAt,
});

/** Store calls fail as 503 `store_unavailable`, never as a 500. */
async function guarded<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw err instanceof ApiError ? err : new StoreUnavailableError(err);
  }
}

/** `/admin/v1/webhooks`: the platform's webhook endpoints, their delivery logs and the dead letters (issue 17). */
export function webhookRouter(queue: WebhookQueue | null): Router {
  const r = Router();
  const q = (): WebhookQueue => {
    if (!queue) throw new ApiError('not_found', 'Webhooks are not enabled on this deployment (webhooks.enabled).');
    return queue;
  };
  const endpoint = async (id: string): Promise<Endpoint> => {
    const found = ENDPOINT_ID.test(id) ? await guarded(q().getEndpoint(id)) : null;
    if (!found) throw new ApiError('not_found', `No webhook endpoint ${id}.`);
    return found;
  };

  r.post('/', async (req, res) => {
    const body = validate(createEndpointBody, req.body ?? {});
    const now = new Date().toISOString();
    const secret = newSecret();
    const e: Endpoint = { id: `whe_${ulid()}`, url: body.url, description: body.description ?? null, events: body.events, secrets: [{ secret, expiresAt: null }], createdAt: now, updatedAt: now };
    await guarded(q().putEndpoint(e));
    res.status(201).json({ ...view(e), secret });
  });
  r.get('/', async (_req, res) => {
    res.json({ data: (await guarded(q().listEndpoints())).map((e) => view(e)) });
  });
  r.get('/dead-letters', async (_req, res) => {
    res.json({ data: await guarded(q().deadLetters(DEAD_LETTERS)) });
  });
  r.post('/dead-letters/:key/redeliver', async (req, res) => {
    if (!(await guarded(q().redeliver(req.params.key as string, Date.now())))) throw new ApiError('not_found', `No dead letter ${req.params.key as string}.`);
    res.status(204).end();
  });
  r.get('/:endpointId', async (req, res) => {
    res.json(view(await endpoint(req.params.endpointId as string)));
  });
  r.delete('/:endpointId', async (req, res) => {
    const id = req.params.endpointId as string;
    if (!ENDPOINT_ID.test(id) || !(await guarded(q().deleteEndpoint(id)))) throw new ApiError('not_found', `No webhook endpoint ${id}.`);
    res.status(204).end();
  });
  r.post('/:endpointId/rotate-secret', async (req, res) => {
    const { gracePeriodSeconds } = validate(rotateSecretBody, req.body ?? {});
    const current = await endpoint(req.params.endpointId as string);
    const now = Date.now();
    const secret = newSecret();
    const until = new Date(now + gracePeriodSeconds * 1000).toISOString();
    // Until the grace period ends, each delivery is signed with both secrets (the receiver may hold either).
    const kept = gracePeriodSeconds > 0 ? current.secrets.filter((s) => s.expiresAt === null).map((s) => ({ secret: s.secret, expiresAt: until })) : [];
    const next: Endpoint = { ...current, secrets: [{ secret, expiresAt: null }, ...kept], updatedAt: new Date(now).toISOString() };
    await guarded(q().putEndpoint(next));
    res.json({ ...view(next), secret });
  });
  r.get('/:endpointId/deliveries', async (req, res) => {
    const { limit } = validate(deliveriesQuery, req.query, 'query');
    const e = await endpoint(req.params.endpointId as string);
    res.json({ data: await guarded(q().deliveries(e.id, limit)) });
  });
  return r;
}
