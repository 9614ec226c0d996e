import { newKeyId } from '../../src/keys/ids.ts';
import type { StoredKey } from '../../src/keys/types.ts';

/**
 * A stored key of `tenantId` as a store test writes it: every setting at its default (all permissions, no
 * restrictions, no limits), verified by `hash` (hex, as the store keeps it); `over` replaces any field.
 */
export function storedKey(tenantId: string, hash: string, over: Partial<StoredKey> = {}): StoredKey {
  const now = new Date().toISOString();
  return {
    id: newKeyId(), tenantId, name: null, keyType: 'private', prefix: 'kg_sk_xxxxxx', permissions: ['*'], allowedOrigins: null, allowedAssistants: null,
    transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null },
    quota: { requestsPerMonth: null, sessionMinutesPerMonth: null }, maxConcurrentConnections: null, enforceMtls: false,
    clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: now, updatedAt: now, expiresAt: null, lastUsedAt: null, createdBy: 'admin',
    hashes: [{ hash, expiresAt: null }],
    ...over,
  };
}
