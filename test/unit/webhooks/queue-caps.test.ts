import { type Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryOutbox, MemoryWebhookQueue } from '../../../src/webhooks/memory-queue.ts';
import { RedisWebhookQueue } from '../../../src/webhooks/redis-queue.ts';
import type { DeliveryLogEntry, Job, JobDrop, WebhookCaps, WebhookQueue } from '../../../src/webhooks/types.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { createRedisClient, waitReady } from '../../../src/store/redis/connect.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import { startRedisCluster, type RedisTopology } from '../../helpers/redis-topologies.ts';

// The job caps of both webhook queues (memory, a real redis-server and a six-node Cluster): pending jobs per group and per endpoint,
// dead letters per group and per endpoint, their expiry, and redelivery at a cap. The same script of calls runs
// on both; after each step the queue's own indexes must agree with what it lists.

const CAPS: WebhookCaps = { maxEndpointsPerTenant: 10, maxPendingJobsPerTenant: 30, maxPendingJobsPerEndpoint: 12, maxDeadLettersPerTenant: 20, maxDeadLettersPerEndpoint: 8, deadLetterHours: 1 };
const NO_FAIRNESS = { perGroup: 1_000, busy: new Map<string, number>(), postponeMs: new Map<string, number>() };
const LOG: DeliveryLogEntry = { eventId: 'e', eventType: 'key.updated', attempt: 1, status: null, ok: false, latencyMs: 0, error: 'refused: the receiver refused the connection', at: '', outcome: 'dead', nextAttemptAt: null };

let redis: RedisServer;
let client: Redis;
let cluster: RedisTopology;
let clusterClient: Redis | Cluster;
let n = 0;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  client = new Redis(redis.url);
  // Connected as keygate connects: the scripts name only `{webhooks}` keys, so they run on Cluster.
  clusterClient = createRedisClient(configSchema.parse({ redis: cluster.config }).redis, 'main');
  if (!(await waitReady(clusterClient, 10_000))) throw new Error('the Cluster client did not connect');
}, 60_000);
afterAll(async () => {
  client.disconnect();
  clusterClient.disconnect();
  await Promise.all([redis.close(), cluster.close()]);
});

const queues: Array<[string, () => WebhookQueue]> = [
  ['memory', () => new MemoryWebhookQueue(new MemoryOutbox(), CAPS)],
  ['redis', () => new RedisWebhookQueue(client, `qc${++n}:`, 1000, CAPS)],
  ['redis cluster', () => new RedisWebhookQueue(clusterClient, `qc${++n}:`, 1000, CAPS)],
];

const job = (i: number, endpoint: string, group: string): Job => ({
  key: `msg_${String(i).padStart(6, '0')}:${endpoint}`,
  endpointId: endpoint,
  tenantId: group,
  group,
  event: { id: `msg_${i}`, type: 'key.updated', timestamp: '', data: {} },
  attempts: 1,
  since: 0,
});
const total = (drops: JobDrop[], reason?: string) => drops.filter((d) => !reason || d.reason === reason).reduce((s, d) => s + d.count, 0);

