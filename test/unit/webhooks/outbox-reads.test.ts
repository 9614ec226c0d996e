import { type Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.ts';
import { createRedisClient, waitReady } from '../../../src/store/redis/connect.ts';
import type { WebhookEvent } from '../../../src/webhooks/events.ts';
import { outboxKey, outboxSetKey, readyKey } from '../../../src/webhooks/keys.ts';
import { RedisOutbox } from '../../../src/webhooks/outbox.ts';
import { RedisWebhookQueue } from '../../../src/webhooks/redis-queue.ts';
import type { WebhookCaps } from '../../../src/webhooks/types.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import { startRedisCluster, type RedisTopology } from '../../helpers/redis-topologies.ts';

// How the delivery workers read the outboxes (RedisWebhookQueue.readOutbox), on a real redis-server and a six-node
// Cluster: what one read costs with thousands of tenants named and nothing written, how an event whose tenant was
// signalled is read at once, how one whose signal was lost is found by the sweep, how a dead consumer's entry is
// claimed, and how a deleted tenant's outbox is forgotten once emptied. Commands are counted with INFO
// commandstats on every master (a script's own commands included).

const CAPS: WebhookCaps = { maxEndpointsPerTenant: 10, maxPendingJobsPerTenant: 100, maxPendingJobsPerEndpoint: 100, maxDeadLettersPerTenant: 10, maxDeadLettersPerEndpoint: 10, deadLetterHours: 1 };
const TENANTS = 2_000;
/** The sweep's slice per read (redis-queue.ts SWEEP_PER_POLL): how many reads a full round of the sweep takes. */
const SWEEP = 50;
const BATCH = 50;

let redis: RedisServer;
let cluster: RedisTopology;
let clusterClient: Redis | Cluster;
let clusterMasters: Redis[];
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  clusterClient = createRedisClient(configSchema.parse({ redis: cluster.config }).redis, 'main');
  if (!(await waitReady(clusterClient, 10_000))) throw new Error('the Cluster client did not connect');
  clusterMasters = (await cluster.masters()).map((port) => new Redis({ port, host: '127.0.0.1' }));
}, 60_000);
afterAll(async () => {
  clusterClient.disconnect();
  for (const m of clusterMasters) m.disconnect();
  await Promise.all([redis.close(), cluster.close()]);
});

/** Commands every master has run (from INFO commandstats, a script's own included), less the INFO calls. */
async function commands(nodes: Redis[]): Promise<number> {
  let n = 0;
  for (const node of nodes) {
    const stats = await node.info('commandstats');
    for (const m of stats.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) if (m[1] !== 'info') n += Number(m[2]);
  }
  return n;
}

let prefixes = 0;
const topologies: Array<[string, () => Redis | Cluster, () => Redis[]]> = [
  ['redis', () => redis.client, () => [redis.client]],
  ['redis cluster', () => clusterClient, () => clusterMasters],
];

const event = (i: number): WebhookEvent => ({ id: `msg_${i}`, type: 'key.updated', timestamp: new Date().toISOString(), data: { n: i } });

