import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Usage } from '../../src/limits/usage.ts';
import type { Logger } from '../../src/ops/logger.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { KeyStore } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Session metering with an injectable clock, against a real redis-server and the memory store: a
// session's seconds are counted per key and tenant per day and month, split at every UTC midnight it spans,
// beside the number of sessions and the request counts; shutdown counts open sessions up to then.

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

const logger = { warn: () => {} } as unknown as Logger;
let n = 0;

const factories: Array<[string, () => KeyStore]> = [
  ['memory', () => new MemoryStore({ auditMaxEntries: 100 })],
  [
    'redis',
    () => new RedisStore({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix: `m${n++}:`, channel: `inv-m${n}`, auditMaxEntries: 100 }),
  ],
];

describe.each(factories)('session metering: %s', (_name, make) => {
  let store: KeyStore;
  let clock: number;
  let seconds: number;
  let usage: Usage;
  const tenantId = 'ten_01JZ0000000000000000000000';
  const at = (iso: string) => (clock = Date.parse(iso));

  beforeEach(() => {
    store = make();
    seconds = 0;
    // Flush timers an hour apart: every flush in these tests is asked for.
    usage = new Usage(store, logger, { flushIntervalMs: 3_600_000, lastUsedIntervalMs: 3_600_000, now: () => clock, onSessionSeconds: (s) => (seconds += s) });
    return async () => {
      await usage.close();
      await store.close();
    };
  });

  const read = (granularity: 'day' | 'month', from: string, to: string, keyId?: string) => usage.read(tenantId, { granularity, from, to, keyId });

  it('splits a session that spans midnight across the two days, and the month boundary across the two months', async () => {
    at('2026-03-31T23:59:30Z');
    usage.record(tenantId, 'key_a', 'allowed');
    const s = usage.openSession(tenantId, 'key_a');
    at('2026-04-01T00:00:45Z');
    await usage.flushCounts();
    expect(await read('day', '2026-03-31', '2026-04-01')).toEqual([
      { period: '2026-03-31', requests: 1, allowed: 1, denied: 0, rateLimited: 0, sessions: 1, sessionSeconds: 30, refusals: {} },
      { period: '2026-04-01', requests: 0, allowed: 0, denied: 0, rateLimited: 0, sessions: 0, sessionSeconds: 45, refusals: {} },
    ]);
    at('2026-04-01T00:01:00.250Z');
    s.close();
    s.close(); // once
    await usage.flushCounts();
    expect((await read('day', '2026-04-01', '2026-04-01'))[0]).toMatchObject({ sessions: 0, sessionSeconds: 60.25 });
    expect(await read('month', '2026-03-01', '2026-04-30')).toEqual([
      { period: '2026-03', requests: 1, allowed: 1, denied: 0, rateLimited: 0, sessions: 1, sessionSeconds: 30, refusals: {} },
      { period: '2026-04', requests: 0, allowed: 0, denied: 0, rateLimited: 0, sessions: 0, sessionSeconds: 60.25, refusals: {} },
    ]);
    expect((await read('day', '2026-03-31', '2026-03-31', 'key_a'))[0]).toMatchObject({ sessions: 1, sessionSeconds: 30 });
    expect(seconds).toBeCloseTo(90.25, 6);
    const overview = await usage.overview();
    expect(overview).toMatchObject({ requestsToday: 0, sessionsToday: 0, sessionSecondsToday: 60.25 });
  });

  it('carries time of the day before to that day when a request after midnight has moved the key on', async () => {
    at('2026-06-10T23:59:50Z');
    const s = usage.openSession(tenantId, 'key_b');
    at('2026-06-11T00:00:05Z');
    usage.record(tenantId, 'key_b', 'rateLimited'); // the key's counts now belong to June 11
    at('2026-06-11T00:00:07Z');
    s.close();
    await usage.flushCounts();
    expect(await read('day', '2026-06-10', '2026-06-11', 'key_b')).toEqual([
      { period: '2026-06-10', requests: 0, allowed: 0, denied: 0, rateLimited: 0, sessions: 1, sessionSeconds: 10 },
      { period: '2026-06-11', requests: 1, allowed: 0, denied: 0, rateLimited: 1, sessions: 0, sessionSeconds: 7 },
    ]);
  });

  it('splits a session of several days at each midnight, whenever it is flushed', async () => {
    at('2026-07-01T12:00:00Z');
    const s = usage.openSession(tenantId, 'key_c');
    at('2026-07-03T06:00:00Z'); // no flush in between: one accrual covers three days
    await usage.flushCounts();
    at('2026-07-03T06:00:01Z');
    s.close();
    await usage.flushCounts();
    const days = await read('day', '2026-07-01', '2026-07-03', 'key_c');
    expect(days.map((d) => d.sessionSeconds)).toEqual([12 * 3600, 24 * 3600, 6 * 3600 + 1]);
    expect(days.map((d) => d.sessions)).toEqual([1, 0, 0]);
  });

  it('counts open sessions up to the moment of shutdown, and nothing after', async () => {
    at('2026-08-05T10:00:00Z');
    const s = usage.openSession(tenantId, 'key_d');
    usage.openSession(tenantId, 'key_e');
    at('2026-08-05T10:00:20Z');
    await usage.close(); // flushes: both sessions' 20 s so far
    at('2026-08-05T10:05:00Z');
    s.close(); // the socket closing after shutdown adds nothing
    await usage.flushCounts();
    const reread = new Usage(store, logger, { flushIntervalMs: 3_600_000, lastUsedIntervalMs: 3_600_000, now: () => clock });
    try {
      expect((await reread.read(tenantId, { granularity: 'day', from: '2026-08-05', to: '2026-08-05' }))[0]).toMatchObject({ sessions: 2, sessionSeconds: 40 });
    } finally {
      await reread.close();
    }
  });
});