describe.each(queues)('webhook queue caps (%s)', (_name, make) => {
  it('drops jobs over the pending caps, per endpoint and per group, and counts them', async () => {
    const q = make();
    const a = Array.from({ length: 20 }, (_, i) => job(i, 'whe_A1', 'ten_A'));
    expect(total(await q.addJobs(a, 1), 'pending_endpoint_cap')).toBe(8);
    const b = Array.from({ length: 20 }, (_, i) => job(100 + i, 'whe_A2', 'ten_A'));
    const dropped = await q.addJobs(b, 1);
    // 12 of A1 wait; A2 gets 12 more until the group's 30 would be passed: 12 + 12 = 24, then 6 more fit.
    expect({ endpoint: total(dropped, 'pending_endpoint_cap'), group: total(dropped, 'pending_tenant_cap') }).toEqual({ endpoint: 8, group: 0 });
    const c = Array.from({ length: 10 }, (_, i) => job(200 + i, 'whe_A3', 'ten_A'));
    expect(total(await q.addJobs(c, 1), 'pending_tenant_cap')).toBe(4);
    // Another group is not affected.
    expect(await q.addJobs([job(300, 'whe_B1', 'ten_B')], 1)).toEqual([]);
    expect((await q.takeDue(2, 3, 1000, NO_FAIRNESS)).length).toBe(31);
  });

  it('keeps at most the dead-letter caps (oldest removed first), lists them per group, and frees the pending count', async () => {
    const q = make();
    const jobs = Array.from({ length: 12 }, (_, i) => job(i, `whe_A${i % 3}`, 'ten_A'));
    await q.addJobs(jobs, 1);
    const taken = await q.takeDue(2, 3, 1000, NO_FAIRNESS);
    expect(taken.length).toBe(12);
    const drops: JobDrop[] = [];
    for (const [i, j] of taken.entries()) drops.push(...(await q.bury(j, LOG, 10, 10 + i)));
    // 12 dead, 4 per endpoint (cap 8), group cap 20: none removed yet.
    expect(total(drops)).toBe(0);
    const more = Array.from({ length: 30 }, (_, i) => job(100 + i, 'whe_A0', 'ten_A'));
    await q.addJobs(more, 20);
    for (const [i, j] of (await q.takeDue(21, 22, 1000, NO_FAIRNESS)).entries()) drops.push(...(await q.bury(j, LOG, 10, 100 + i)));
    const listed = await q.deadLetters('ten_A', 1000);
    // Of the 30, 12 were written (the endpoint's pending cap); whe_A0 then held 4 + 12 dead letters, and keeps its
    // newest 8: with A1's and A2's 4 each, 16 in all.
    expect(listed.length).toBe(16);
    expect(listed.filter((d) => d.endpointId === 'whe_A0').map((d) => d.key)).toEqual(more.slice(4, 12).map((j) => j.key).reverse());
    expect(total(drops, 'dead_endpoint_cap')).toBe(8);
    expect(await q.deadLetters('ten_B', 1000)).toEqual([]);
    // Nothing pending any more: a whole endpoint's worth can be added again.
    expect(await q.addJobs(Array.from({ length: 12 }, (_, i) => job(500 + i, 'whe_A0', 'ten_A')), 200)).toEqual([]);
  });

  it('removes the oldest of the group at the group cap, keeping every index in step', async () => {
    const q = make();
    const drops: JobDrop[] = [];
    for (let round = 0; round < 5; round++) {
      const jobs = Array.from({ length: 10 }, (_, i) => job(round * 100 + i, `whe_G${i % 5}`, 'ten_G'));
      await q.addJobs(jobs, round * 1000);
      for (const [i, j] of (await q.takeDue(round * 1000 + 1, round * 1000 + 2, 1000, NO_FAIRNESS)).entries()) drops.push(...(await q.bury(j, LOG, 10, round * 1000 + 10 + i)));
    }
    const listed = await q.deadLetters('ten_G', 1000);
    expect(listed.length).toBe(20);
    expect(total(drops, 'dead_tenant_cap')).toBe(30);
    // The newest 20 (rounds 3 and 4).
    expect(listed.map((d) => Number(d.key.slice(4, 10))).sort((x, y) => x - y)).toEqual([...Array.from({ length: 10 }, (_, i) => 300 + i), ...Array.from({ length: 10 }, (_, i) => 400 + i)]);
  });

  it('redelivers only under the pending caps, expires old dead letters, and a delivered job frees its place', async () => {
    const q = make();
    const [first] = (await q.addJobs([job(1, 'whe_R', 'ten_R')], 1), await q.takeDue(2, 3, 10, NO_FAIRNESS));
    await q.bury(first!, LOG, 10, 5);
    await q.addJobs(Array.from({ length: 12 }, (_, i) => job(10 + i, 'whe_R', 'ten_R')), 6);
    expect(await q.redeliver(first!.key, 7)).toBe('full');
    const due = await q.takeDue(8, 9, 1, NO_FAIRNESS);
    await q.finish(due[0]!, { ...LOG, ok: true, outcome: 'delivered' }, 10);
    expect(await q.redeliver(first!.key, 10)).toBe('redelivered');
    expect(await q.redeliver(first!.key, 10)).toBe('missing');
    // Dead again, then expired an hour later.
    const again = (await q.takeDue(11, 12, 100, NO_FAIRNESS)).find((j) => j.key === first!.key)!;
    await q.bury(again, LOG, 10, 20);
    expect(await q.expireDead(20 + 3_600_000 - 1, 100)).toBe(0);
    expect(await q.expireDead(20 + 3_600_000, 100)).toBe(1);
    expect(await q.deadLetters('ten_R', 10)).toEqual([]);
  });
});