describe.each(topologies)('webhook outbox reads (%s)', (_name, clientOf, mastersOf) => {
  const setUp = async () => {
    const client = clientOf();
    const prefix = `or${++prefixes}:`;
    const tenants = Array.from({ length: TENANTS }, (_, i) => `ten_${prefix.slice(0, -1)}_${String(i).padStart(5, '0')}`);
    const outbox = new RedisOutbox(client, prefix, 1_000);
    await outbox.registerAll(tenants);
    const queue = () => new RedisWebhookQueue(client, prefix, 1_000, CAPS);
    /** A mutation's write: the entry in the tenant's slot, as the store's script writes it (no signal). */
    const write = async (tenant: string, i: number) => {
      await client.xadd(outboxKey(prefix, tenant), 'MAXLEN', '~', 1_000, '*', 'e', JSON.stringify(event(i)));
    };
    /** A tenant the sweep of a fresh queue reaches last of all: not in its first SSCAN page. */
    const firstPage = new Set((await client.sscan(outboxSetKey(prefix), '0', 'COUNT', SWEEP))[1]);
    const late = tenants.filter((t) => !firstPage.has(t));
    return { client, prefix, tenants, outbox, queue, write, late };
  };

  it('costs the same few commands per read with 2,000 tenants named and nothing written, and makes no stream', async () => {
    const { client, prefix, tenants, queue } = await setUp();
    const q = queue();
    await q.readOutbox('c1', BATCH, 30_000);
    const reads = 20;
    const before = await commands(mastersOf());
    for (let i = 0; i < reads; i++) expect(await q.readOutbox('c1', BATCH, 30_000)).toEqual([]);
    const perRead = ((await commands(mastersOf())) - before) / reads;
    console.log(`idle outbox read with ${TENANTS} tenants named (${_name}): ${perRead} Redis commands per read (scripts' own included)`);
    // SPOP, SSCAN, SRANDMEMBER and one script (and its EXISTS) per outbox of the slice: independent of TENANTS.
    expect(perRead).toBeLessThanOrEqual(2 * SWEEP + 10);
    // No outbox stream, and so no consumer group, was made for a tenant that was never written to.
    const sample = tenants.filter((_, i) => i % 20 === 0);
    expect((await Promise.all(sample.map((t) => client.exists(outboxKey(prefix, t))))).every((n) => n === 0)).toBe(true);
  }, 60_000);

  it("reads a signalled tenant's new entry on the next read; an entry whose signal was lost, within one round of the sweep", async () => {
    const { client, prefix, outbox, queue, write, late } = await setUp();
    const q = queue();
    const [signalled, unsignalled] = [late[0]!, late[1]!];

    await write(signalled, 1);
    outbox.notify(signalled);
    await new Promise((r) => setTimeout(r, 50));
    const first = await q.readOutbox('c1', BATCH, 30_000);
    expect(first.map((m) => [m.tenantId, m.event.id])).toEqual([[signalled, 'msg_1']]);
    await q.ackOutbox(first);

    // The signal is lost (the `{webhooks}` master died before writing it): only the sweep finds the entry.
    await write(unsignalled, 2);
    expect(await client.scard(readyKey(prefix))).toBe(0);
    let reads = 0;
    let found: Awaited<ReturnType<typeof q.readOutbox>> = [];
    while (!found.length && reads < 2 * Math.ceil(TENANTS / SWEEP)) {
      reads++;
      found = await q.readOutbox('c1', BATCH, 30_000);
    }
    console.log(`an entry whose signal was lost (${_name}): read by the sweep on read ${reads} (one round of the sweep: ${Math.ceil(TENANTS / SWEEP)} reads)`);
    expect(found.map((m) => [m.tenantId, m.event.id])).toEqual([[unsignalled, 'msg_2']]);
    expect(reads).toBeLessThanOrEqual(Math.ceil(TENANTS / SWEEP) + 1);
  }, 60_000);

  it('sweeps every outbox within ceil(outboxes ÷ 50) reads, also once most tenants have left the set', async () => {
    const { client, prefix, tenants, queue, write } = await setUp();
    const left = tenants.filter((_, i) => i % 10 === 0);
    const gone = tenants.filter((_, i) => i % 10 !== 0);
    for (let i = 0; i < gone.length; i += 500) await client.srem(outboxSetKey(prefix), ...gone.slice(i, i + 500));
    const written = left;
    await Promise.all(written.map((t, i) => write(t, i)));
    const q = queue();
    const seen = new Set<string>();
    const rounds = Math.ceil(left.length / SWEEP);
    for (let i = 0; i < rounds; i++) for (const m of await q.readOutbox('c1', BATCH, 30_000)) seen.add(m.tenantId!);
    expect([...seen].sort()).toEqual([...written].sort());
  }, 60_000);

  it("signals a tenant again while its outbox holds more than one read's batch", async () => {
    const { outbox, queue, write, late } = await setUp();
    const q = queue();
    const t = late[0]!;
    for (let i = 0; i < BATCH + 10; i++) await write(t, i);
    outbox.notify(t);
    await new Promise((r) => setTimeout(r, 50));
    const a = await q.readOutbox('c1', BATCH, 30_000);
    const b = await q.readOutbox('c1', BATCH, 30_000);
    expect([a.length, b.length]).toEqual([BATCH, 10]);
    expect(new Set([...a, ...b].map((m) => m.event.id)).size).toBe(BATCH + 10);
  }, 60_000);

  it('hands an entry held by a dead consumer to another once claimIdleMs has passed (found by the sweep)', async () => {
    const { outbox, queue, write, late } = await setUp();
    const t = late[0]!;
    await write(t, 7);
    outbox.notify(t);
    await new Promise((r) => setTimeout(r, 50));
    // The first replica reads the entry and dies before fanning it out (never acknowledged).
    expect((await queue().readOutbox('dead', BATCH, 200)).map((m) => m.event.id)).toEqual(['msg_7']);
    const survivor = queue();
    expect(await survivor.readOutbox('alive', BATCH, 200)).toEqual([]);
    await new Promise((r) => setTimeout(r, 250));
    let reads = 0;
    let found: Awaited<ReturnType<typeof survivor.readOutbox>> = [];
    while (!found.length && reads < 2 * Math.ceil(TENANTS / SWEEP)) {
      reads++;
      found = await survivor.readOutbox('alive', BATCH, 200);
    }
    expect(found.map((m) => [m.tenantId, m.event.id])).toEqual([[t, 'msg_7']]);
    expect(reads).toBeLessThanOrEqual(Math.ceil(TENANTS / SWEEP) + 1);
  }, 60_000);

  it("forgets a deleted tenant's outbox only once its last entries are fanned out", async () => {
    const { client, prefix, outbox, queue, write, late } = await setUp();
    const q = queue();
    const t = late[0]!;
    await write(t, 1);
    await write(t, 2);
    outbox.notify(t);
    await q.retireOutbox(t);
    await new Promise((r) => setTimeout(r, 50));
    const last = await q.readOutbox('c1', BATCH, 30_000);
    expect(last.map((m) => m.event.id)).toEqual(['msg_1', 'msg_2']);
    // Read, not yet acknowledged: still named, its stream still there.
    expect(await client.sismember(outboxSetKey(prefix), t)).toBe(1);
    await q.ackOutbox(last);
    await q.readOutbox('c1', BATCH, 30_000);
    expect(await client.sismember(outboxSetKey(prefix), t)).toBe(0);
    expect(await client.exists(outboxKey(prefix, t))).toBe(0);
    expect(await client.scard(outboxSetKey(prefix))).toBe(TENANTS - 1);
  }, 60_000);
});
