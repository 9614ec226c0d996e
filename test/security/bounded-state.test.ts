import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '../../src/auth/verify.ts';
import { configSchema } from '../../src/config/schema.ts';
import { RateLimitsImpl } from '../../src/limits/rate-limits.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Issue 13 (row 13, second half): rate-limiter objects were made per distinct limit value and never dropped, so
// PATCHing a key through many limit values grew the process for good. Against a real Redis: however many
// distinct limits are used, the objects held stay bounded, and the counts (which live in Redis) are unchanged.

let redis: RedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { enableAutoPipelining: true });
  await new Promise((r) => client.once('ready', r));
});
afterAll(async () => {
  client?.disconnect();
  await redis?.close();
});

const plans = configSchema.parse({}).plans;

/** A fresh key record (as the key cache makes after a PATCH) with its own per-minute and per-day limits. */
function record(keyId: string, rpm: number | null, rpd: number | null): Identity {
  return {
    ok: true,
    key: { id: keyId, expiresAt: null, policy: { rateLimit: { requestsPerMinute: rpm, requestsPerDay: rpd } } },
    tenant: { id: `ten_${keyId}`, plan: 'enterprise' },
  } as unknown as Identity;
}

describe('rate-limiter state is bounded', () => {
  it('holds a bounded number of limiter objects however many distinct limits keys are given', async () => {
    const limits = new RateLimitsImpl({ redis: client, prefix: 'bounded:', plans });
    // One key PATCHed through 3,000 per-minute and per-day values, each used once (6,000 distinct sizes).
    for (let i = 1; i <= 3_000; i++) {
      const v = await limits.consume(record('key_patched', i, 100_000 + i));
      expect(v?.ok).toBe(true);
    }
    const { limiters, specs } = limits.size;
    expect(limiters).toBeLessThanOrEqual(2); // one per period, not one per value (was 6,000)
    expect(specs).toBeLessThanOrEqual(1_024);
  });

  it('keeps counting a window whose shared objects were evicted in between (the count lives in Redis)', async () => {
    const limits = new RateLimitsImpl({ redis: client, prefix: 'evicted:', plans });
    const admitted = async (id: Identity, n: number) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if ((await limits.consume(id))?.ok) ok++;
      return ok;
    };
    expect(await admitted(record('key_steady', 5, null), 3)).toBe(3);
    // Thousands of other sizes in between: whatever was cached for the 5/minute size is long gone.
    for (let i = 1_000; i < 4_000; i++) await limits.consume(record(`key_other${i % 7}`, i, null));
    expect(limits.size.limiters).toBeLessThanOrEqual(2);
    // A new record of the same key (a PATCH of its name, say) with the same limit: 2 more, then refused.
    const again = record('key_steady', 5, null);
    expect(await admitted(again, 2)).toBe(2);
    const refused = await limits.consume(again);
    expect(refused?.ok).toBe(false);
    expect(refused && !refused.ok && refused.retryAfterSeconds).toBeGreaterThan(0);
    // One counter per period and subject, whatever the limit.
    expect(Number(await redis.client.get('evicted:rl:m:key_steady'))).toBe(6);
  });

  it('keeps the same bound on the embedded (no Redis) store, where the limiter itself holds the counts', async () => {
    const limits = new RateLimitsImpl({ redis: null, prefix: 'memory:', plans });
    const steady = record('key_mem', 4, null);
    expect((await limits.consume(steady))?.ok).toBe(true);
    for (let i = 1; i <= 3_000; i++) await limits.consume(record('key_mem_patched', i, i + 10));
    expect(limits.size.limiters).toBeLessThanOrEqual(2);
    // key_mem's count survived the churn: 3 more of its 4, then refused.
    const renamed = record('key_mem', 4, null);
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push((await limits.consume(renamed))?.ok);
    expect(verdicts).toEqual([true, true, true, false]);
  });
});
