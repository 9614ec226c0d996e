import { beforeAll, describe, expect, it } from 'vitest';
import { createTenant, expectError, proxied, rawRequest, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

const servers = useServers();
let fleet: KeygateProcess[];

beforeAll(async () => {
  fleet = await Promise.all([0, 1, 2].map(() => servers.keygate()));
});

/** A counter from the metrics exposition (sum over label sets matching `labels`). */
async function metric(kg: KeygateProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

describe('per-key rate limits', () => {
  it('answers the 6th request of a 5/minute key with 429 and Retry-After; headers count down', async () => {
    const [kg] = fleet as [KeygateProcess];
    const { key } = await createTenant(kg, { name: 'rpm' });
    const made = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 5 } });
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await proxied(kg, '/v1/x', { 'x-api-key': made.body.key });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-limit')).toBe('5');
      remaining.push(r.headers.get('ratelimit-remaining')!);
      expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
      expect(Number(r.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(60);
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const sixth = await proxied(kg, '/v1/x', { 'x-api-key': made.body.key });
    expectError(sixth, 429, 'rate_limited');
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(sixth.headers.get('ratelimit-remaining')).toBe('0');
    // Other keys of the tenant are not affected.
    expect((await proxied(kg, '/v1/x', { 'x-api-key': key })).status).toBe(200);
  });

  it('holds one limit across three replicas (round-robin), then falls back per process when Redis stops', async () => {
    const { key } = await createTenant(fleet[0]!, { name: 'fleet', plan: 'pro' });
    const made = await self(fleet[0]!, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 50 } });
    const k = made.body.key as string;
    let accepted = 0;
    const replies = await Promise.all(Array.from({ length: 150 }, (_, i) => proxied(fleet[i % 3]!, '/v1/x', { 'x-api-key': k })));
    for (const r of replies) if (r.status === 200) accepted++;
    expect(accepted).toBeGreaterThanOrEqual(50);
    expect(accepted).toBeLessThanOrEqual(51); // the limit plus at most 2%
    expect(replies.filter((r) => r.status === 429)).toHaveLength(150 - accepted);

    // Over-limit answers with Redis healthy never reached the insurance limiter.
    expect(await metric(fleet[0]!, 'keygate_rate_limited_total', 'scope="key"')).toBeGreaterThan(0);
    for (const kg of fleet) expect(await metric(kg, 'keygate_store_errors_total', 'op="rate_limit"')).toBe(0);

    const fresh = await self(fleet[0]!, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 20 } });
    const f = fresh.body.key as string;
    for (const kg of fleet) expect((await proxied(kg, '/v1/x', { 'x-api-key': f })).status).toBe(200); // cached everywhere
    await servers.redis.stop();
    try {
      // Each process now applies the limit on its own (documented N-times exposure) and keeps serving.
      for (const kg of fleet) {
        const statuses: number[] = [];
        for (let i = 0; i < 25; i++) statuses.push((await proxied(kg, '/v1/x', { 'x-api-key': f })).status);
        expect(statuses.filter((s) => s === 200)).toHaveLength(20);
        expect(statuses.filter((s) => s === 429)).toHaveLength(5);
        expect(await metric(kg, 'keygate_store_errors_total', 'op="rate_limit"')).toBeGreaterThan(0);
      }
    } finally {
      await servers.redis.start();
    }
  });
});

describe('failed-attempt blocking', () => {
  it('blocks an IP after the threshold, with no store reads while blocked, and a spoofed X-Forwarded-For does not escape', async () => {
    const kg = await startKeygate({
      redisUrl: servers.redis.url,
      upstream: servers.upstream.url,
      config: { limits: { failedAttempts: { maxFailures: 5, windowSeconds: 60, blockSeconds: 30 } } },
    });
    try {
      const { key } = await createTenant(kg, { name: 'brute' });
      // Well-formed keys with valid checksums that the store does not know: each is a store read.
      const made = [await self(kg, key, 'POST', '/api-keys', {}), await self(kg, key, 'POST', '/api-keys', {})];
      for (const m of made) await self(kg, key, 'DELETE', `/api-keys/${m.body.id}`);
      const unknown = made.map((m) => m.body.key);
      for (let i = 0; i < 5; i++) expectError(await proxied(kg, '/v1/x', { 'x-api-key': unknown[i % 2]! }), 401, 'invalid_api_key');
      const readsBefore = await metric(kg, 'keygate_key_cache_lookups_total', 'result="miss"');
      const blocked = await proxied(kg, '/v1/x', { 'x-api-key': unknown[0]! });
      expectError(blocked, 429, 'too_many_failed_attempts');
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      for (let i = 0; i < 10; i++) {
        const r = await rawRequest(`${kg.url}/v1/x`, { headers: { 'x-api-key': unknown[1]!, 'x-forwarded-for': `10.0.0.${i}` } });
        expect(r.status).toBe(429);
      }
      // Even a valid key is refused from a blocked address.
      expect((await proxied(kg, '/v1/x', { 'x-api-key': key })).status).toBe(429);
      expect(await metric(kg, 'keygate_key_cache_lookups_total', 'result="miss"')).toBe(readsBefore);
    } finally {
      await kg.stop();
    }
  });
});
