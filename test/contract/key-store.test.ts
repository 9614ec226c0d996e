import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { newKeyId, newTenantId } from '../../src/keys/ids.ts';
import type { StoredKey, Tenant } from '../../src/keys/types.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import { zeroCounts, type KeyStore, type StoreEvent, type UsageCounts } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// One suite, every KeyStore: the Redis store against a real redis-server, and the memory store.

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

const audit = { action: 'test', actor: 'admin', keyId: null, details: {} };
const now = () => new Date().toISOString();

function tenant(maxKeys = 3): Tenant {
  return { id: newTenantId(), name: 't', plan: 'free', maxKeys, status: 'active', createdAt: now(), updatedAt: now() };
}

function key(tenantId: string, hash: string): StoredKey {
  return {
    id: newKeyId(), tenantId, name: null, keyType: 'private', prefix: 'kg_sk_abcdef', permissions: ['*'], allowedOrigins: null,
    allowedAssistants: null, transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null },
    quota: { requestsPerMonth: null, sessionMinutesPerMonth: null }, maxConcurrentConnections: null, enforceMtls: false, clientCertFingerprints: null, metadata: {}, isActive: true,
    createdAt: now(), updatedAt: now(), expiresAt: null, lastUsedAt: null, createdBy: 'admin', hashes: [{ hash, expiresAt: null }],
  };
}

let n = 0;
const hash = () => `h${Date.now()}${n++}`.padEnd(64, '0');

const factories: Array<[string, () => Promise<KeyStore>]> = [
  ['memory', async () => new MemoryStore({ auditMaxEntries: 100 })],
  [
    'redis',
    async () => {
      const client = new Redis(redis.url, { enableAutoPipelining: true });
      const subscriber = new Redis(redis.url);
      return new RedisStore({ client, subscriber, prefix: `c${n++}:`, channel: `inv${n}`, auditMaxEntries: 100 });
    },
  ],
];

