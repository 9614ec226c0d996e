// The least a cached key can cost in this runtime: an lru-cache entry (configured as keygate's key cache is)
// keyed by a SHA-256 hex hash, holding one record of a key id and references to shared objects — no
// rate-limit or usage state. Run with --expose-gc (run.ts does); prints one JSON line.
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const count = Number(process.argv[2] ?? 100_000);
const shared = { tenant: { id: 'ten_1', plan: 'pro' }, policy: { permissions: ['*'] } };
const settle = () => {
  gc();
  gc();
  return process.memoryUsage();
};
const before = settle();
const lru = new LRUCache<string, object>({ max: count, ttl: 60_000 }); // its typed arrays count too
for (let i = 0; i < count; i++) {
  const hash = createHash('sha256').update(randomBytes(16)).digest('hex');
  const id = `key_${randomBytes(16).toString('hex').slice(0, 26).toUpperCase()}`; // a ULID's length
  lru.set(hash, { id, expiresAt: null, policy: shared.policy, tenant: shared.tenant, hashExpiresAt: null });
}
const after = settle();
const perKey = (a: number, b: number) => Math.round((b - a) / count);
console.log(
  JSON.stringify({
    keys: lru.size,
    heapBytesPerKey: perKey(before.heapUsed, after.heapUsed),
    offHeapBytesPerKey: perKey(before.arrayBuffers, after.arrayBuffers),
    pointerCompression: Boolean((process.config.variables as Record<string, unknown>).v8_enable_pointer_compression),
  }),
);
