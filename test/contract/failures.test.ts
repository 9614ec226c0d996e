import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureBlockImpl, LOCAL_AFTER_ERROR_MS } from '../../src/limits/failures.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Failed-authentication counting per client IP against a real Redis: exact at the threshold, and a burst of
// failures from one address costs a few Redis calls, not one (or four) per attempt.

let redis: RedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { enableAutoPipelining: true });
  await new Promise((r) => client.once('ready', r));
});
afterAll(async () => {
  client.disconnect();
  await redis.close();
});

let n = 0;
const block = (maxFailures: number) =>
  new FailureBlockImpl({ redis: client, prefix: `fail${n++}:`, cfg: { maxFailures, windowSeconds: 60, blockSeconds: 30 } });

/** Commands Redis has run, the INFO calls that ask excluded. */
async function commands(): Promise<number> {
  const stats = await redis.client.info('commandstats');
  return [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].reduce((sum, [, name, calls]) => (name === 'info' ? sum : sum + Number(calls)), 0);
}

describe('failed-attempt counting', () => {
  it('counts every failure of a concurrent burst, in a few Redis calls', async () => {
    const failures = block(1_000);
    const before = await commands();
    const results = await Promise.all(Array.from({ length: 300 }, () => failures.fail('10.0.0.1')));
    const used = (await commands()) - before;
    expect(results.every((s) => s === 0)).toBe(true);
    expect(failures.blockedFor('10.0.0.1')).toBe(0);
    // All 300 are in Redis (rate-limiter-flexible keeps the count under `<prefix>fail:<ip>`)…
    expect(await redis.client.get(`fail${n - 1}:fail:10.0.0.1`)).toBe('300');
    // …sent as the first failure and then one batch of those that waited for it.
    expect(used).toBeLessThanOrEqual(20);
  });

  it('blocks on exactly the failure that reaches the threshold, within a burst or after it', async () => {
    const one = block(50);
    await Promise.all(Array.from({ length: 49 }, () => one.fail('10.0.0.2')));
    expect(one.blockedFor('10.0.0.2')).toBe(0);
    expect(await one.fail('10.0.0.2')).toBe(30);
    expect(one.blockedFor('10.0.0.2')).toBeGreaterThan(0);

    const burst = block(10);
    const results = await Promise.all(Array.from({ length: 25 }, () => burst.fail('10.0.0.3')));
    expect(results.some((s) => s > 0)).toBe(true);
    expect(burst.blockedFor('10.0.0.3')).toBeGreaterThan(0);
  });

  it('keeps addresses apart: one address blocked, the others counted on their own', async () => {
    const failures = block(20);
    await Promise.all([
      ...Array.from({ length: 20 }, () => failures.fail('10.0.1.1')),
      ...Array.from({ length: 19 }, () => failures.fail('10.0.1.2')),
      ...Array.from({ length: 5 }, () => failures.fail('10.0.1.3')),
    ]);
    expect(failures.blockedFor('10.0.1.1')).toBeGreaterThan(0);
    expect(failures.blockedFor('10.0.1.2')).toBe(0);
    expect(failures.blockedFor('10.0.1.3')).toBe(0);
    const prefix = `fail${n - 1}:fail:`;
    expect(await redis.client.mget(`${prefix}10.0.1.2`, `${prefix}10.0.1.3`)).toEqual(['19', '5']);
  });

  it('counts in this process, without waiting for Redis, while Redis does not answer; then uses Redis again', async () => {
    // Every 401 waited for the Redis node holding its counter. Here only the first waits.
    const stalled = await startRedis();
    const c = new Redis(stalled.url, { enableAutoPipelining: true, commandTimeout: 1_000, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    c.on('error', () => {});
    await new Promise((r) => c.once('ready', r));
    const failures = new FailureBlockImpl({ redis: c, prefix: 'x:', cfg: { maxFailures: 5, windowSeconds: 60, blockSeconds: 30 } });
    stalled.pause();
    try {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        expect(await failures.fail(`10.9.0.${i}`)).toBe(0);
        times.push(performance.now() - started);
      }
      expect(times[0]).toBeGreaterThanOrEqual(900); // the command timeout
      expect(Math.max(...times.slice(1))).toBeLessThan(500); // counted here at once
      // Still counted: the fifth failure from one address blocks it.
      for (let i = 0; i < 4; i++) expect(await failures.fail('10.9.1.1')).toBe(0);
      expect(await failures.fail('10.9.1.1')).toBe(30);
      expect(failures.blockedFor('10.9.1.1')).toBeGreaterThan(0);
    } finally {
      stalled.resume();
    }
    await new Promise((r) => setTimeout(r, LOCAL_AFTER_ERROR_MS + 100));
    await failures.fail('10.9.2.1');
    expect(await stalled.client.get('x:fail:10.9.2.1')).toBe('1');
    c.disconnect();
    await stalled.close();
  });
});
