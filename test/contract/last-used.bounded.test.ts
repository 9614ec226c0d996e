import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newKeyId, newTenantId } from '../../src/keys/ids.ts';
import type { StoredKey } from '../../src/keys/types.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { KeyStore } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// lastUsedAt is kept per key; a tenant that mints, uses and revokes keys without end must not grow it without
// end. Revoked keys' entries are dropped, and a usage flush arriving after a revoke does not write one back.

let redis: RedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.close();
});

const audit = { action: 'test', actor: 'admin', keyId: null, details: {} };
const stores: Record<string, () => KeyStore> = {
  memory: () => new MemoryStore({ auditMaxEntries: 100 }),
  redis: () => new RedisStore({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix: 'lu:', channel: `lu${Math.random()}`, auditMaxEntries: 100 }),
};

function keyOf(tenantId: string): StoredKey {
  const now = new Date().toISOString();
  return {
    id: newKeyId(), tenantId, name: null, keyType: 'private', prefix: 'kg_sk_xxxxxx', permissions: ['*'], allowedOrigins: null, allowedAssistants: null,
    transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null }, quota: { requestsPerMonth: null, sessionMinutesPerMonth: null },
    maxConcurrentConnections: null, enforceMtls: false, clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: now, updatedAt: now,
    expiresAt: null, lastUsedAt: null, createdBy: 'admin', hashes: [{ hash: `${Math.random()}`.padEnd(64, '0'), expiresAt: null }],
  };
}

describe.each(Object.keys(stores))('lastUsedAt on the %s store', (name) => {
  it('holds no entry for revoked keys, however many were minted, used and revoked', async () => {
    const store = stores[name]!();
    const tenantId = newTenantId();
    const now = new Date().toISOString();
    await store.createTenant({ id: tenantId, name: 't', plan: 'free', maxKeys: 5, status: 'active', createdAt: now, updatedAt: now }, audit);
    const kept = keyOf(tenantId);
    await store.createKey(kept, audit);
    const revoked: string[] = [];
    for (let i = 0; i < 200; i++) {
      const k = keyOf(tenantId);
      await store.createKey(k, audit);
      await store.touchKeys([{ tenantId, keyId: k.id, at: now }, { tenantId, keyId: kept.id, at: now }]);
      await store.revokeKey(tenantId, k.id, audit);
      // A flush that was under way when the key was revoked.
      await store.touchKeys([{ tenantId, keyId: k.id, at: now }]);
      revoked.push(k.id);
    }
    await store.touchKeys([{ tenantId, keyId: kept.id, at: now }]);
    const seen = await store.lastUsed(tenantId, [...revoked, kept.id]);
    expect([...seen.keys()]).toEqual([kept.id]);
    if (name === 'redis') {
      const fields = await client.hlen(`lu:{${tenantId}}:lu`);
      console.log(`redis: lastUsed hash holds ${fields} fields after 200 keys minted, used and revoked`);
      expect(fields).toBe(1);
    }
    await store.close();
  });
});
