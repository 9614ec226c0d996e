import { storedKey } from '../helpers/records.ts';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyCache } from '../../src/cache/key-cache.ts';
import { digestOfHex } from '../../src/keys/hashing.ts';
import { newTenantId } from '../../src/keys/ids.ts';
import type { StoredKey } from '../../src/keys/types.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { RefreshRef, Verification } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The key cache's background refresh: a key in use is read again before its TTL ends, in batches,
// so no request waits for its reload and many keys cost a few Redis commands; and the TTL's guarantee holds —
// what the refresh reads never outlives an event, and a key that stopped verifying is dropped.

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

class CountingStore extends RedisStore {
  lookups = 0;
  refreshes: number[] = [];
  /** Set: a refresh read is held until it resolves. */
  gate: Promise<void> | null = null;
  override lookup(hash: string): Promise<Verification | null> {
    this.lookups++;
    return super.lookup(hash);
  }
  override async refresh(refs: RefreshRef[]): Promise<Array<Verification | null>> {
    this.refreshes.push(refs.length);
    const found = await super.refresh(refs);
    if (this.gate) await this.gate;
    return found;
  }
}

const audit = { action: 'test', actor: 'admin', keyId: null, details: {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stat = async (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await redis.client.info('commandstats'))?.[1] ?? 0);

/** A tenant with `count` keys, each cached once (loaded through the store's lookup). */
async function setup(count: number, ttlSeconds: number) {
  const prefix = `rf${Date.now()}${Math.random().toString(36).slice(2, 6)}:`;
  const store = new CountingStore({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix, channel: `refresh${Math.random()}`, auditMaxEntries: 10 });
  const cache = new KeyCache(store, { maxEntries: 1_000, ttlSeconds, negativeTtlSeconds: ttlSeconds, staleIfErrorSeconds: 300 });
  await cache.attach();
  const now = new Date().toISOString();
  const tenantId = newTenantId();
  await store.createTenant({ id: tenantId, name: 't', plan: 'free', maxKeys: count, status: 'active', createdAt: now, updatedAt: now }, audit);
  // hash: what the cache knows a key by (its digest); stored: the hash in hex, as the store keeps it.
  const keys: Array<{ key: StoredKey; hash: string; stored: string }> = [];
  for (let i = 0; i < count; i++) {
    const stored = createHash('sha256').update(`${prefix}${i}x`).digest('hex');
    const key = storedKey(tenantId, stored);
    await store.createKey(key, audit);
    keys.push({ key, hash: digestOfHex(stored), stored });
  }
  // Loaded together, as a burst of requests would: their TTLs end together.
  const loaded = await Promise.all(keys.map(({ hash }) => cache.get(hash)));
  expect(loaded.map((v) => v?.key.id)).toEqual(keys.map(({ key }) => key.id));
  return { store, cache, keys, tenantId, prefix };
}

describe('key cache background refresh', () => {
  it('keeps keys in use fresh without a lookup on the request path: batches of two commands for 40 keys', async () => {
    const { store, cache, keys } = await setup(40, 4.5);
    const lookups = store.lookups;
    const [gets, mgets] = [await stat('get'), await stat('mget')];
    // What the rate limits hang on a record (its windows and leases) must survive a refresh that changes nothing.
    const held = cache.peek(keys[0]!.hash)!;
    const leases = { windows: 'leased' };
    held.key.limits = leases;
    let misses = 0;
    // Every key used every 100 ms for more than two TTLs: without the refresh each would miss once per TTL.
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      for (const { hash } of keys) if (cache.peek(hash) === undefined) misses++;
      await sleep(100);
    }
    expect(misses).toBe(0);
    expect(store.lookups - lookups).toBe(0);
    expect(cache.peek(keys[0]!.hash)).toBe(held); // the same record, read again and found unchanged
    expect(held.key.limits).toBe(leases);
    // Each key read again at least twice, in batches (all 40 together when the machine keeps up; a slow tick
    // may split them, so only an average is held to).
    const read = store.refreshes.reduce((a, b) => a + b, 0);
    expect(read).toBeGreaterThanOrEqual(80);
    expect(read / store.refreshes.length).toBeGreaterThanOrEqual(10);
    // On Redis: per refresh, one MGET of the verification records and one of the tenant's records; no GET.
    expect((await stat('mget')) - mgets).toBe(2 * store.refreshes.length);
    expect((await stat('get')) - gets).toBe(0);
    await store.close();
  }, 20_000);

  it('leaves a key that is not used to expire (nothing is read for it)', async () => {
    const { store, cache, keys } = await setup(2, 1);
    await sleep(1_200);
    expect(store.refreshes).toEqual([]);
    expect(cache.peek(keys[0]!.hash)).toBeUndefined(); // expired: the next request reads it
    await store.close();
  });

  it('picks up a change whose event was lost', async () => {
    const { store, cache, keys, prefix, tenantId } = await setup(1, 3);
    const { key, hash } = keys[0]!;
    // Written behind keygate's back: no invalidation message.
    await redis.client.set(`${prefix}{${tenantId}}:k:${key.id}`, JSON.stringify({ ...key, isActive: false }));
    const until = Date.now() + 5_000;
    while (cache.peek(hash)?.key.policy.isActive !== false && Date.now() < until) await sleep(50);
    expect(cache.peek(hash)?.key.policy.isActive).toBe(false);
    expect(store.lookups).toBe(1); // the refresh read it, not a lookup
    await store.close();
  });

  it('drops a key whose verification record is gone though its key record remains (a revocation cut short)', async () => {
    // A revocation deletes the verification records first; if it stops there (a crash, or 503 on a webhook
    // outage) the key record stays. The key must stop verifying fleet-wide within the TTL, as a lookup would say:
    // a refresh that read only the key record would keep it alive as long as it is used.
    const { store, cache, keys, prefix } = await setup(1, 3);
    const { hash, stored } = keys[0]!;
    await redis.client.del(`${prefix}vr:${stored}`);
    const until = Date.now() + 5_000;
    while (cache.peek(hash) !== undefined && Date.now() < until) await sleep(50);
    expect(cache.peek(hash)).toBeUndefined();
    expect(await cache.get(hash)).toBeNull();
    await store.close();
  });

  it('never writes back what it read before an eviction that arrived while it was reading', async () => {
    const { store, cache, keys, tenantId } = await setup(1, 3);
    const { key, hash } = keys[0]!;
    let release!: () => void;
    store.gate = new Promise((r) => (release = r));
    const until = Date.now() + 5_000;
    while (store.refreshes.length === 0 && Date.now() < until) {
      cache.peek(hash);
      await sleep(50);
    }
    expect(store.refreshes.length).toBe(1); // read, and held before it is applied
    await store.revokeKey(tenantId, key.id, audit); // evicts here before it resolves
    release();
    store.gate = null;
    await sleep(50);
    expect(cache.peek(hash)).toBeUndefined();
    expect(await cache.get(hash)).toBeNull();
    await store.close();
  });
});
