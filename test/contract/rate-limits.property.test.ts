import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '../../src/auth/verify.ts';
import { configSchema } from '../../src/config/schema.ts';
import { RateLimitsImpl } from '../../src/limits/rate-limits.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Over arbitrary arrival patterns (bursts of concurrent requests, spread over three replicas that share one
// real Redis), no window ever admits more than its limit — and it admits exactly the limit when asked enough.

let redis: RedisServer;
const clients: Redis[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis.close();
});

const plans = configSchema.parse({}).plans;
let n = 0;

function identity(keyId: string, rpm: number): Identity {
  return {
    ok: true,
    key: { id: keyId, expiresAt: null, policy: { rateLimit: { requestsPerMinute: rpm, requestsPerDay: null } } },
    tenant: { id: `ten_${keyId}`, plan: 'enterprise' },
  } as unknown as Identity;
}

describe('rate limits under arbitrary arrival patterns', () => {
  it('never admits more than the limit in a window, across replicas', async () => {
    const replicas = [0, 1, 2].map(() => {
      const client = new Redis(redis.url, { enableAutoPipelining: true });
      clients.push(client);
      let fallbacks = 0;
      const limits = new RateLimitsImpl({ redis: client, prefix: 'prop:', plans, onFallback: () => fallbacks++ });
      return { limits, fallbacks: () => fallbacks };
    });
    await Promise.all(clients.map((c) => (c.status === 'ready' ? null : new Promise((r) => c.once('ready', r)))));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.record({ replica: fc.integer({ min: 0, max: 2 }), burst: fc.integer({ min: 1, max: 15 }), pauseMs: fc.integer({ min: 0, max: 5 }) }), { minLength: 1, maxLength: 12 }),
        async (limit, arrivals) => {
          const id = identity(`key_prop${n++}`, limit);
          let admitted = 0;
          let sent = 0;
          for (const { replica, burst, pauseMs } of arrivals) {
            const verdicts = await Promise.all(Array.from({ length: burst }, () => replicas[replica]!.limits.consume(id)));
            sent += burst;
            for (const v of verdicts) {
              if (v?.ok) admitted++;
              else expect(v?.retryAfterSeconds).toBeGreaterThan(0);
            }
            if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
          }
          expect(admitted).toBe(Math.min(sent, limit));
        },
      ),
      { numRuns: 40 },
    );
    // Redis was healthy throughout: no answer came from the insurance limiters.
    expect(replicas.map((r) => r.fallbacks())).toEqual([0, 0, 0]);
  });
});

