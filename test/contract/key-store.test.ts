import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.ts';
import { newKeyId, newTenantId } from '../../src/keys/ids.ts';
import type { StoredKey, Tenant } from '../../src/keys/types.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { createRedisClient, waitReady } from '../../src/store/redis/connect.ts';
import { RedisStore, StoreError } from '../../src/store/redis/redis-store.ts';
import { zeroCounts, type KeyStore, type StoreEvent, type UsageCounts } from '../../src/store/types.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startRedisCluster, startRedisSentinel, type RedisTopology } from '../helpers/redis-topologies.ts';

// One suite, every KeyStore: the memory store, and the Redis store on a real redis-server standalone, behind
// a Sentinel trio and on a six-node Cluster, connected as keygate connects (src/store/redis/connect.ts). On
// Cluster a multi-key command across slots fails (CROSSSLOT), so the suite is what keeps the key layout
// slot-safe (docs/redis-keys.md).

let redis: RedisServer;
let sentinel: RedisTopology;
let cluster: RedisTopology;
beforeAll(async () => {
  [redis, sentinel, cluster] = await Promise.all([startRedis(), startRedisSentinel(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.close(), sentinel?.close(), cluster?.close()]);
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

const redisConfig = (topology: Partial<Config['redis']>): Config['redis'] => ({
  url: null, sentinels: null, sentinelName: 'mymaster', clusterNodes: null, keyPrefix: 'kg:', commandTimeoutMs: 2_000, channel: 'inv', ...topology,
});

async function redisStore(topology: Partial<Config['redis']>, prefix = `c${n++}:`, channel = `inv${n}`): Promise<RedisStore> {
  const cfg = redisConfig(topology);
  const client = createRedisClient(cfg, 'main');
  const subscriber = createRedisClient(cfg, 'subscriber');
  if (!(await waitReady(client, 10_000))) throw new Error('the store did not connect');
  return new RedisStore({ client, subscriber, prefix, channel, auditMaxEntries: 100 });
}

const factories: Array<[string, () => Promise<KeyStore>]> = [
  ['memory', async () => new MemoryStore({ auditMaxEntries: 100 })],
  ['redis standalone', () => redisStore({ url: redis.url })],
  ['redis sentinel', () => redisStore(sentinel.config)],
  ['redis cluster', () => redisStore(cluster.config)],
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

  it('refreshes cached hashes as lookup would answer now, in one call: null once a hash no longer verifies', async () => {
    const [t, other] = [tenant(5), tenant()];
    await store.createTenant(t, audit);
    await store.createTenant(other, audit);
    const hashes = [hash(), hash(), hash(), hash(), hash()];
    const keys = hashes.map((h, i) => key(i < 4 ? t.id : other.id, h));
    for (const k of keys) await store.createKey(k, audit);
    const refs = keys.map((k) => ({ hash: k.hashes[0]!.hash, tenantId: k.tenantId, keyId: k.id }));
    expect(await store.refresh(refs)).toEqual(await Promise.all(hashes.map((h) => store.lookup(h))));
    expect(await store.refresh([])).toEqual([]);

    await store.updateKey(t.id, keys[0]!.id, (k) => ({ ...k, isActive: false }), audit);
    await store.revokeKey(t.id, keys[1]!.id, audit);
    await store.rotateKey(t.id, keys[2]!.id, { hash: hash(), prefix: 'kg_sk_zzzzzz' }, 0, audit);
    await store.deleteTenant(other.id, 'admin');
    const after = await store.refresh(refs);
    expect(after[0]?.key.isActive).toBe(false);
    expect(after.slice(1, 3)).toEqual([null, null]);
    expect(after[3]?.key.id).toBe(keys[3]!.id);
    expect(after[4]).toBeNull();
    expect(after).toEqual(await Promise.all(hashes.map((h) => store.lookup(h))));
    // A hash named with a key it does not point at is no answer for that key.
    expect(await store.refresh([{ ...refs[3]!, keyId: keys[0]!.id }])).toEqual([null]);
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
    // Once each: this process's own mutations are not delivered again when their message comes back.
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toHaveLength(7);
  });

  it("delivers this process's own mutation events before the mutation resolves", async () => {
    const events: StoreEvent[] = [];
    await store.subscribe((e) => events.push(e), () => {});
    const t = tenant();
    await store.createTenant(t, audit);
    const [h1, h2] = [hash(), hash()];
    const k = key(t.id, h1);
    await store.createKey(k, audit);
    // Each assertion runs right after the mutation resolves: no poll, no wait for the channel (issue 14: on
    // Cluster the message came back 20–36 ms after the answer).
    await store.updateKey(t.id, k.id, (cur) => ({ ...cur, isActive: false }), audit);
    expect(events.at(-1)).toEqual({ kind: 'key', tenantId: t.id, keyId: k.id, hashes: [h1] });
    await store.rotateKey(t.id, k.id, { hash: h2, prefix: 'kg_sk_zzzzzz' }, 0, audit);
    expect(events.at(-1)).toEqual({ kind: 'key', tenantId: t.id, keyId: k.id, hashes: [h1] });
    await store.updateTenant(t.id, (cur) => ({ ...cur, status: 'suspended' }), audit);
    expect(events.at(-1)).toEqual({ kind: 'tenant', tenantId: t.id });
    await store.revokeKey(t.id, k.id, audit);
    expect(events.at(-1)).toEqual({ kind: 'key', tenantId: t.id, keyId: k.id, hashes: [h2] });
    await store.deleteTenant(t.id, 'admin');
    expect(events.at(-1)).toEqual({ kind: 'tenant', tenantId: t.id });
  });

  it('revokes a key rotated with a grace period: both values stop verifying at once', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const [h1, h2] = [hash(), hash()];
    const k = key(t.id, h1);
    await store.createKey(k, audit);
    await store.rotateKey(t.id, k.id, { hash: h2, prefix: 'kg_sk_zzzzzz' }, 3600, audit);
    expect((await store.lookup(h1))?.key.id).toBe(k.id);
    // Two verification records in two Cluster slots (issue 14: one DEL for both was CROSSSLOT, every time).
    expect(await store.revokeKey(t.id, k.id, audit)).toBe(true);
    expect(await store.lookup(h1)).toBeNull();
    expect(await store.lookup(h2)).toBeNull();
    expect(await store.getKey(t.id, k.id)).toBeNull();
  });

  it('rotates twice, with grace and then without: only the newest value verifies', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const [h1, h2, h3, h4] = [hash(), hash(), hash(), hash()];
    const k = key(t.id, h1);
    await store.createKey(k, audit);
    await store.rotateKey(t.id, k.id, { hash: h2, prefix: 'kg_sk_zzzzzz' }, 3600, audit);
    await store.rotateKey(t.id, k.id, { hash: h3, prefix: 'kg_sk_yyyyyy' }, 3600, audit);
    for (const h of [h1, h2, h3]) expect((await store.lookup(h))?.key.id).toBe(k.id);
    // The second rotation without grace drops three values at once.
    const last = await store.rotateKey(t.id, k.id, { hash: h4, prefix: 'kg_sk_xxxxxx' }, 0, audit);
    expect(last?.hashes.map((x) => x.hash)).toEqual([h4]);
    for (const h of [h1, h2, h3]) expect(await store.lookup(h)).toBeNull();
    expect((await store.lookup(h4))?.key.id).toBe(k.id);
  });

  it('deletes a tenant in the middle of a grace period: every value of every key stops verifying', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const [h1, h2, h3] = [hash(), hash(), hash()];
    const k = key(t.id, h1);
    await store.createKey(k, audit);
    await store.createKey(key(t.id, h3), audit);
    await store.rotateKey(t.id, k.id, { hash: h2, prefix: 'kg_sk_zzzzzz' }, 3600, audit);
    expect(await store.deleteTenant(t.id, 'admin')).toBe(true);
    for (const h of [h1, h2, h3]) expect(await store.lookup(h)).toBeNull();
    expect(await store.getTenant(t.id)).toBeNull();
    expect((await store.listTenants({ limit: 1000, cursor: null })).data.map((x) => x.id)).not.toContain(t.id);
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

  it('collapses repeated refusals of one group into one entry with its count, leaving other entries in place', async () => {
    const t = tenant();
    await store.createTenant(t, { ...audit, action: 'tenant.created' });
    const refused = (operation: string) => ({ action: 'key.access_denied', actor: 'key_a', keyId: 'key_b', details: { operation, permissionsMissing: [] } });
    for (let i = 0; i < 30; i++) expect(await store.appendRefusal(t.id, refused('read'), 'key_a|key_b|read')).toBe(true);
    expect(await store.appendRefusal(t.id, refused('rotate'), 'key_a|key_b|rotate')).toBe(true);
    const log = (await store.listAudit(t.id, { limit: 10, cursor: null })).data;
    expect(log.map((e) => [e.action, e.details.operation, e.details.count])).toEqual([
      ['key.access_denied', 'rotate', 1],
      ['key.access_denied', 'read', 30],
      ['tenant.created', undefined, undefined],
    ]);
    expect(log[1]!.details).toMatchObject({ permissionsMissing: [], firstAt: expect.any(String) });
    expect(await store.appendRefusal(newTenantId(), refused('read'), 'key_a|key_b|read')).toBe(false);
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
    expect(await store.deleteTenant(t.id, 'admin')).toBe(true);
    expect(await store.lookup(h)).toBeNull();
    expect(await store.getTenant(t.id)).toBeNull();
    expect(await store.deleteTenant(t.id, 'admin')).toBe(false);
  });

  it('adds usage in batches and reads it per period, key and fleet', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const counts = (c: Partial<UsageCounts>): UsageCounts => ({ ...zeroCounts(), ...c });
    const writer = `w${n++}`;
    await store.addUsage({ writer, seq: 1, deltas: [
      { tenantId: t.id, keyId: 'key_a', period: '2026-11-22', counts: counts({ allowed: 3, denied: 1, sessions: 1, sessionMs: 1_500 }) },
      { tenantId: t.id, keyId: 'key_b', period: '2026-11-22', counts: counts({ allowed: 2, rateLimited: 4 }) },
    ] });
    await store.addUsage({ writer, seq: 2, deltas: [{ tenantId: t.id, keyId: 'key_a', period: '2026-11-22', counts: counts({ allowed: 1, sessionMs: 250 }) }] });
    const all = await store.readUsage(t.id, ['2026-11-22', '2026-11-21'], null);
    expect(all.get('2026-11-22')).toEqual(counts({ allowed: 6, denied: 1, rateLimited: 4, sessions: 1, sessionMs: 1_750 }));
    expect(all.get('2026-11-21')).toEqual(zeroCounts());
    expect((await store.readUsage(t.id, ['2026-11-22'], 'key_a')).get('2026-11-22')).toEqual(counts({ allowed: 4, denied: 1, sessions: 1, sessionMs: 1_750 }));
    expect((await store.readTotals('2026-11-22')).allowed).toBeGreaterThanOrEqual(6);
    expect((await store.readTotals('2026-11-22')).sessionMs).toBeGreaterThanOrEqual(1_750);
    // lastUsedAt is kept for keys that exist (a revoked key's goes with it: last-used.bounded.test.ts).
    const used = key(t.id, `lu${n++}`.padEnd(64, '0'));
    await store.createKey(used, audit);
    await store.touchKeys([{ tenantId: t.id, keyId: used.id, at: '2026-11-22T10:00:00.000Z' }, { tenantId: t.id, keyId: 'key_b', at: '2026-11-22T10:00:00.000Z' }]);
    expect(await store.lastUsed(t.id, [used.id, 'key_b'])).toEqual(new Map([[used.id, '2026-11-22T10:00:00.000Z']]));
  });

  it('counts a usage batch once however often it is sent (a retried flush)', async () => {
    const t = tenant();
    await store.createTenant(t, audit);
    const period = '2026-11-23';
    const batch = (seq: number, allowed: number) => ({
      writer: `w${n}`,
      seq,
      deltas: [{ tenantId: t.id, keyId: 'key_a', period, counts: { ...zeroCounts(), allowed } }],
    });
    const totalBefore = (await store.readTotals(period)).allowed;
    await store.addUsage(batch(1, 5));
    await store.addUsage(batch(1, 5));
    await store.addUsage(batch(2, 1));
    await store.addUsage(batch(2, 1));
    expect((await store.readUsage(t.id, [period], 'key_a')).get(period)?.allowed).toBe(6);
    expect((await store.readUsage(t.id, [period], null)).get(period)?.allowed).toBe(6);
    expect((await store.readTotals(period)).allowed - totalBefore).toBe(6);
    // Another writer's batch 1 is its own.
    await store.addUsage({ ...batch(1, 2), writer: `other${n}` });
    expect((await store.readUsage(t.id, [period], 'key_a')).get(period)?.allowed).toBe(8);
  });
});

