// Microbenchmark: the in-process auth decision on a cache hit — credential → prefix and checksum → hash →
// cache → status → route policy and permission → origin — the work keygate does before forwarding.
import { createAuthorizer } from '../dist/auth/authorize.js';
import { credentialOf } from '../dist/auth/credential.js';
import { checkOrigin } from '../dist/auth/origin.js';
import { compilePolicy } from '../dist/auth/policy.js';
import { createAuthenticator } from '../dist/auth/verify.js';
import { KeyCache } from '../dist/cache/key-cache.js';
import { createKeyFormat } from '../dist/keys/format.js';
import { createKeyHasher } from '../dist/keys/hashing.js';
import { MemoryStore } from '../dist/store/memory/memory-store.js';

export async function authMicro(iterations = 2_000_000): Promise<{ opsPerSecond: number; nsPerOp: number }> {
  const store = new MemoryStore({ auditMaxEntries: 10 });
  const format = createKeyFormat({ private: 'kg_sk_', public: 'kg_pk_' });
  const hash = createKeyHasher(null);
  const cache = new KeyCache(store, { maxEntries: 1000, ttlSeconds: 3600, negativeTtlSeconds: 5, staleIfErrorSeconds: 300 });
  const authenticate = createAuthenticator({ format, hash, cache });
  const authorize = createAuthorizer(compilePolicy({ defaultAction: 'deny', defaultPermission: '*', caseSensitive: false, routes: [{ method: 'POST', path: '/v1/calls', permission: 'calls:write', public: false }, { method: 'GET', path: '/v1/calls/**', permission: 'calls:read', public: false }] }));
  const now = new Date().toISOString();
  await store.createTenant({ id: 'ten_1', name: 't', plan: 'pro', maxKeys: 10, status: 'active', createdAt: now, updatedAt: now }, { action: 'x', actor: 'admin', keyId: null, details: {} });
  const raw = format.generate('private');
  await store.createKey(
    {
      id: 'key_1', tenantId: 'ten_1', name: null, keyType: 'private', prefix: raw.slice(0, 12), permissions: ['calls:*'], allowedOrigins: null, allowedAssistants: null,
      transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null }, quota: { requestsPerMonth: null, sessionMinutesPerMonth: null }, maxConcurrentConnections: null, enforceMtls: false,
      clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: now, updatedAt: now, expiresAt: null, lastUsedAt: null, createdBy: 'admin',
      hashes: [{ hash: hash(raw), expiresAt: null }],
    },
    { action: 'x', actor: 'admin', keyId: null, details: {} },
  );
  const headers = { 'x-api-key': raw, host: 'api.example.com' };
  await authenticate(credentialOf(headers, '/v1/calls/123', false)); // warm the cache
  let allowed = 0;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const id = authenticate(credentialOf(headers, '/v1/calls/123', false));
      if (id instanceof Promise || !id.ok) throw new Error('expected a synchronous cache hit');
      const route = authorize(id.key.policy, 'GET', '/v1/calls/123');
      if (route.ok && checkOrigin(id.key.policy, undefined) === null) allowed++;
    }
  };
  run(100_000); // JIT warm-up
  const start = process.hrtime.bigint();
  run(iterations);
  const ns = Number(process.hrtime.bigint() - start);
  if (allowed !== iterations + 100_000) throw new Error('not every decision allowed');
  return { opsPerSecond: Math.round((iterations * 1e9) / ns), nsPerOp: Math.round(ns / iterations) };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await authMicro());
