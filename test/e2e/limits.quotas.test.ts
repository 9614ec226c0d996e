import { beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { admin, createTenant, expectError, proxied, self, type Reply } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// Monthly request quotas across two keygate replicas sharing one Redis: exact at small limits, never
// over at larger ones (leases), 429 quota_exceeded with Retry-After until the calendar month (UTC) ends.

const servers = useServers();
let a: KeygateProcess;
let b: KeygateProcess;

const none = { default: null, max: null };
// A plan whose only limit is a monthly request quota for all of a tenant's keys together.
const plans = {
  metered: {
    maxKeys: 10, requestsPerMinute: none, requestsPerDay: none, maxConcurrentConnections: none,
    requestsPerMonth: { default: null, max: 30 }, sessionMinutesPerMonth: none, maxInFlight: null,
  },
};

beforeAll(async () => {
  [a, b] = await Promise.all([servers.keygate({ config: { plans } }), servers.keygate({ config: { plans } })]);
});

/** Seconds from now until the calendar month (UTC) ends. */
function toMonthEnd(): number {
  const now = new Date();
  return (Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000;
}

const month = () => new Date().toISOString().slice(0, 7);

function expectQuotaRefusal(r: Reply): void {
  expectError(r, 429, 'quota_exceeded');
  const wait = Number(r.headers.get('retry-after'));
  expect(Math.abs(wait - toMonthEnd())).toBeLessThan(30); // until the month ends (generous: the reply took some time)
  expect(r.headers.get('ratelimit-remaining')).toBe('0');
}

/** `quota.threshold` events both replicas logged for one key (or the tenant, keyId null). */
function thresholds(tenantId: string, keyId: string | null): number[] {
  return [a, b].flatMap((kg) =>
    kg
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"quota.threshold"'))
      .map((l) => JSON.parse(l).event)
      .filter((e) => e.tenantId === tenantId && e.keyId === keyId && e.quota === 'requestsPerMonth')
      .map((e) => e.threshold as number),
  );
}

/** Sends `n` proxied requests with `key`, alternating replicas, `concurrency` at a time. */
async function send(key: string | string[], n: number, concurrency = 20): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - i) }, (_, j) => {
      const k = Array.isArray(key) ? key[(i + j) % key.length]! : key;
      return proxied((i + j) % 2 ? b : a, '/v1/calls', { 'x-api-key': k });
    });
    replies.push(...(await Promise.all(batch)));
  }
  return replies;
}

