import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { admin, createTenant, expectError, proxied, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedisCluster, type RedisTopology } from '../helpers/redis-topologies.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// The key lifecycle end to end on a six-node Redis Cluster with two keygate replicas (standalone,
// Sentinel and Cluster behave the same). A Cluster review found a key rotated with a grace period could never be
// revoked there (CROSSSLOT → 503), and the replica answering a revoke still accepted the key for 20–36 ms.

let cluster: RedisTopology;
let upstream: Upstream;
let a: KeygateProcess;
let b: KeygateProcess;

beforeAll(async () => {
  [cluster, upstream] = await Promise.all([startRedisCluster(), startUpstream()]);
  // A long cache TTL, so that only an eviction can explain a replica refusing a key it has cached.
  const config = { redis: cluster.config, cache: { ttlSeconds: 3600, negativeTtlSeconds: 3600 }, usage: { flushIntervalSeconds: 1 } };
  const start = () => startKeygate({ config, upstream: upstream.url, redisUrl: null });
  [a, b] = await Promise.all([start(), start()]);
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([cluster?.close(), upstream?.close()]);
});

const call = (kg: KeygateProcess, key: string) => proxied(kg, '/v1/calls', { 'x-api-key': key }).then((r) => r.status);

/** Statuses of every value on every replica, e.g. { a: [200, 401], b: [200, 401] }. */
async function statuses(values: string[]) {
  return { a: await Promise.all(values.map((v) => call(a, v))), b: await Promise.all(values.map((v) => call(b, v))) };
}

