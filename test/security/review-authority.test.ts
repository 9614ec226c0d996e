import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Adversarial review: authority over keys compares permissions only. A key's other
// restrictions — the assistants it may use, inline assistants, its rate limits — are not part of it, so a key
// that holds `api-keys:write` undoes the restrictions a wider key (or the admin) put on it: by a PATCH of itself
// (`current`, over which a key always has authority) or by minting a key without them. The rule: "A PATCH never
// widens"; the README narrows that to permissions only.

let redis: RedisServer;
let kg: KeygateProcess;
let tenantId: string;

beforeAll(async () => {
  redis = await startRedis();
  kg = await startKeygate({ redisUrl: redis.url });
  const t = await createTenant(kg, { name: 'authority-review', plan: 'pro', maxKeys: 30 });
  tenantId = t.tenant.id as string;
});
afterAll(async () => {
  await kg?.stop();
  await redis?.close();
});

/** A key the admin restricted to one assistant, no inline assistants and 10 requests a minute, that may manage keys. */
async function restrictedKey(): Promise<{ id: string; key: string }> {
  const r = await admin(kg, 'POST', `/tenants/${tenantId}/api-keys`, {
    permissions: ['api-keys:read', 'api-keys:write', 'calls:write'],
    allowedAssistants: ['asst_ok'],
    transientAssistant: false,
    rateLimit: { requestsPerMinute: 10 },
  });
  expect(r.status).toBe(201);
  return { id: r.body.id as string, key: r.body.key as string };
}

describe('a key cannot shed the restrictions it was given', () => {
  it('PATCH current cannot lift allowedAssistants or allow inline assistants', async () => {
    const { key } = await restrictedKey();
    const r = await self(kg, key, 'PATCH', '/api-keys/current', { allowedAssistants: null, transientAssistant: true });
    const after = (await self(kg, key, 'GET', '/api-keys/current')).body;
    // Today: 200, and the key now reads { allowedAssistants: null, transientAssistant: true, ... }.
    expect({ allowedAssistants: after.allowedAssistants, transientAssistant: after.transientAssistant, status: r.status >= 400 }).toEqual({
      allowedAssistants: ['asst_ok'],
      transientAssistant: false,
      status: true,
    });
  });

  it('PATCH current cannot raise the rate limit it was given', async () => {
    const { key } = await restrictedKey();
    const r = await self(kg, key, 'PATCH', '/api-keys/current', { rateLimit: { requestsPerMinute: 1000 } });
    const after = (await self(kg, key, 'GET', '/api-keys/current')).body;
    // Today: 200 and requestsPerMinute 1000 (the plan's maximum is the only bound).
    expect({ requestsPerMinute: after.rateLimit.requestsPerMinute, refused: r.status >= 400 }).toEqual({ requestsPerMinute: 10, refused: true });
  });

  it('a key restricted to assistants cannot mint a key that may use every assistant', async () => {
    const { key } = await restrictedKey();
    const r = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:write'] });
    // Today: 201 with allowedAssistants null and transientAssistant as asked — a key wider than its creator.
    if (r.status === 201) expect(r.body.allowedAssistants).toEqual(['asst_ok']);
    else expect(r.status).toBe(403);
    const inline = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:write'], allowedAssistants: ['asst_other'], transientAssistant: true });
    expect(inline.status).toBeGreaterThanOrEqual(400);
  });
});

describe('listing keys never names a key the caller has no authority over', () => {
  it('nextCursor is not the id of a wider key', async () => {
    const t = await createTenant(kg, { name: 'cursor-review', plan: 'pro', maxKeys: 30 });
    const reader = (await self(kg, t.key, 'POST', '/api-keys', { permissions: ['api-keys:read'] })).body as { id: string; key: string };
    const wider = new Set<string>([t.apiKey.id as string]);
    for (let i = 0; i < 12; i++) wider.add((await self(kg, t.key, 'POST', '/api-keys', { permissions: ['*'] })).body.id as string);
    const cursors: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const r = await self(kg, reader.key, 'GET', `/api-keys?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      for (const k of r.body.data as Array<{ id: string }>) expect(k.id).toBe(reader.id);
      cursor = r.body.nextCursor as string | null;
      if (cursor === null) break;
      cursors.push(cursor);
    }
    // Today: after the reader's own key, a page with no keys whose nextCursor is the 10th wider key's id.
    expect(cursors.filter((c) => wider.has(c))).toEqual([]);
  });
});
