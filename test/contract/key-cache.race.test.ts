import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyCache } from '../../src/cache/key-cache.ts';
import { newKeyId, newTenantId } from '../../src/keys/ids.ts';
import type { StoredKey } from '../../src/keys/types.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { Verification } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The race of SPEC §8: a revoke while a slow store read for the same key is in flight must never leave the
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
  override async lookup(hash: string): Promise<Verification | null> {
    this.reads++;
    const v = await super.lookup(hash);
    if (this.gate) await this.gate;
    return v;
  }
}

const audit = { action: 'test', actor: 'admin', keyId: null, details: {} };

async function setup() {
  const store = new SlowReads({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix: `r${Date.now()}:`, channel: `race${Math.random()}`, auditMaxEntries: 10 });
  const cache = new KeyCache(store, { maxEntries: 100, ttlSeconds: 3600, negativeTtlSeconds: 3600, staleIfErrorSeconds: 300 });
  await cache.attach();
  const now = new Date().toISOString();
  const tenantId = newTenantId();
  await store.createTenant({ id: tenantId, name: 't', plan: 'free', maxKeys: 5, status: 'active', createdAt: now, updatedAt: now }, audit);
  const hash = `race${Date.now()}`.padEnd(64, '0');
  const key: StoredKey = {
    id: newKeyId(), tenantId, name: null, keyType: 'private', prefix: 'kg_sk_xxxxxx', permissions: ['*'], allowedOrigins: null, allowedAssistants: null,
    transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null }, maxConcurrentConnections: null, enforceMtls: false,
    clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: now, updatedAt: now, expiresAt: null, lastUsedAt: null, createdBy: 'admin',
    hashes: [{ hash, expiresAt: null }],
  };
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
