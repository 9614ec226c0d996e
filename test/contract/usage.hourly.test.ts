import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Usage } from '../../src/limits/usage.ts';
import type { Logger } from '../../src/ops/logger.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { KeyStore } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The hourly usage series (the console's charts) beside the daily and monthly counters: recorded by the same
// batched flush, on a real redis-server and the memory store; bounded to 14 days of queries and 15 days kept.

let redis: RedisServer;
let raw: Redis;
beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  await redis.close();
});

const logger = { warn: () => {} } as unknown as Logger;
let n = 0;
const prefixes: string[] = [];

const factories: Array<[string, () => KeyStore]> = [
  ['memory', () => new MemoryStore({ auditMaxEntries: 100 })],
  [
    'redis',
    () => {
      const prefix = `h${n++}:`;
      prefixes.push(prefix);
      return new RedisStore({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix, channel: `inv-h${n}`, auditMaxEntries: 100 });
    },
  ],
];

describe.each(factories)('hourly usage: %s', (name, make) => {
  let store: KeyStore;
  let clock: number;
  let usage: Usage;
  const tenantId = 'ten_01JZ0000000000000000000001';
  const at = (iso: string) => (clock = Date.parse(iso));

  beforeEach(() => {
    store = make();
    usage = new Usage(store, logger, { flushIntervalMs: 3_600_000, lastUsedIntervalMs: 3_600_000, now: () => clock });
    return async () => {
      await usage.close();
      await store.close();
    };
  });

  it('counts requests per hour, and the same requests per day and month', async () => {
    at('2026-11-22T10:15:00Z');
    usage.record(tenantId, 'key_a', 'allowed');
    usage.record(tenantId, 'key_a', 'rateLimited');
    at('2026-11-22T11:05:00Z');
    usage.record(tenantId, 'key_a', 'allowed');
    usage.record(tenantId, 'key_b', 'denied');
    at('2026-11-22T12:30:00Z');
    const hours = await usage.read(tenantId, { granularity: 'hour', from: '2026-11-22', to: '2026-11-22' });
    expect(hours).toHaveLength(13); // 00 … 12: hours after the current one are not listed
    expect(hours.find((h) => h.period === '2026-11-22T10')).toMatchObject({ requests: 2, allowed: 1, rateLimited: 1 });
    expect(hours.find((h) => h.period === '2026-11-22T11')).toMatchObject({ requests: 2, allowed: 1, denied: 1 });
    expect(hours.filter((h) => h.requests > 0)).toHaveLength(2);
    const keyA = await usage.read(tenantId, { granularity: 'hour', from: '2026-11-22', to: '2026-11-22', keyId: 'key_a' });
    expect(keyA.find((h) => h.period === '2026-11-22T11')?.requests).toBe(1);
    expect((await usage.read(tenantId, { granularity: 'day', from: '2026-11-22', to: '2026-11-22' }))[0]).toMatchObject({ requests: 4, allowed: 2 });
    expect((await usage.read(tenantId, { granularity: 'month', from: '2026-11-01', to: '2026-11-30' }))[0]).toMatchObject({ requests: 4 });
    // A page of keys in one read (the console's quota-use column).
    const keys = await usage.readKeys(tenantId, '2026-11', ['key_a', 'key_b', 'key_c']);
    expect(keys.map((k) => [k.keyId, k.requests, k.denied])).toEqual([['key_a', 3, 0], ['key_b', 1, 1], ['key_c', 0, 0]]);
    // Fleet totals stay per day and month: an hour adds nothing to them.
    expect((await store.readTotals('2026-11-22')).allowed).toBeGreaterThanOrEqual(2);
    expect((await store.readTotals('2026-11-22T10')).allowed).toBe(0);
  });

  it('counts a tenant\'s refusals by code per hour, day and month, in the same flush, once however often it is sent', async () => {
    at('2026-11-22T10:15:00Z');
    usage.record(tenantId, 'key_a', 'rateLimited', 'rate_limited');
    usage.record(tenantId, 'key_a', 'rateLimited', 'rate_limited');
    usage.record(tenantId, 'key_b', 'rateLimited', 'quota_exceeded');
    usage.record(tenantId, 'key_b', 'denied', 'key_disabled');
    usage.record(tenantId, 'key_b', 'allowed');
    await usage.flushCounts();
    at('2026-11-22T11:05:00Z');
    usage.record(tenantId, 'key_a', 'denied', 'insufficient_permissions');
    at('2026-11-22T11:30:00Z');
    const hours = await usage.read(tenantId, { granularity: 'hour', from: '2026-11-22', to: '2026-11-22' });
    expect(hours.find((h) => h.period === '2026-11-22T10')?.refusals).toEqual({ rate_limited: 2, quota_exceeded: 1, key_disabled: 1 });
    expect(hours.find((h) => h.period === '2026-11-22T11')?.refusals).toEqual({ insufficient_permissions: 1 });
    expect(hours.find((h) => h.period === '2026-11-22T09')?.refusals).toEqual({});
    expect((await usage.read(tenantId, { granularity: 'day', from: '2026-11-22', to: '2026-11-22' }))[0]?.refusals).toEqual({ rate_limited: 2, quota_exceeded: 1, key_disabled: 1, insufficient_permissions: 1 });
    expect((await usage.read(tenantId, { granularity: 'month', from: '2026-11-01', to: '2026-11-30' }))[0]?.refusals).toEqual({ rate_limited: 2, quota_exceeded: 1, key_disabled: 1, insufficient_permissions: 1 });
    // Counted per tenant: a key's rows have no refusals by code.
    expect((await usage.read(tenantId, { granularity: 'hour', from: '2026-11-22', to: '2026-11-22', keyId: 'key_a' }))[10]).not.toHaveProperty('refusals');
    // A batch sent again (a flush that timed out after it was stored) is counted once, codes included.
    const batch = { writer: 'w', seq: 1, deltas: [{ tenantId, keyId: 'key_c', period: '2026-11-22T09', counts: { allowed: 0, denied: 0, rateLimited: 3, sessions: 0, sessionMs: 0 }, refused: { rate_limited: 3 } }] };
    await store.addUsage(batch);
    await store.addUsage(batch);
    expect((await store.readRefusals(tenantId, ['2026-11-22T09'], ['rate_limited', 'quota_exceeded'])).get('2026-11-22T09')).toEqual({ rate_limited: 3 });
  });

  it("splits a session's time at every hour it spans", async () => {
    at('2026-11-22T10:30:00Z');
    const s = usage.openSession(tenantId, 'key_a');
    at('2026-11-22T12:15:00Z');
    s.close();
    const hours = await usage.read(tenantId, { granularity: 'hour', from: '2026-11-22', to: '2026-11-22' });
    const secondsIn = (hour: string) => hours.find((h) => h.period === `2026-11-22T${hour}`)?.sessionSeconds;
    expect([secondsIn('10'), secondsIn('11'), secondsIn('12')]).toEqual([1_800, 3_600, 900]);
    expect(hours.find((h) => h.period === '2026-11-22T10')?.sessions).toBe(1);
    expect((await usage.read(tenantId, { granularity: 'day', from: '2026-11-22', to: '2026-11-22' }))[0]?.sessionSeconds).toBe(6_300);
  });

  it('answers at most 14 days of hours, 7 by default ending with the current hour', async () => {
    at('2026-11-22T10:15:00Z');
    const week = await usage.read(tenantId, { granularity: 'hour' });
    expect(week).toHaveLength(168);
    expect(week.at(-1)?.period).toBe('2026-11-22T10');
    expect(await usage.read(tenantId, { granularity: 'hour', from: '2026-11-09', to: '2026-11-22' })).toHaveLength(13 * 24 + 11);
    await expect(usage.read(tenantId, { granularity: 'hour', from: '2026-11-08', to: '2026-11-22' })).rejects.toMatchObject({ code: 'validation_error' });
    await expect(usage.read(tenantId, { granularity: 'hour', from: '2026-11-23', to: '2026-11-22' })).rejects.toMatchObject({ code: 'validation_error' });
  });

  it('keeps hours 15 days and days 400 (the bound on the hourly series)', async () => {
    at(new Date().toISOString());
    usage.record(tenantId, 'key_a', 'allowed');
    await usage.flushCounts();
    const hour = new Date(clock).toISOString().slice(0, 13);
    if (name === 'redis') {
      const prefix = prefixes.at(-1)!;
      const ttl = await raw.ttl(`${prefix}{${tenantId}}:u:${hour}`);
      expect(ttl).toBeGreaterThan(14 * 86_400);
      expect(ttl).toBeLessThanOrEqual(15 * 86_400);
      expect(await raw.ttl(`${prefix}{${tenantId}}:u:${hour.slice(0, 10)}`)).toBeGreaterThan(399 * 86_400);
      expect(await raw.exists(`${prefix}u:${hour}`)).toBe(0);
    } else {
      // The memory store forgets an hour older than 15 days when a later batch arrives.
      await store.addUsage({ writer: 'old', seq: 1, deltas: [{ tenantId, keyId: 'key_a', period: '2026-01-01T00', counts: { allowed: 1, denied: 0, rateLimited: 0, sessions: 0, sessionMs: 0 } }] });
      await store.addUsage({ writer: 'old', seq: 2, deltas: [{ tenantId, keyId: 'key_a', period: hour, counts: { allowed: 1, denied: 0, rateLimited: 0, sessions: 0, sessionMs: 0 } }] });
      expect((await store.readUsage(tenantId, ['2026-01-01T00'], null)).get('2026-01-01T00')?.allowed).toBe(0);
      expect((await store.readUsage(tenantId, [hour], null)).get(hour)?.allowed).toBe(2);
    }
  });
});
