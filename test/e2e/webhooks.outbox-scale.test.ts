import { type Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startRedisCluster, type RedisTopology } from '../helpers/redis-topologies.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { FAST_WEBHOOKS, platformEndpoint, until, useReceivers } from '../helpers/webhooks.ts';

// The delivery workers' cost while nothing happens must not grow with the tenants. A real keygate on a real
// redis-server and on a six-node Cluster, with 2,000 tenants made through the admin API (each with its first key,
// so each has an outbox stream with its consumer group): the Redis commands of one idle poll are counted with
// INFO commandstats on every master (a script's own commands included), and the polls by their one HVALS
// (the endpoints, read once a poll). Then: a fresh mutation is delivered within a few polls (its signal), an event
// left without a signal within one round of the sweep, and a deleted tenant's outbox is forgotten once its last
// events are delivered.

const TENANTS = 2_000;
/** redis-queue.ts SWEEP_PER_POLL: outboxes swept per poll, so a round of the sweep takes TENANTS ÷ SWEEP polls. */
const SWEEP = 50;
const PREFIX = 'kg:';
const startReceiver = useReceivers();

let redis: RedisServer;
let cluster: RedisTopology;
let upstream: Upstream;
let clusterMasters: Redis[];
beforeAll(async () => {
  [redis, cluster, upstream] = await Promise.all([startRedis(), startRedisCluster(), startUpstream()]);
  clusterMasters = (await cluster.masters()).map((port) => new Redis({ port, host: '127.0.0.1' }));
}, 60_000);
afterAll(async () => {
  for (const m of clusterMasters ?? []) m.disconnect();
  await Promise.all([redis?.close(), cluster?.close(), upstream?.close()]);
});