describe.each(factories)('KeyStore contract: %s', (_name, make) => {
  let store: KeyStore;
  beforeEach(async () => {
    store = await make();
    return () => store.close();
  });

  it('creates a tenant and a key that verifies by its hash only', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const h = hash();
    const k = key(t.id, h);
    expect(await store.createKey(k, audit)).toBe('created');
    const v = await store.lookup(h);
    expect(v?.key.id).toBe(k.id);
    expect(v?.tenant.id).toBe(t.id);
    expect(v?.hashExpiresAt).toBeNull();
    expect(await store.lookup(hash())).toBeNull();
    expect(await store.createKey(key(newTenantId(), hash()), audit)).toBe('no_tenant');
  });

  it('holds maxKeys under 100 parallel creates', async () => {
    const t = tenant(3);
    await store.createTenant(t, audit);
    const results = await Promise.all(Array.from({ length: 100 }, () => store.createKey(key(t.id, hash()), audit)));
    expect(results.filter((r) => r === 'created')).toHaveLength(3);
    expect(results.filter((r) => r === 'limit')).toHaveLength(97);
    expect(await store.countKeys(t.id)).toBe(3);
  });

  it('revokes: the hash stops verifying and the key is gone', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const h = hash();
    const k = key(t.id, h);
    await store.createKey(k, audit);
    expect(await store.revokeKey(t.id, k.id, audit)).toBe(true);
    expect(await store.lookup(h)).toBeNull();
    expect(await store.getKey(t.id, k.id)).toBeNull();
    expect(await store.revokeKey(t.id, k.id, audit)).toBe(false);
  });

  it('rotates without grace: old value dead at once, new value live, same id', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const [h1, h2] = [hash(), hash()];
    const k = key(t.id, h1);
    await store.createKey(k, audit);
    const rotated = await store.rotateKey(t.id, k.id, { hash: h2, prefix: 'kg_sk_zzzzzz' }, 0, audit);
    expect(rotated?.id).toBe(k.id);
    expect(rotated?.prefix).toBe('kg_sk_zzzzzz');
    expect(await store.lookup(h1)).toBeNull();
    expect((await store.lookup(h2))?.key.id).toBe(k.id);
  });

  it('rotates with grace: old value verifies until the grace period ends', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const [h1, h2] = [hash(), hash()];
    const k = key(t.id, h1);
    await store.createKey(k, audit);
    await store.rotateKey(t.id, k.id, { hash: h2, prefix: 'kg_sk_zzzzzz' }, 1, audit);
    const during = await store.lookup(h1);
    expect(during?.key.id).toBe(k.id);
    expect(during?.hashExpiresAt).toBeGreaterThan(Date.now());
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await store.lookup(h1)).toBeNull();
    expect((await store.lookup(h2))?.key.id).toBe(k.id);
  });

  it('updates records with compare-and-set and publishes every mutation', async () => {
    const events: StoreEvent[] = [];
    await store.subscribe((e) => events.push(e), () => {});
    const t = tenant();
    await store.createTenant(t, audit);
    const h = hash();
    const k = key(t.id, h);
    await store.createKey(k, audit);
    const updated = await Promise.all(
      Array.from({ length: 5 }, (_, i) => store.updateKey(t.id, k.id, (cur) => ({ ...cur, metadata: { ...cur.metadata, [`f${i}`]: i } }), audit)),
    );
    expect(updated.every((u) => u !== null)).toBe(true);
    expect(Object.keys((await store.getKey(t.id, k.id))!.metadata).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    await store.updateTenant(t.id, (cur) => ({ ...cur, status: 'suspended' }), audit);
    expect((await store.lookup(h))?.tenant.status).toBe('suspended');
    await store.revokeKey(t.id, k.id, audit);
    await expect.poll(() => events.length).toBeGreaterThanOrEqual(7);
    expect(events).toContainEqual({ kind: 'tenant', tenantId: t.id });
    expect(events.filter((e) => e.kind === 'key' && e.hashes.includes(h))).toHaveLength(6);
  });

  it('writes an audit entry per mutation, newest first, paginated', async () => {
    const t = tenant(10);
    await store.createTenant(t, { ...audit, action: 'tenant.created' });
    for (let i = 0; i < 4; i++) await store.createKey(key(t.id, hash()), { ...audit, action: `key.created.${i}` });
    const first = await store.listAudit(t.id, { limit: 3, cursor: null });
    expect(first.data.map((e) => e.action)).toEqual(['key.created.3', 'key.created.2', 'key.created.1']);
    expect(first.nextCursor).not.toBeNull();
    const second = await store.listAudit(t.id, { limit: 3, cursor: first.nextCursor });
    expect(second.data.map((e) => e.action)).toEqual(['key.created.0', 'tenant.created']);
    expect(second.nextCursor).toBeNull();
  });

  it('appends a standalone audit entry to an existing tenant only', async () => {
    const t = tenant();
    await store.createTenant(t, { ...audit, action: 'tenant.created' });
    const refused = { action: 'key.access_denied', actor: 'key_a', keyId: 'key_b', details: { operation: 'rotate', permissionsMissing: ['*'] } };
    expect(await store.appendAudit(t.id, refused)).toBe(true);
    const log = await store.listAudit(t.id, { limit: 10, cursor: null });
    expect(log.data.map((e) => e.action)).toEqual(['key.access_denied', 'tenant.created']);
    expect(log.data[0]).toMatchObject(refused);
    expect(log.data[0]!.id).toEqual(expect.any(String));
    expect(Date.parse(log.data[0]!.at)).not.toBeNaN();

    const gone = newTenantId();
    expect(await store.appendAudit(gone, refused)).toBe(false);
    expect((await store.listAudit(gone, { limit: 10, cursor: null })).data).toEqual([]);
  });

  it('lists keys and tenants with cursors', async () => {
    const t = tenant(10);
    await store.createTenant(t, audit);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const k = key(t.id, hash());
      ids.push(k.id);
      await store.createKey(k, audit);
    }
    const a = await store.listKeys(t.id, { limit: 2, cursor: null });
    const b = await store.listKeys(t.id, { limit: 2, cursor: a.nextCursor });
    const c = await store.listKeys(t.id, { limit: 2, cursor: b.nextCursor });
    expect([...a.data, ...b.data, ...c.data].map((k) => k.id)).toEqual(ids);
    expect(c.nextCursor).toBeNull();
  });

  it('deletes a tenant and every key with it', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const h = hash();
    await store.createKey(key(t.id, h), audit);
    expect(await store.deleteTenant(t.id)).toBe(true);
    expect(await store.lookup(h)).toBeNull();
    expect(await store.getTenant(t.id)).toBeNull();
    expect(await store.deleteTenant(t.id)).toBe(false);
  });

  it('adds usage in batches and reads it per period, key and fleet', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const counts = (c: Partial<UsageCounts>): UsageCounts => ({ ...zeroCounts(), ...c });
    await store.addUsage([
      { tenantId: t.id, keyId: 'key_a', period: '2026-11-22', counts: counts({ allowed: 3, denied: 1, sessions: 1, sessionMs: 1_500 }) },
      { tenantId: t.id, keyId: 'key_b', period: '2026-11-22', counts: counts({ allowed: 2, rateLimited: 4 }) },
    ]);
    await store.addUsage([{ tenantId: t.id, keyId: 'key_a', period: '2026-11-22', counts: counts({ allowed: 1, sessionMs: 250 }) }]);
    const all = await store.readUsage(t.id, ['2026-11-22', '2026-11-21'], null);
    expect(all.get('2026-11-22')).toEqual(counts({ allowed: 6, denied: 1, rateLimited: 4, sessions: 1, sessionMs: 1_750 }));
    expect(all.get('2026-11-21')).toEqual(zeroCounts());
    expect((await store.readUsage(t.id, ['2026-11-22'], 'key_a')).get('2026-11-22')).toEqual(counts({ allowed: 4, denied: 1, sessions: 1, sessionMs: 1_750 }));
    expect((await store.readTotals('2026-11-22')).allowed).toBeGreaterThanOrEqual(6);
    expect((await store.readTotals('2026-11-22')).sessionMs).toBeGreaterThanOrEqual(1_750);
    await store.touchKeys([{ tenantId: t.id, keyId: 'key_a', at: '2026-11-22T10:00:00.000Z' }]);
    expect(await store.lastUsed(t.id, ['key_a', 'key_b'])).toEqual(new Map([['key_a', '2026-11-22T10:00:00.000Z']]));
  });
});
