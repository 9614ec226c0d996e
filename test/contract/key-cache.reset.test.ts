import { storedKey } from '../helpers/records.ts';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyCache } from '../../src/cache/key-cache.ts';
import { digestOfHex } from '../../src/keys/hashing.ts';
import { newTenantId } from '../../src/keys/ids.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { Verification } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// A reset (the invalidation subscription dropped, so events may have been missed) must take effect at once:
// the next request reads the store. lru-cache decides staleness on a clock it caches between timer ticks, so
// on a loaded machine, where those ticks are late, an entry merely re-dated "expired 2 ms ago" still looked
// fresh. The event loop is held here (a synchronous wait) to be that late, every time.

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

class CountingStore extends RedisStore {
  reads = 0;
  down = false;
  override async lookup(hash: string): Promise<Verification | null> {
    this.reads++;
    if (this.down) throw new Error('connection refused');
    return super.lookup(hash);
  }
}

const audit = { action: 'test', actor: 'admin', keyId: null, details: {} };
const busyWait = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

async function setup() {
  const store = new CountingStore({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix: `reset${Date.now()}:`, channel: `reset${Math.random()}`, auditMaxEntries: 10 });
  const cache = new KeyCache(store, { maxEntries: 100, ttlSeconds: 3600, negativeTtlSeconds: 3600, staleIfErrorSeconds: 300 });
  const now = new Date().toISOString();
  const tenantId = newTenantId();
  await store.createTenant({ id: tenantId, name: 't', plan: 'free', maxKeys: 5, status: 'active', createdAt: now, updatedAt: now }, audit);
  const stored = createHash('sha256').update(`reset${Date.now()}`).digest('hex');
  const hash = digestOfHex(stored); // what the cache knows the key by
  const key = storedKey(tenantId, stored);
  await store.createKey(key, audit);
  return { store, cache, key, hash };
}

describe('key cache reset with a late event loop', () => {
  it('is no longer trusted the instant after a reset, however late the timers run', async () => {
    const { store, cache, hash, key } = await setup();
    const cached = await cache.get(hash);
    expect(cache.peek(hash)).toBe(cached); // a hit: lru-cache has now cached its clock
    busyWait(20); // the timer that refreshes that clock cannot run
    cache.reset();
    expect(cache.peek(hash)).toBeUndefined();
    const reads = store.reads;
    expect((await cache.get(hash))?.key.id).toBe(key.id);
    expect(store.reads - reads).toBe(1); // read again, not served from the old entry
    expect(cache.peek(hash)?.key.id).toBe(key.id); // trusted again once read
    await store.close();
  });

  it('serves the old entry for stale-if-error when the read after a reset fails, and keeps asking the store', async () => {
    const { store, cache, hash } = await setup();
    const cached = await cache.get(hash);
    expect(cache.peek(hash)).toBe(cached);
    busyWait(20);
    cache.reset();
    store.down = true;
    const reads = store.reads;
    expect(await cache.get(hash)).toBe(cached); // the store fails: served stale, not 503
    expect(cache.peek(hash)).toBeUndefined(); // still untrusted: the next request asks again
    expect(await cache.get(hash)).toBe(cached);
    expect(store.reads - reads).toBe(2);
    store.down = false;
    await cache.get(hash);
    expect(cache.peek(hash)).toBeDefined();
    await store.close();
  });
});