/** Calls per command, summed over the masters (INFO's own left out). */
async function commandstats(nodes: Redis[]): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (const node of nodes) {
    for (const m of (await node.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
      if (m[1] !== 'info') by.set(m[1]!, (by.get(m[1]!) ?? 0) + Number(m[2]));
    }
  }
  return by;
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

const topologies: Array<[string, () => { redisUrl: string | null; redis: Record<string, unknown> }, () => Redis | Cluster, () => Redis[]]> = [
  ['redis', () => ({ redisUrl: redis.url, redis: {} }), () => redis.client, () => [redis.client]],
  ['redis cluster', () => ({ redisUrl: null, redis: cluster.config }), () => cluster.client, () => clusterMasters],
];

describe.each(topologies)('webhook outboxes with 2,000 tenants (%s)', (name, where, clientOf, mastersOf) => {
  let kg: KeygateProcess;
  beforeAll(async () => {
    const { redisUrl, redis: redisConfig } = where();
    kg = await startKeygate({ config: { redis: { ...redisConfig, keyPrefix: PREFIX }, webhooks: { ...FAST_WEBHOOKS, pollIntervalMs: 100 } }, upstream: upstream.url, redisUrl });
  }, 60_000);
  afterAll(async () => {
    await kg?.stop();
  });

  /** Polls run since `before` (each reads the endpoints once: HVALS), and every command meanwhile. */
  const since = async (before: Map<string, number>) => {
    const now = await commandstats(mastersOf());
    return { polls: (now.get('hvals') ?? 0) - (before.get('hvals') ?? 0), commands: total(now) - total(before) };
  };

  it('costs the same few Redis commands per idle poll whatever the number of tenants, and delivers a fresh event within a few polls', async () => {
    const client = clientOf();
    const started = Date.now();
    for (let i = 0; i < TENANTS; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, TENANTS - i) }, (_, j) => createTenant(kg, { name: `t${i + j}`, plan: 'free' })));
    }
    console.log(`${name}: ${TENANTS} tenants made through the admin API in ${Date.now() - started} ms`);
    expect(await client.scard(`${PREFIX}{webhooks}:outboxes`)).toBe(TENANTS);
    // Their first keys' events read (nothing signalled any more), then idle.
    await until('every signal read', async () => (await client.scard(`${PREFIX}{webhooks}:ready`)) === 0);
    await new Promise((r) => setTimeout(r, 500));

    const before = await commandstats(mastersOf());
    await new Promise((r) => setTimeout(r, 3_000));
    const idle = await since(before);
    const perPoll = idle.commands / idle.polls;
    console.log(`${name}: idle with ${TENANTS} tenants: ${idle.commands} Redis commands in ${idle.polls} polls, ${perPoll.toFixed(1)} per poll (scripts' own commands included)`);
    expect(idle.polls).toBeGreaterThan(5);
    // Per swept outbox one script (EXISTS, XAUTOCLAIM, XREADGROUP inside it); a few more per poll (the ready
    // set, the sweep's page, the endpoints, their health, the due jobs): a constant, not 2 × TENANTS.
    expect(perPoll).toBeLessThan(4 * SWEEP + 30);

    // A key mutation's event: read through its signal, within a few polls (a round of the sweep is 40).
    const rec = await startReceiver();
    await platformEndpoint(kg, rec, ['key.created']);
    const { tenant } = await createTenant(kg, { name: 'fresh', plan: 'free' });
    const mark = await commandstats(mastersOf());
    const made = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { name: 'second' });
    expect(made.status).toBe(201);
    await until('the fresh key.created', () => rec.got.find((g) => g.data.keyId === made.body.id));
    const took = await since(mark);
    console.log(`${name}: a fresh key.created delivered ${took.polls} polls after its mutation (a round of the sweep: ${TENANTS / SWEEP} polls)`);
    expect(took.polls).toBeLessThanOrEqual(5);
  }, 240_000);

  it('delivers an event whose signal was lost within one round of the sweep', async () => {
    const client = clientOf();
    const rec = await startReceiver();
    await platformEndpoint(kg, rec, ['key.updated']);
    const { tenant } = await createTenant(kg, { name: 'unsignalled', plan: 'free' });
    await until('no signal pending', async () => (await client.scard(`${PREFIX}{webhooks}:ready`)) === 0);
    // What a mutation leaves when its signal is lost (the `{webhooks}` master died before writing it): the entry
    // in the tenant's outbox, and nothing in `{webhooks}:ready`.
    const event = { id: 'msg_unsignalled', type: 'key.updated', timestamp: new Date().toISOString(), data: { tenantId: tenant.id, keyId: 'key_lost_signal' } };
    const mark = await commandstats(mastersOf());
    await client.xadd(`${PREFIX}{${tenant.id}}:outbox`, '*', 'e', JSON.stringify(event));
    await until('the unsignalled event', () => rec.got.find((g) => g.id === 'msg_unsignalled'), 60_000);
    const took = await since(mark);
    console.log(`${name}: an event without its signal delivered ${took.polls} polls after it was written (a round of the sweep: ${Math.ceil((TENANTS + 3) / SWEEP)} polls)`);
    expect(took.polls).toBeLessThanOrEqual(Math.ceil((TENANTS + 3) / SWEEP) + 2);
  }, 120_000);

  it("forgets a deleted tenant's outbox once its last events (its keys' key.revoked) are delivered", async () => {
    const client = clientOf();
    const rec = await startReceiver();
    await platformEndpoint(kg, rec, ['key.revoked']);
    const { tenant, apiKey } = await createTenant(kg, { name: 'leaving', plan: 'pro' });
    const second = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { name: 'second' });
    expect(second.status).toBe(201);
    const stream = `${PREFIX}{${tenant.id}}:outbox`;
    await until('its outbox written', async () => (await client.exists(stream)) === 1);
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}`)).status).toBe(204);
    await until('both key.revoked', () => rec.got.length >= 2);
    expect(rec.got.map((g) => g.data.keyId).sort()).toEqual([apiKey.id, second.body.id].sort());
    await until('its outbox forgotten', async () => (await client.sismember(`${PREFIX}{webhooks}:outboxes`, tenant.id)) === 0);
    expect(await client.exists(stream)).toBe(0);
    expect(await client.scard(`${PREFIX}{webhooks}:retired`)).toBe(0);
  }, 60_000);
});