describe('key lifecycle on Redis Cluster, two replicas', () => {
  it('rotate with a grace period, then revoke: 204, and both values are refused by every replica', async () => {
    const { tenant } = await createTenant(a, { name: 'grace', plan: 'pro' });
    const made = await admin(a, 'POST', `/tenants/${tenant.id}/api-keys`, { permissions: ['calls:read'] });
    const first = made.body.key as string;
    expect(await statuses([first])).toEqual({ a: [200], b: [200] });
    const rotated = await admin(a, 'POST', `/tenants/${tenant.id}/api-keys/${made.body.id}/rotate`, { gracePeriodSeconds: 3600 });
    expect(rotated.status).toBe(201);
    const second = rotated.body.key as string;
    expect(await statuses([first, second])).toEqual({ a: [200, 200], b: [200, 200] });

    const revoked = await admin(b, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.body.id}`);
    expect(revoked.status).toBe(204);
    // The replica that answered refuses both at once; the other once the invalidation arrives.
    expect([await call(b, first), await call(b, second)]).toEqual([401, 401]);
    await expect.poll(() => statuses([first, second])).toEqual({ a: [401, 401], b: [401, 401] });
    expect((await admin(a, 'GET', `/tenants/${tenant.id}/api-keys/${made.body.id}`)).status).toBe(404);
  });

  it('rotates twice (with grace, then without): only the newest value works, on every replica', async () => {
    const { tenant } = await createTenant(a, { name: 'twice', plan: 'pro' });
    const made = await admin(a, 'POST', `/tenants/${tenant.id}/api-keys`, { permissions: ['calls:read'] });
    const v1 = made.body.key as string;
    const r1 = await admin(a, 'POST', `/tenants/${tenant.id}/api-keys/${made.body.id}/rotate`, { gracePeriodSeconds: 3600 });
    const v2 = r1.body.key as string;
    expect(await statuses([v1, v2])).toEqual({ a: [200, 200], b: [200, 200] });
    const r2 = await admin(b, 'POST', `/tenants/${tenant.id}/api-keys/${made.body.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(r2.status).toBe(201);
    const v3 = r2.body.key as string;
    expect([await call(b, v1), await call(b, v2), await call(b, v3)]).toEqual([401, 401, 200]);
    await expect.poll(() => statuses([v1, v2, v3])).toEqual({ a: [401, 401, 200], b: [401, 401, 200] });
  });

  it('deletes a tenant in the middle of a grace period: 204, every value of every key refused everywhere', async () => {
    const { tenant, key } = await createTenant(a, { name: 'gone', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    const rotated = await self(a, key, 'POST', `/api-keys/${made.body.id}/rotate`, { gracePeriodSeconds: 3600 });
    const values = [key, made.body.key as string, rotated.body.key as string];
    expect(await statuses(values)).toEqual({ a: [200, 200, 200], b: [200, 200, 200] });

    expect((await admin(b, 'DELETE', `/tenants/${tenant.id}`)).status).toBe(204);
    expect(await Promise.all(values.map((v) => call(b, v)))).toEqual([401, 401, 401]);
    await expect.poll(() => statuses(values)).toEqual({ a: [401, 401, 401], b: [401, 401, 401] });
    expect((await admin(a, 'GET', `/tenants/${tenant.id}`)).status).toBe(404);
    expect((await admin(a, 'GET', '/tenants?limit=100')).body.data.map((t: { id: string }) => t.id)).not.toContain(tenant.id);
  });

  it('shares a limit across replicas exactly, and counts usage exactly', async () => {
    const { key } = await createTenant(a, { name: 'limits', plan: 'free' });
    const made = await self(a, key, 'POST', '/api-keys', { permissions: ['calls:read'], rateLimit: { requestsPerMinute: 50 } });
    const k = made.body.key as string;
    const results: number[] = [];
    for (let i = 0; i < 60; i++) results.push(await call(i % 2 ? a : b, k));
    expect(results.filter((s) => s === 200)).toHaveLength(50);
    expect(results.filter((s) => s === 429)).toHaveLength(10);
    const today = new Date().toISOString().slice(0, 10);
    await expect
      .poll(async () => (await self(b, key, 'GET', `/usage?keyId=${made.body.id}&from=${today}&to=${today}`)).body.data[0], { timeout: 10_000 })
      .toEqual({ period: today, requests: 60, allowed: 50, denied: 0, rateLimited: 10, sessions: 0, sessionSeconds: 0 });
  });

  it('the replica that answers a revoke, disable, rotation or suspension refuses the key on its very next request', async () => {
    const { tenant, key } = await createTenant(a, { name: 'at-once', plan: 'enterprise', maxKeys: 1000 });
    // 40 rounds per replica: each creates a key, caches it on the replica with a request, changes it through
    // that replica's admin API and sends the next request at once (13 and 21 of them got through).
    for (let i = 0; i < 40; i++) {
      const kg = i % 2 ? a : b;
      const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
      const v = made.body.key as string;
      const path = `/tenants/${tenant.id}/api-keys/${made.body.id}`;
      expect(await call(kg, v)).toBe(200);
      switch (i % 4) {
        case 0:
        case 1:
          expect((await admin(kg, 'DELETE', path)).status).toBe(204);
          expectError(await proxied(kg, '/v1/calls', { 'x-api-key': v }), 401, 'invalid_api_key');
          break;
        case 2:
          expect((await admin(kg, 'PATCH', path, { isActive: false })).status).toBe(200);
          expectError(await proxied(kg, '/v1/calls', { 'x-api-key': v }), 401, 'key_disabled');
          await admin(kg, 'DELETE', path);
          break;
        case 3: {
          const next = await admin(kg, 'POST', `${path}/rotate`, { gracePeriodSeconds: 0 });
          expect(next.status).toBe(201);
          expectError(await proxied(kg, '/v1/calls', { 'x-api-key': v }), 401, 'invalid_api_key');
          expect(await call(kg, next.body.key)).toBe(200);
          await admin(kg, 'DELETE', path);
        }
      }
    }
    for (const kg of [a, b]) {
      expect(await call(kg, key)).toBe(200);
      expect((await admin(kg, 'PATCH', `/tenants/${tenant.id}`, { status: 'suspended' })).status).toBe(200);
      expectError(await proxied(kg, '/v1/calls', { 'x-api-key': key }), 403, 'tenant_suspended');
      expect((await admin(kg, 'PATCH', `/tenants/${tenant.id}`, { status: 'active' })).status).toBe(200);
      expect(await call(kg, key)).toBe(200);
    }
  });

  it('logs a store failure answered 503 with the operation, the Redis command, the cause and the request id', async () => {
    const { tenant, key } = await createTenant(a, { name: 'broken', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    // Records of the wrong type make Redis refuse the commands that read them (a reply error, as CROSSSLOT is).
    await cluster.client.del(`kg:{${tenant.id}}:t`);
    await cluster.client.hset(`kg:{${tenant.id}}:t`, 'broken', '1');
    const hash = createHash('sha256').update(made.body.key as string).digest('hex');
    await cluster.client.del(`kg:vr:${hash}`);
    await cluster.client.hset(`kg:vr:${hash}`, 'broken', '1');

    const management = await admin(b, 'GET', `/tenants/${tenant.id}`);
    expectError(management, 503, 'store_unavailable');
    const proxiedReply = await proxied(b, '/v1/calls', { 'x-api-key': made.body.key });
    expectError(proxiedReply, 503, 'store_unavailable');

    await expect.poll(() => b.output()).toContain(management.body.error.requestId);
    await expect.poll(() => b.output()).toContain(proxiedReply.body.error.requestId);
    const lines = b.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
    const mgmt = lines.find((l) => l.requestId === management.body.error.requestId && l.level === 'warn')!;
    expect(mgmt).toMatchObject({ op: 'getTenant', command: 'GET' });
    expect(mgmt.err.message).toMatch(/getTenant \(GET\): WRONGTYPE/);
    const auth = lines.find((l) => l.requestId === proxiedReply.body.error.requestId && l.level === 'warn')!;
    expect(auth.err.message).toMatch(/lookup \(GET\): WRONGTYPE/);
    await Promise.all([cluster.client.del(`kg:{${tenant.id}}:t`), cluster.client.del(`kg:vr:${hash}`)]);
  });
});