describe('monthly request quotas', () => {
  it('admit exactly requestsPerMonth across two replicas, then 429 quota_exceeded with Retry-After until the month ends', async () => {
    const { tenant, key } = await createTenant(a, { name: 'quota20', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { quota: { requestsPerMonth: 20 } });
    expect(made.status).toBe(201);
    expect(made.body.quota).toEqual({ requestsPerMonth: 20, sessionMinutesPerMonth: 50_000 }); // the other from the plan's default
    const k = made.body.key as string;
    const seenBefore = servers.upstream.seen.filter((s) => s.headers['x-api-key-id'] === made.body.id).length;

    const replies = await send(k, 60);
    const ok = replies.filter((r) => r.status === 200);
    console.log(`requestsPerMonth 20 across 2 replicas: ${ok.length} of 60 admitted`);
    expect(ok).toHaveLength(20);
    expect(servers.upstream.seen.filter((s) => s.headers['x-api-key-id'] === made.body.id).length - seenBefore).toBe(20);
    for (const r of replies.filter((r) => r.status !== 200)) expectQuotaRefusal(r);
    // The quota is the tightest window (the pro plan's per-minute and per-day limits are far higher): RateLimit-* say so.
    for (const r of ok) expect(r.headers.get('ratelimit-limit')).toBe('20');
    expect(ok.map((r) => Number(r.headers.get('ratelimit-remaining'))).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(Number(ok[0]!.headers.get('ratelimit-reset'))).toBeGreaterThan(toMonthEnd() - 30);

    // Both replicas keep refusing; the count in Redis is exactly what was admitted (refusals are given back).
    expectQuotaRefusal(await proxied(a, '/v1/calls', { 'x-api-key': k }));
    expectQuotaRefusal(await proxied(b, '/v1/calls', { 'x-api-key': k }));
    expect(await servers.redis.client.get(`kg:{${tenant.id}}:q:${month()}:r:${made.body.id}`)).toBe('20');

    // The WebSocket door checks it too, before any upstream is dialled.
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/v1/voice/x/stream`, { headers: { 'x-api-key': k } });
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => resolve(-1));
    });
    expect(status).toBe(429);

    // Management requests are not charged nor refused: an exhausted key can still read its usage.
    expect((await self(b, k, 'GET', '/usage')).status).toBe(200);
    expect((await self(a, k, 'GET', '/api-keys/current')).status).toBe(200);

    // quota.threshold: 80% and 100% once each across the fleet, from whichever replica's increment crossed them.
    await expect.poll(() => thresholds(tenant.id, made.body.id).sort()).toEqual([100, 80]);
  });

  it("cap a tenant's keys together at the plan's requestsPerMonth max, across replicas", async () => {
    const { tenant } = await createTenant(a, { name: 'plan30', plan: 'metered' });
    // Keys the platform makes, with no monthly quota of their own: only the tenant's cap holds them. (The first
    // key holds the plan's maximum as its own quota, and its children count against it too: a request refused
    // by both would name either.)
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) keys.push((await admin(a, 'POST', `/tenants/${tenant.id}/api-keys`, {})).body.key as string);
    const replies = await send(keys, 60);
    expect(replies.filter((r) => r.status === 200)).toHaveLength(30);
    for (const r of replies.filter((r) => r.status !== 200)) expectQuotaRefusal(r);
    const refused = replies.find((r) => r.status === 429)!;
    expect(refused.body.error.message).toContain('tenant');
    expect(await servers.redis.client.get(`kg:{${tenant.id}}:q:${month()}:r:*`)).toBe('30');
    await expect.poll(() => thresholds(tenant.id, null).sort()).toEqual([100, 80]);
  });

  it('never admit more than a larger quota whose replicas spend leases locally', async () => {
    const { tenant, key } = await createTenant(a, { name: 'quota1000', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { quota: { requestsPerMonth: 1_000 }, rateLimit: { requestsPerMinute: 6_000 } });
    const k = made.body.key as string;
    const replies = await send(k, 1_200, 40);
    const admitted = replies.filter((r) => r.status === 200).length;
    const counted = Number(await servers.redis.client.get(`kg:{${tenant.id}}:q:${month()}:r:${made.body.id}`));
    console.log(`requestsPerMonth 1000 (leases of 10) across 2 replicas: ${admitted} of 1200 admitted; Redis counted ${counted}`);
    expect(replies.filter((r) => r.status !== 200).every((r) => r.status === 429 && r.body.error.code === 'quota_exceeded')).toBe(true);
    expect(admitted).toBeLessThanOrEqual(1_000);
    // What replicas leased and have not spent is counted but not admitted: at most 1.5 leases each.
    expect(admitted).toBeGreaterThanOrEqual(1_000 - 2 * 15);
    expect(counted).toBeLessThanOrEqual(1_000);
    expect(counted).toBeGreaterThanOrEqual(admitted);
  });

  it('validate a key quota against the plan maximum and keep it on the key', async () => {
    const { key, apiKey } = await createTenant(a, { name: 'validate', plan: 'metered' });
    // The tenant's first key holds the plan's maxima (it can delegate whatever the plan allows).
    expect(apiKey.quota.requestsPerMonth).toBe(30);
    const over = await self(a, key, 'POST', '/api-keys', { quota: { requestsPerMonth: 31 } });
    expectError(over, 400, 'validation_error');
    expect(over.body.error.details).toEqual([{ path: 'quota.requestsPerMonth', message: 'the plan allows at most 30' }]);
    expectError(await self(a, key, 'POST', '/api-keys', { quota: { requestsPerMonth: null } }), 400, 'validation_error');
    const made = await self(a, key, 'POST', '/api-keys', { quota: { requestsPerMonth: 5 } });
    const patched = await self(a, key, 'PATCH', `/api-keys/${made.body.id}`, { quota: { requestsPerMonth: 7 } });
    expect(patched.body.quota).toEqual({ requestsPerMonth: 7, sessionMinutesPerMonth: null });
    expect((await self(a, key, 'GET', `/api-keys/${made.body.id}`)).body.quota).toEqual({ requestsPerMonth: 7, sessionMinutesPerMonth: null });
    const me = await self(a, key, 'GET', '/tenants/me');
    expect(me.body.plan).toMatchObject({ requestsPerMonth: { default: null, max: 30 }, sessionMinutesPerMonth: { default: null, max: null } });
  });
});
