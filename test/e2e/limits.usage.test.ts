import { describe, expect, it } from 'vitest';
import { admin, createTenant, proxied, self } from '../helpers/api.ts';
import { useServers } from '../helpers/servers.ts';

const servers = useServers();

/** Calls of one Redis command so far (INFO commandstats). */
async function calls(command: string): Promise<number> {
  const info = await servers.redis.client.info('commandstats');
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

describe('usage statistics and lastUsedAt', () => {
  it('counts exactly what was sent, per day and month, without a Redis write per request, across a restart', async () => {
    // A long flush interval: nothing reaches Redis until shutdown flushes it.
    const config = { usage: { flushIntervalSeconds: 3600, lastUsedFlushSeconds: 60 } };
    let kg = await servers.keygate({ config });
    const { tenant, key } = await createTenant(kg, { name: 'usage', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 30 }, permissions: ['calls:read', 'usage:read'] });
    const k = made.body.key as string;

    const writesBefore = await calls('hincrby');
    for (let i = 0; i < 35; i++) await proxied(kg, '/v1/calls', { 'x-api-key': k }); // 30 allowed, 5 rate-limited
    await proxied(kg, '/v1/calls', { 'x-api-key': key, 'content-type': 'application/json' }, { method: 'POST', body: '{}' }); // allowed (the * key)
    expect(await calls('hincrby')).toBe(writesBefore); // batched: not one write per request

    expect(await kg.stop('SIGTERM')).toBe(0); // flushes
    kg = await servers.keygate({ config });
    try {
      const today = new Date().toISOString().slice(0, 10);
      const day = await self(kg, key, 'GET', `/usage?granularity=day&from=${today}&to=${today}`);
      expect(day.status).toBe(200);
      expect(day.body.data).toEqual([{ period: today, requests: 36, allowed: 31, denied: 0, rateLimited: 5, sessions: 0, sessionSeconds: 0, refusals: { rate_limited: 5 } }]);
      const month = await self(kg, key, 'GET', `/usage?granularity=month&from=${today}&to=${today}`);
      expect(month.body.data).toEqual([{ period: today.slice(0, 7), requests: 36, allowed: 31, denied: 0, rateLimited: 5, sessions: 0, sessionSeconds: 0, refusals: { rate_limited: 5 } }]);
      // Asked with the * key: `k` spent its 30 requests a minute, and management calls count against them too.
      const perKey = await self(kg, key, 'GET', `/usage?keyId=${made.body.id}&from=${today}&to=${today}`);
      expect(perKey.body.data[0]).toMatchObject({ requests: 35, allowed: 30, rateLimited: 5 });
      const week = await self(kg, key, 'GET', '/usage');
      expect(week.body.data).toHaveLength(30);
      expect(week.body.data.at(-1).period).toBe(today);

      // lastUsedAt was written behind and survived the restart.
      const got = await self(kg, key, 'GET', `/api-keys/${made.body.id}`);
      expect(Date.parse(got.body.lastUsedAt)).toBeGreaterThan(Date.now() - 120_000);

      const overview = await admin(kg, 'GET', '/overview');
      expect(overview.status).toBe(200);
      expect(overview.body.tenants).toBeGreaterThanOrEqual(1);
      expect(overview.body.keys).toBeGreaterThanOrEqual(2);
      expect(overview.body.requestsToday).toBeGreaterThanOrEqual(36);
      expect(tenant.id).toMatch(/^ten_/);

      expect((await self(kg, key, 'GET', '/usage?granularity=week')).status).toBe(400);
      expect((await self(kg, key, 'GET', '/usage?from=2026-02-01&to=2026-01-01')).status).toBe(400);
    } finally {
      await kg.stop();
    }
  });

  it('shows lastUsedAt on reads before it is flushed', async () => {
    const kg = await servers.keygate();
    try {
      const { key, apiKey } = await createTenant(kg, { name: 'lastused' });
      expect(apiKey.lastUsedAt).toBeNull();
      await proxied(kg, '/v1/x', { 'x-api-key': key });
      const got = await self(kg, key, 'GET', `/api-keys/${apiKey.id}`);
      expect(Date.parse(got.body.lastUsedAt)).toBeGreaterThan(Date.now() - 10_000);
    } finally {
      await kg.stop();
    }
  });
});