describe('rate-limit leases', () => {
  it('serve a busy key from local leases (few Redis calls), never beyond the limit across replicas', async () => {
    const make = () => {
      const client = new Redis(redis.url, { enableAutoPipelining: true });
      clients.push(client);
      return new RateLimitsImpl({ redis: client, prefix: 'lease:', plans });
    };
    const replicas = [make(), make(), make()];
    await Promise.all(clients.map((c) => (c.status === 'ready' ? null : new Promise((r) => c.once('ready', r)))));
    const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.client.info('commandstats'))?.[1] ?? 0);

    const busy = identity('key_lease_busy', 10_000); // leases of 100
    const before = await calls();
    const verdicts = await Promise.all(Array.from({ length: 900 }, (_, i) => replicas[i % 3]!.consume(busy)));
    expect(verdicts.every((v) => v?.ok)).toBe(true);
    const used = (await calls()) - before;
    expect(used).toBeLessThanOrEqual(Math.ceil(900 / 100) + 3); // one call per lease per replica, not per request

    // Near the limit the leases shrink to single requests: the fleet admits exactly the limit.
    const tight = identity('key_lease_tight', 300); // leases of 3
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => replicas[i % 3]!.consume(tight)));
    const admitted = results.filter((v) => v?.ok).length;
    expect(admitted).toBeLessThanOrEqual(300);
    expect(admitted).toBeGreaterThanOrEqual(300 - 3 * 3); // at most one unspent lease per replica
  });

  it('grow with a busy key far from its limit: about a call a second per window, not one per 1,000 requests', async () => {
    const client = new Redis(redis.url, { enableAutoPipelining: true });
    clients.push(client);
    await new Promise((r) => client.once('ready', r));
    const limits = new RateLimitsImpl({ redis: client, prefix: 'grow:', plans });
    const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.client.info('commandstats'))?.[1] ?? 0);
    const busy = identity('key_lease_grow', 100_000_000); // leases of 1,000 at first, up to 1,000,000
    const before = await calls();
    let admitted = 0;
    for (let i = 0; i < 100_000; i++) {
      const v = limits.consume(busy);
      if ((v instanceof Promise ? await v : v)?.ok) admitted++;
    }
    expect(admitted).toBe(100_000);
    // Leases of 1,000 would take 100 calls. Renewals follow the window's rate (requests counted over the time since
    // it began, at least a second): they double while the first second lasts, then cover a second of traffic.
    expect((await calls()) - before).toBeLessThanOrEqual(40);
  });

  it('do not grow once a window is half full: a replica then holds at most 1.5 leases of the first size unspent', async () => {
    const client = new Redis(redis.url, { enableAutoPipelining: true });
    clients.push(client);
    await new Promise((r) => client.once('ready', r));
    const limits = new RateLimitsImpl({ redis: client, prefix: 'fill:', plans });
    const key = identity('key_lease_fill', 300_000); // leases of 1,000; renewals up to 3,000 while under half full
    let admitted = 0;
    let mostUnspent = 0;
    for (let i = 1; i <= 290_000; i++) {
      const v = limits.consume(key);
      if ((v instanceof Promise ? await v : v)?.ok) admitted++;
      if (i > 160_000 && i % 1_000 === 0) {
        await new Promise((r) => setTimeout(r, 5)); // the renewal under way lands
        // Counted in Redis and not admitted: what this replica holds unspent (lost if its traffic stopped now).
        mostUnspent = Math.max(mostUnspent, Number(await redis.client.get('fill:rl:m:key_lease_fill')) - admitted);
      }
    }
    expect(admitted).toBe(290_000);
    expect(mostUnspent).toBeGreaterThan(0);
    expect(mostUnspent).toBeLessThanOrEqual(1_500);
  });

  it("do not spend a key's other windows on requests that a window known to be full refuses", async () => {
    const client = new Redis(redis.url, { enableAutoPipelining: true });
    clients.push(client);
    await new Promise((r) => client.once('ready', r));
    const limits = new RateLimitsImpl({ redis: client, prefix: 'union:', plans });
    const key = {
      ok: true,
      key: { id: 'key_union', expiresAt: null, policy: { rateLimit: { requestsPerMinute: 5, requestsPerDay: 100 } } },
      tenant: { id: 'ten_union', plan: 'enterprise' },
    } as unknown as Identity;
    let admitted = 0;
    for (let i = 0; i < 300; i++) if ((await limits.consume(key))?.ok) admitted++;
    expect(admitted).toBe(5);
    // The per-day window holds the five admitted requests and the one refusal that only Redis could tell, not
    // the 295 refusals (which would have filled it: the key shut out for the rest of the day).
    expect(Number(await redis.client.get('union:rl:d:key_union'))).toBe(6);
  });

  it('answer a full window locally until it ends, whatever lease size it takes (no Redis call per refusal)', async () => {
    const make = () => {
      const client = new Redis(redis.url, { enableAutoPipelining: true });
      clients.push(client);
      return new RateLimitsImpl({ redis: client, prefix: 'full:', plans });
    };
    const [a, b] = [make(), make()];
    await Promise.all(clients.map((c) => (c.status === 'ready' ? null : new Promise((r) => c.once('ready', r)))));
    const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.client.info('commandstats'))?.[1] ?? 0);
    const key = identity('key_full', 500); // leases of 5
    let admitted = 0;
    for (let i = 0; i < 600; i++) if ((await a.consume(key))?.ok) admitted++;
    expect(admitted).toBe(500);
    // Another replica meets the window already full: it asks Redis once (for a lease), then answers itself.
    const before = await calls();
    for (let i = 0; i < 200; i++) {
      const v = await b.consume(key);
      expect(v && !v.ok && v.retryAfterSeconds > 0).toBe(true);
    }
    expect((await calls()) - before).toBeLessThanOrEqual(1);
  });
});
