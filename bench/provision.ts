// Writes tenants and keys straight through keygate's own RedisStore (the code the API uses after
// validation), so the benchmark can hold 100,000 keys without 100,000 HTTP calls.
import { Redis } from 'ioredis';
import { createKeyFormat } from '../dist/keys/format.js';
import { createKeyHasher } from '../dist/keys/hashing.js';
import { newKeyId, newTenantId } from '../dist/keys/ids.js';
import { RedisStore } from '../dist/store/redis/redis-store.js';

export interface Provisioned {
  tenantId: string;
  keys: string[];
}

export async function provision(redisUrl: string, count: number, rateLimit: { requestsPerMinute: number | null; requestsPerDay: number | null }): Promise<Provisioned> {
  const client = new Redis(redisUrl, { enableAutoPipelining: true });
  const store = new RedisStore({ client, subscriber: new Redis(redisUrl, { lazyConnect: true }), prefix: 'kg:', channel: 'keygate:invalidate', auditMaxEntries: 100 });
  const format = createKeyFormat({ private: 'kg_sk_', public: 'kg_pk_' });
  const hash = createKeyHasher(null);
  const now = new Date().toISOString();
  const tenantId = newTenantId();
  const audit = { action: 'bench', actor: 'admin', keyId: null, details: {} };
  await store.createTenant({ id: tenantId, name: 'bench', plan: 'enterprise', maxKeys: count + 1, status: 'active', createdAt: now, updatedAt: now }, audit);
  const keys: string[] = [];
  for (let done = 0; done < count; done += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - done) }, () => format.generate('private'));
    await Promise.all(
      batch.map((raw) =>
        store.createKey(
          {
            id: newKeyId(), tenantId, name: null, keyType: 'private', prefix: format.visiblePrefix(raw), permissions: ['*'], allowedOrigins: null,
            allowedAssistants: null, transientAssistant: false, rateLimit, quota: { requestsPerMonth: null, sessionMinutesPerMonth: null }, maxConcurrentConnections: null, enforceMtls: false,
            clientCertFingerprints: null, metadata: { plan: 'bench' }, isActive: true, createdAt: now, updatedAt: now, expiresAt: null,
            lastUsedAt: null, createdBy: 'admin', hashes: [{ hash: hash(raw), expiresAt: null }],
          },
          audit,
        ),
      ),
    );
    keys.push(...batch);
  }
  client.disconnect();
  return { tenantId, keys };
}
