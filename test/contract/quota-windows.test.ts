import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Identity } from '../../src/auth/verify.ts';
import { configSchema } from '../../src/config/schema.ts';
import { MonthCounter } from '../../src/limits/calendar.ts';
import type { QuotaThreshold } from '../../src/limits/quota-events.ts';
import { RateLimitsImpl } from '../../src/limits/rate-limits.ts';
import type { RateVerdict } from '../../src/limits/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Monthly request quotas on the rate limits' leases (issue 17), against a real redis-server: the month's count is
// what was admitted (plus what a replica leased and has not spent), and a Redis outage continues from the last
// count a replica read rather than from zero.

let redis: RedisServer;
const clients: Redis[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis.close();
});

const plans = configSchema.parse({}).plans; // enterprise: no plan-wide limits
let n = 0;

function identity(rpm: number | null, requestsPerMonth: number): Identity {
  const id = `key_q${n++}`;
  return {
    ok: true,
    key: { id, expiresAt: null, policy: { rateLimit: { requestsPerMinute: rpm, requestsPerDay: null }, quota: { requestsPerMonth, sessionMinutesPerMonth: null } } },
    tenant: { id: `ten_q${id}`, plan: 'enterprise' },
  } as unknown as Identity;
}

async function replica(prefix: string) {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 300, retryStrategy: () => 50 });
  client.on('error', () => {});
  clients.push(client);
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  const events: QuotaThreshold[] = [];
  let fallbacks = 0;
  const months = new MonthCounter({ redis: client, prefix, onFallback: () => fallbacks++ });
  const limits = new RateLimitsImpl({ redis: client, prefix, plans, months, onQuotaThreshold: (e) => events.push(e) });
  return { limits, events, fallbacks: () => fallbacks };
}

const month = () => new Date().toISOString().slice(0, 7);
const counter = (prefix: string, id: Identity) => redis.client.get(`${prefix}{${id.tenant.id}}:q:${month()}:r:${id.key.id}`);

describe('monthly quota windows', () => {
  it("give a request refused by another window back to the month's lease", async () => {
    const { limits } = await replica('qa:');
    const id = identity(2, 10);
    const verdicts: Array<RateVerdict | null> = [];
    for (let i = 0; i < 3; i++) verdicts.push(await limits.consume(id));
    expect(verdicts.map((v) => (v?.ok ? 'ok' : v?.code))).toEqual(['ok', 'ok', 'rate_limited']);
    // The third request was counted in the month before the minute refused it, and is held as a lease here.
    expect(await counter('qa:', id)).toBe('3');
    // A minute later (its count in Redis gone with it), the held request is spent without another count.
    const later = Date.now() + 61_000;
    await redis.client.del(`qa:rl:m:${id.key.id}`);
    vi.useFakeTimers({ toFake: ['Date'], now: later });
    try {
      const fourth = await limits.consume(id);
      expect(fourth?.ok).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    expect(await counter('qa:', id)).toBe('3');
  });

  it('announce 80% and 100% once, from the increment that crossed them', async () => {
    const [one, two] = [await replica('qb:'), await replica('qb:')];
    const id = identity(null, 5);
    const verdicts = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? one : two).limits.consume(id)));
    expect(verdicts.filter((v) => v?.ok)).toHaveLength(5);
    const refused = verdicts.find((v) => !v?.ok);
    expect(refused).toMatchObject({ ok: false, code: 'quota_exceeded', scope: 'key_quota', limit: 5, remaining: 0 });
    const events = [...one.events, ...two.events];
    expect(events.map((e) => e.threshold).sort()).toEqual([100, 80]);
    expect(events[0]).toMatchObject({ type: 'quota.threshold', tenantId: id.tenant.id, keyId: id.key.id, quota: 'requestsPerMonth', limit: 5, period: month() });
    expect(await counter('qb:', id)).toBe('5');
  });

  it('count on from the last value read when Redis is unreachable, not from zero', async () => {
    const r = await replica('qc:');
    const id = identity(null, 10);
    for (let i = 0; i < 7; i++) expect((await r.limits.consume(id))?.ok).toBe(true);
    await redis.stop();
    try {
      const during: boolean[] = [];
      for (let i = 0; i < 6; i++) during.push(Boolean((await r.limits.consume(id))?.ok));
      expect(during).toEqual([true, true, true, false, false, false]); // what was left (3), not a fresh 10
      expect(r.fallbacks()).toBeGreaterThan(0);
    } finally {
      await redis.start();
    }
  });
});