describe('Redis usage flush', () => {
  it("adds each key's counts once and the tenant's total once per call, across calls of 1,000 keys, however often sent", async () => {
    const store = await redisStore({ url: redis.url });
    const stat = async (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await redis.client.info('commandstats'))?.[1] ?? 0);
    const t = tenant();
    const period = '2026-11-24';
    const deltas = Array.from({ length: 1_500 }, (_, i) => ({ tenantId: t.id, keyId: `key_${i}`, period, counts: { ...zeroCounts(), allowed: 1 + (i % 3) } }));
    const sum = deltas.reduce((a, d) => a + d.counts.allowed, 0);
    const before = await stat('hincrby');
    const batch = { writer: `w${n++}`, seq: 1, deltas };
    await store.addUsage(batch);
    // One HINCRBY per key, one for the tenant's total, five for the fleet totals: not one per key for the total too.
    expect((await stat('hincrby')) - before).toBe(1_500 + 1 + 5);
    await store.addUsage(batch); // a retried flush: nothing counted twice
    expect((await store.readUsage(t.id, [period], null)).get(period)?.allowed).toBe(sum);
    expect((await store.readUsage(t.id, [period], 'key_1499')).get(period)?.allowed).toBe(1 + (1499 % 3));
    await store.close();
  });
});

