import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, proxied, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedisCluster, type RedisTopology } from '../helpers/redis-topologies.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { FAST_WEBHOOKS, platformEndpoint, until, useReceivers, type Receiver } from '../helpers/webhooks.ts';

// The webhook path on Redis Cluster: tenant outboxes in each tenant's slot, written in the mutation's
// script; the platform's outbox, the delivery queue and the endpoints in the `{webhooks}` slot. Two replicas on a
// six-node cluster deliver every kind of event, each once and verified by `standardwebhooks`; then the master
// serving `{webhooks}` is SIGKILLed, and events written after its replica took over are delivered too.

const startReceiver = useReceivers();

describe('webhooks on Redis Cluster', () => {
  let cluster: RedisTopology;
  let upstream: Upstream;
  const replicas: KeygateProcess[] = [];

  beforeAll(async () => {
    [cluster, upstream] = await Promise.all([startRedisCluster(), startUpstream()]);
    const config = {
      redis: { ...cluster.config, commandTimeoutMs: 500 },
      webhooks: FAST_WEBHOOKS,
      limits: { failedAttempts: { maxFailures: 3, windowSeconds: 60, blockSeconds: 60 } },
    };
    replicas.push(...(await Promise.all([0, 1].map(() => startKeygate({ config, upstream: upstream.url, redisUrl: null })))));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(replicas.map((kg) => kg.stop()));
    await Promise.all([cluster?.close(), upstream?.close()]);
  });

  /** Every event in `rec` once (by webhook-id), each verified with the endpoint's secret. */
  const onceEach = (rec: Receiver) => {
    expect(rec.got.every((g) => g.verifiedWith.length === 1)).toBe(true);
    expect(new Set(rec.got.map((g) => g.id)).size).toBe(rec.got.length);
  };

  it('delivers key events, tenant deletions and limits.blocked from every slot, then again after the {webhooks} master fails over', async () => {
    const [a, b] = replicas as [KeygateProcess, KeygateProcess];
    const platform = await startReceiver();
    await platformEndpoint(a, platform);

    // Six tenants (their outboxes spread over the slots), through both replicas; one with its own endpoint.
    const tenants = await Promise.all(Array.from({ length: 6 }, (_, i) => createTenant(i % 2 ? a : b, { name: `c${i}`, plan: 'pro' })));
    // The first keys' events fanned out before the tenant's endpoint exists (it gets events fanned out after).
    await until('the first keys\' events', () => platform.got.length >= 6);
    const own = await startReceiver();
    const made = await self(b, tenants[0]!.key, 'POST', '/webhooks', { url: own.url, events: ['*'] });
    expect(made.status).toBe(201);
    own.secrets.push(made.body.secret);
    const expected: Array<[string, string]> = tenants.map((t) => ['key.created', t.apiKey.id]);
    for (const [i, t] of tenants.entries()) {
      const kg = i % 2 ? b : a;
      const k = await self(kg, t.key, 'POST', '/api-keys', { name: 'second', permissions: ['calls:read'] });
      expect(k.status).toBe(201);
      expect((await self(kg, t.key, 'PATCH', `/api-keys/${k.body.id}`, { name: 'renamed' })).status).toBe(200);
      expect((await self(kg, t.key, 'POST', `/api-keys/${k.body.id}/rotate`, {})).status).toBe(201);
      expect((await self(kg, t.key, 'DELETE', `/api-keys/${k.body.id}`)).status).toBe(204);
      expected.push(['key.created', k.body.id], ['key.updated', k.body.id], ['key.rotated', k.body.id], ['key.revoked', k.body.id]);
    }
    // A deleted tenant: its first key's key.revoked. A blocked address: limits.blocked, the platform's outbox.
    expect((await admin(a, 'DELETE', `/tenants/${tenants[5]!.tenant.id}`)).status).toBe(204);
    expected.push(['key.revoked', tenants[5]!.apiKey.id]);
    for (let i = 0; i < 3; i++) expect((await proxied(i % 2 ? a : b, '/v1/calls', { 'x-api-key': 'kg_sk_nope' })).status).toBe(401);
    expected.push(['limits.blocked', '']);

    const seen = () => platform.got.map((g) => [g.type, g.data.keyId ?? ''] as [string, string]).sort();
    await until('every event at the platform', () => platform.got.length >= expected.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen()).toEqual([...expected].sort());
    onceEach(platform);
    expect(platform.got.find((g) => g.type === 'limits.blocked')!.data).toMatchObject({ ip: '127.0.0.1', failures: 3 });
    // The tenant's endpoint: its own key events after the endpoint was made (not its first key's key.created).
    expect(own.got.map((g) => g.type).sort()).toEqual(['key.created', 'key.revoked', 'key.rotated', 'key.updated']);
    expect(own.got.every((g) => g.data.tenantId === tenants[0]!.tenant.id)).toBe(true);
    onceEach(own);

    // The master serving {webhooks} (queue, endpoints, the platform's outbox) dies; let its replica catch up first.
    await new Promise((r) => setTimeout(r, 300));
    const { promoted } = await cluster.killMaster('{webhooks}');
    await promoted;
    const after: Array<[string, string]> = [];
    for (const [i, t] of tenants.slice(0, 5).entries()) {
      // A mutation may meet the failover still in the client (503); one answered 201 has its event written.
      // (The admin API: 127.0.0.1 is blocked on the public listener now.)
      const k = await until('a key created after the failover', async () => {
        const r = await admin(i % 2 ? a : b, 'POST', `/tenants/${t.tenant.id}/api-keys`, { name: 'after' });
        if (r.status !== 201) expect(r.status).toBe(503);
        return r.status === 201 ? r : null;
      });
      after.push(['key.created', k.body.id]);
    }
    await until('every later event at the platform', () => platform.got.length >= expected.length + after.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen()).toEqual([...expected, ...after].sort());
    onceEach(platform);
  }, 120_000);
});
