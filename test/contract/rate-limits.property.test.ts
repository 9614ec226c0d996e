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
    key: { id: keyId, rateLimit: { requestsPerMinute: rpm, requestsPerDay: null } },
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