describe('Redis store failures', () => {
  it('name the store operation and the Redis command', async () => {
    const store = await redisStore(cluster.config, 'failing:');
    try {
      const h = hash();
      // A verification record of the wrong type: the GET fails with a reply error.
      await cluster.client.hset(`failing:vr:${h}`, 'x', '1');
      const err = await store.lookup(h).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ op: 'lookup', command: 'GET' });
      expect((err as Error).message).toBe('lookup (GET)');
      expect(((err as Error).cause as Error).message).toMatch(/^WRONGTYPE/);
    } finally {
      await store.close();
    }
  });
});

describe('Redis Cluster invalidation subscription', () => {
  it('subscribes even when ioredis moves its subscriber connection during start-up', async () => {
    // ioredis Cluster first connects to the configured nodes, then replaces them with the slot map's; a
    // SUBSCRIBE sent meanwhile on a node that goes is dropped (and was never sent again: that replica never
    // evicted anything). Eight stores, each subscribing at once, as keygate does at start-up.
    const cfg = redisConfig(cluster.config);
    const channel = `start${n++}`;
    const stores = Array.from({ length: 8 }, () => new RedisStore({
      client: createRedisClient(cfg, 'main'), subscriber: createRedisClient(cfg, 'subscriber'), prefix: 'start:', channel, auditMaxEntries: 10,
    }));
    const seen = stores.map(() => [] as StoreEvent[]);
    await Promise.all(stores.map((s, i) => s.subscribe((e) => seen[i]!.push(e), () => {}).catch(() => {})));
    const publisher = await redisStore(cluster.config, 'start:', channel);
    try {
      const t = tenant();
      await publisher.createTenant(t, audit);
      // Published again until every store has one (a store may still be subscribing again).
      await expect.poll(async () => {
        await publisher.updateTenant(t.id, (cur) => ({ ...cur, name: `n${Date.now()}` }), audit);
        return seen.filter((events) => events.some((e) => e.kind === 'tenant' && e.tenantId === t.id)).length;
      }, { timeout: 10_000, interval: 500 }).toBe(8);
    } finally {
      await Promise.all([publisher.close(), ...stores.map((s) => s.close())]);
    }
  });

  it('resets the cache once a failover has moved the subscription (messages in between may be lost)', async () => {
    const store = await redisStore(cluster.config);
    let resets = 0;
    try {
      await store.subscribe(() => {}, () => resets++);
      // Start-up settled (the client's first slot map replaces the configured nodes, which may reset once).
      await new Promise((r) => setTimeout(r, 1_500));
      resets = 0;
      const { promoted } = await cluster.killMaster();
      await promoted;
      // ioredis moves the subscription to a live node by itself; the store says so once it has.
      await expect.poll(() => resets, { timeout: 15_000, interval: 200 }).toBeGreaterThan(0);
    } finally {
      await store.close();
      await cluster.heal();
    }
  }, 60_000);
});