describe.each(queues)('a deleted endpoint (%s)', (_name, make) => {
  it('takes its delivery log and dead letters with it, and its last jobs write no log again', async () => {
    const q = make();
    const e = { id: 'whe_D', tenantId: 'ten_D', url: 'http://x.invalid/', description: null, events: ['*'], secrets: [], createdAt: '', updatedAt: '' };
    expect(await q.createEndpoint(e)).toBe('created');
    await q.addJobs([job(1, 'whe_D', 'ten_D'), job(2, 'whe_D', 'ten_D')], 1);
    const [a, b] = await q.takeDue(2, 3, 10, NO_FAIRNESS);
    await q.bury(a!, LOG, 10, 5);
    expect((await q.deliveries('whe_D', 10)).length).toBe(1);
    expect(await q.deleteEndpoint('whe_D')).toBe(true);
    await q.finish(b!, { ...LOG, error: 'endpoint deleted' }, 0);
    expect({ log: await q.deliveries('whe_D', 10), dead: await q.deadLetters('ten_D', 10) }).toEqual({ log: [], dead: [] });
    // Its place under the tenant's endpoint cap is free again.
    expect(await q.createEndpoint({ ...e, id: 'whe_E' })).toBe('created');
  });
});

describe('redis queue indexes', () => {
  it('after churn at every cap, the jobs hash holds exactly the pending jobs and the dead letters', async () => {
    const p = `qx${++n}:`;
    const q = new RedisWebhookQueue(client, p, 1000, CAPS);
    for (let round = 0; round < 10; round++) {
      await q.addJobs(Array.from({ length: 40 }, (_, i) => job(round * 100 + i, `whe_X${i % 4}`, 'ten_X')), round * 100);
      const taken = await q.takeDue(round * 100 + 1, round * 100 + 2, 1000, NO_FAIRNESS);
      for (const [i, j] of taken.entries()) {
        if (i % 3 === 0) await q.finish(j, LOG, 10);
        else await q.bury(j, LOG, 10, round * 100 + 10 + i);
      }
    }
    const jobs = await client.hlen(`${p}{webhooks}:jobs`);
    const dead = await client.zcard(`${p}{webhooks}:dead`);
    const deadOfGroup = await client.zcard(`${p}{webhooks}:dead:g:ten_X`);
    const perEndpoint = await Promise.all([0, 1, 2, 3].map((i) => client.zcard(`${p}{webhooks}:dead:e:whe_X${i}`)));
    const pending = await client.hgetall(`${p}{webhooks}:pending`);
    expect({ jobs, dead, deadOfGroup, perEndpointSum: perEndpoint.reduce((s, x) => s + x, 0), pending }).toEqual({ jobs: dead, dead: deadOfGroup, deadOfGroup: 20, perEndpointSum: 20, pending: {} });
    expect((await q.deadLetters('ten_X', 100)).length).toBe(20);
  });
});
