// Microbenchmark: session tokens in process, beside the key decision's figure (auth-micro.ts).
// - verify: a token's full check the first time it is seen: checksum, HMAC-SHA-256, base64url and JSON decode of
//   its claims, expiry — what a replica pays for a token it has not met;
// - decision: the authenticate step for a token used again (remembered verification, minting key's cached
//   record, its narrowed policy), then route policy and origin, as auth-micro.ts measures for a key.
import { createAuthorizer } from '../dist/auth/authorize.js';
import { credentialOf } from '../dist/auth/credential.js';
import { checkOrigin } from '../dist/auth/origin.js';
import { compilePolicy } from '../dist/auth/policy.js';
import { createTokenReader } from '../dist/auth/session-token.js';
import { createAuthenticator } from '../dist/auth/verify.js';
import { KeyCache } from '../dist/cache/key-cache.js';
import { createKeyFormat } from '../dist/keys/format.js';
import { createKeyHasher } from '../dist/keys/hashing.js';
import { createTokenVerifier, mintToken, newTokenId } from '../dist/keys/session-token.js';
import { MemoryStore } from '../dist/store/memory/memory-store.js';

const rate = (n: number, ns: number) => ({ opsPerSecond: Math.round((n * 1e9) / ns), nsPerOp: Math.round(ns / n) });

export async function tokenMicro(iterations = 1_000_000) {
  const ring = [{ id: 'k1', secret: 'bench-signing-secret-0123456789abcdef0123' }];
  const verifier = createTokenVerifier(ring);
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    id: newTokenId(), tenantId: 'ten_1', keyId: 'key_1', issuedAt: now, expiresAt: now + 3600, valueEndsAt: null, valueTag: null, permissions: ['calls:read'],
    allowedAssistants: null, allowedOrigins: null, maxSessions: 1, maxUses: null, metadata: { userId: 'u_42' },
  };
  const token = mintToken(claims, ring[0]!);

  // verify: the same token each time, but never remembered (the verifier alone).
  for (let i = 0; i < 50_000; i++) verifier.verify(token, now);
  let start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (!verifier.verify(token, now)) throw new Error('a valid token did not verify');
  const verify = rate(iterations, Number(process.hrtime.bigint() - start));

  // decision: as auth-micro.ts, with the token as the credential.
  const store = new MemoryStore({ auditMaxEntries: 10 });
  const cache = new KeyCache(store, { maxEntries: 1000, ttlSeconds: 3600, negativeTtlSeconds: 5, staleIfErrorSeconds: 300 });
  const authenticate = createAuthenticator({ format: createKeyFormat({ private: 'kg_sk_', public: 'kg_pk_' }), hash: createKeyHasher(null), cache, tokens: createTokenReader(verifier) });
  const authorize = createAuthorizer(compilePolicy({ defaultAction: 'deny', defaultPermission: '*', caseSensitive: false, routes: [{ method: 'GET', path: '/v1/calls/**', permission: 'calls:read', public: false }] }));
  const at = new Date().toISOString();
  await store.createTenant({ id: 'ten_1', name: 't', plan: 'pro', maxKeys: 10, status: 'active', createdAt: at, updatedAt: at }, { action: 'x', actor: 'admin', keyId: null, details: {} });
  await store.createKey(
    {
      id: 'key_1', tenantId: 'ten_1', name: null, keyType: 'private', prefix: 'kg_sk_xxxxxx', permissions: ['calls:*', 'session-tokens:write'], allowedOrigins: null, allowedAssistants: null,
      transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null }, quota: { requestsPerMonth: null, sessionMinutesPerMonth: null }, maxConcurrentConnections: null, enforceMtls: false,
      clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: at, updatedAt: at, expiresAt: null, lastUsedAt: null, createdBy: 'admin', hashes: [],
    },
    { action: 'x', actor: 'admin', keyId: null, details: {} },
  );
  const headers = { authorization: `Bearer ${token}`, host: 'api.example.com' };
  await authenticate(credentialOf(headers, '/v1/calls/123', false)); // loads the minting key into the cache
  let allowed = 0;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const id = authenticate(credentialOf(headers, '/v1/calls/123', false));
      if (id instanceof Promise || !id.ok) throw new Error('expected a synchronous cache hit');
      const route = authorize(id.policy, 'GET', '/v1/calls/123');
      if (route.ok && checkOrigin(id.policy, undefined) === null) allowed++;
    }
  };
  run(100_000);
  start = process.hrtime.bigint();
  run(iterations);
  const decision = rate(iterations, Number(process.hrtime.bigint() - start));
  if (allowed !== iterations + 100_000) throw new Error('not every decision allowed');
  return { verify, decision };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await tokenMicro());
