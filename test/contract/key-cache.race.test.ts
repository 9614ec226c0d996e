import { storedKey } from '../helpers/records.ts';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyCache } from '../../src/cache/key-cache.ts';
import { StoreUnavailableError } from '../../src/store/errors.ts';
import { digestOfHex } from '../../src/keys/hashing.ts';
import { newTenantId } from '../../src/keys/ids.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { Verification } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The revocation race: a revoke while a slow store read for the same key is in flight must never leave the
// key usable. The store is a real RedisStore; only the moment its read returns is held back.

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

class SlowReads extends RedisStore {
  gate: Promise<void> | null = null;
  reads = 0;
  /** Set: every read fails as a store outage would. */
  down = false;
  override async lookup(hash: string): Promise<Verification | null> {
    this.reads++;
    if (this.down) throw new Error('connection refused');
    const v = await super.lookup(hash);
    if (this.gate) await this.gate;
    return v;
  }
}

const audit = { action: 'test', actor: 'admin', keyId: null, details: {} };

async function setup(ttl = { ttlSeconds: 3600, negativeTtlSeconds: 3600, staleIfErrorSeconds: 300 }) {
  const store = new SlowReads({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix: `r${Date.now()}:`, channel: `race${Math.random()}`, auditMaxEntries: 10 });
  const cache = new KeyCache(store, { maxEntries: 100, ...ttl });
  await cache.attach();
  const now = new Date().toISOString();
  const tenantId = newTenantId();
  await store.createTenant({ id: tenantId, name: 't', plan: 'free', maxKeys: 5, status: 'active', createdAt: now, updatedAt: now }, audit);
  const stored = createHash('sha256').update(`race${Date.now()}`).digest('hex');
  const hash = digestOfHex(stored); // what the cache knows the key by
  const key = storedKey(tenantId, stored);
  await store.createKey(key, audit);
  return { store, cache, key, hash, tenantId };
}

describe('key cache against a revoke during a slow read', () => {
  it('never caches the record the slow read returned after the revoke', async () => {
    const { store, cache, key, hash, tenantId } = await setup();
    let release!: () => void;
    store.gate = new Promise((r) => (release = r));
    const a = cache.get(hash);
    const b = cache.get(hash); // coalesced with a
    await expect.poll(() => store.reads).toBe(1);
    await store.revokeKey(tenantId, key.id, audit); // publishes; the cache evicts while the read is held
    await new Promise((r) => setTimeout(r, 100));
    release();
    store.gate = null;
    // The loads that began before the eviction read again and see the key gone.
    expect(await a).toBeNull();
    expect(await b).toBeNull();
    expect(cache.peek(hash)).toBeNull();
    expect(await cache.get(hash)).toBeNull();
    await store.close();
  });

  it('does the same for a tenant suspension during a slow read', async () => {
    const { store, cache, hash, tenantId } = await setup();
    let release!: () => void;
    store.gate = new Promise((r) => (release = r));
    const pending = cache.get(hash);
    await expect.poll(() => store.reads).toBe(1);
    await store.updateTenant(tenantId, (t) => ({ ...t, status: 'suspended' }), audit);
    await new Promise((r) => setTimeout(r, 100));
    release();
    store.gate = null;
    expect((await pending)?.tenant.status).toBe('suspended');
    expect(cache.peek(hash)?.tenant.status).toBe('suspended');
    await store.close();
  });

  it('coalesces concurrent misses into one store read', async () => {
    const { store, cache, hash } = await setup();
    const before = store.reads;
    const all = await Promise.all(Array.from({ length: 50 }, () => cache.get(hash)));
    expect(all.every((v) => v !== null)).toBe(true);
    expect(store.reads - before).toBe(1);
    await store.close();
  });
});

describe('key cache during a store outage (cache.staleIfErrorSeconds)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('serves an expired positive record for staleIfErrorSeconds, then answers unavailable', async () => {
    const { store, cache, hash, key } = await setup({ ttlSeconds: 0.2, negativeTtlSeconds: 0.2, staleIfErrorSeconds: 0.6 });
    const cached = await cache.get(hash);
    expect(cached?.key.id).toBe(key.id);
    await sleep(300); // past the TTL
    expect(cache.peek(hash)).toBeUndefined();
    store.down = true;
    expect(await cache.get(hash)).toBe(cached); // the same record, stale
    await sleep(600); // past TTL + staleIfError
    await expect(cache.get(hash)).rejects.toBeInstanceOf(StoreUnavailableError);
    store.down = false;
    expect((await cache.get(hash))?.key.id).toBe(key.id); // recovers with the store
    await store.close();
  });

  it('never serves an expired negative entry: an unknown key is unavailable, not invalid, during the outage', async () => {
    const { store, cache } = await setup({ ttlSeconds: 0.2, negativeTtlSeconds: 0.2, staleIfErrorSeconds: 300 });
    const unknown = digestOfHex('f'.repeat(64));
    expect(await cache.get(unknown)).toBeNull();
    expect(cache.peek(unknown)).toBeNull(); // cached as unknown
    await sleep(300);
    store.down = true;
    await expect(cache.get(unknown)).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
  });

  it('a reset (events may have been missed) reloads every entry, but keeps it for stale-if-error', async () => {
    // In a failover the subscriber can reconnect, and reset the cache, while the main connection still
    // fails; a reset that deleted the entries turned cached keys into 503s.
    const { store, cache, hash, key } = await setup();
    const cached = await cache.get(hash);
    const reads = store.reads;
    cache.reset();
    expect(cache.peek(hash)).toBeUndefined(); // no longer trusted without a read
    store.down = true;
    expect(await cache.get(hash)).toBe(cached); // the store fails: served stale, not 503
    store.down = false;
    expect((await cache.get(hash))?.key.id).toBe(key.id);
    expect(store.reads - reads).toBe(2); // read again (the failed read and this one)
    expect(cache.peek(hash)?.key.id).toBe(key.id); // fresh once more
    await store.close();
  });
});
