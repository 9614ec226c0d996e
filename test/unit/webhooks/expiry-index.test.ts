import { type Cluster, Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newKeyId, newTenantId } from '../../../src/keys/ids.ts';
import type { StoredKey } from '../../../src/keys/types.ts';
import { MemoryStore } from '../../../src/store/memory/memory-store.ts';
import { RedisStore } from '../../../src/store/redis/redis-store.ts';
import type { KeyStore } from '../../../src/store/types.ts';
import { ExpiryScanner } from '../../../src/webhooks/expiry.ts';
import { MemoryOutbox, MemoryWebhookQueue } from '../../../src/webhooks/memory-queue.ts';
import { RedisWebhookQueue } from '../../../src/webhooks/redis-queue.ts';
import { WebhookOutboxes } from '../../../src/webhooks/outbox.ts';
import type { WebhookCaps, WebhookQueue } from '../../../src/webhooks/types.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { createRedisClient, waitReady } from '../../../src/store/redis/connect.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import { startRedisCluster, type RedisTopology } from '../../helpers/redis-topologies.ts';

// The expiry scan against a real redis-server (and the embedded store): with thousands of keys of which a few
// expire soon, a scan reads what is due, not every key; and an expiry changed or a key revoked after it was
// indexed is still warned about on time, once.

const DAY = 86_400_000;
const CAPS: WebhookCaps = { maxEndpointsPerTenant: 10, maxPendingJobsPerTenant: 100, maxPendingJobsPerEndpoint: 100, maxDeadLettersPerTenant: 100, maxDeadLettersPerEndpoint: 100, deadLetterHours: 1 };
const logger = pino({ level: 'silent' });
const AUDIT = { action: 'test', actor: 'admin', keyId: null, details: {} };

let redis: RedisServer;
let client: Redis;
let n = 0;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { enableAutoPipelining: true });
});
afterAll(async () => {
  for (const c of [client, ...opened]) c.disconnect();
  await Promise.all([redis.close(), cluster?.close()]);
});

const keyOf = (tenantId: string, expiresAt: number | null): StoredKey => {
  const at = new Date(0).toISOString();
  return {
    id: newKeyId(), tenantId, name: null, keyType: 'private', prefix: 'kg_sk_test', permissions: ['*'], allowedOrigins: null, allowedAssistants: null,
    transientAssistant: false, rateLimit: { requestsPerMinute: null, requestsPerDay: null }, quota: { requestsPerMonth: null, sessionMinutesPerMonth: null },
    maxConcurrentConnections: null, enforceMtls: false, clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: at, updatedAt: at,
    expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(), lastUsedAt: null, createdBy: 'admin', hashes: [],
  } as StoredKey;
};

interface Setup {
  store: KeyStore;
  queue: WebhookQueue;
  /** Lets the next scan take the interval's lease (each scan below stands for a new interval). */
  nextInterval: () => Promise<void>;
  events: (tenantIds: string[]) => Promise<Array<{ keyId: string; type: string; days?: number }>>;
}

const expiryEvents = (rows: Array<[string, string[]]>) =>
  rows.map(([, f]) => JSON.parse(f[1]!) as { type: string; data: { keyId: string; days?: number } }).filter((e) => e.type.startsWith('key.exp')).map((e) => ({ keyId: e.data.keyId, type: e.type, ...(e.data.days ? { days: e.data.days } : {}) }));

/** The Redis store and queue on `c` (standalone, or a Cluster client as keygate connects). */
function redisOn(c: Redis | Cluster, url: string | null): Setup {
  const prefix = `ex${++n}:`;
  const store = new RedisStore({ client: c, subscriber: url ? new Redis(url, { lazyConnect: true }) : c, prefix, channel: 'test', auditMaxEntries: 10, outbox: new WebhookOutboxes(prefix, 100_000, CAPS).redis(c) });
  return {
    store,
    queue: new RedisWebhookQueue(c, prefix, 100_000, CAPS),
    nextInterval: async () => {
      await c.del(`${prefix}{webhooks}:lease:expiry-scan`);
    },
    events: async (tenantIds) => expiryEvents((await Promise.all(tenantIds.map((t) => c.xrange(`${prefix}{${t}}:outbox`, '-', '+')))).flat()),
  };
}

async function redisSetup(): Promise<Setup> {
  return redisOn(client, redis.url);
}

let cluster: RedisTopology | null = null;
const opened: Array<Redis | Cluster> = [];
async function clusterSetup(): Promise<Setup> {
  cluster ??= await startRedisCluster();
  const c = createRedisClient(configSchema.parse({ redis: cluster.config }).redis, 'main');
  opened.push(c);
  if (!(await waitReady(c, 10_000))) throw new Error('the Cluster client did not connect');
  return redisOn(c, null);
}

/**
 * Commands Redis ran (INFO commandstats, all clients, the commands inside scripts included) while `work` ran; the
 * INFO calls themselves left out.
 */
async function commandsDuring(work: () => Promise<unknown>): Promise<number> {
  const total = async () => {
    const info = await client.info('commandstats');
    let calls = 0;
    for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
    return calls;
  };
  const before = await total();
  await work();
  return (await total()) - before;
}

describe('the expiry scan reads what is due', () => {
  it('5,000 keys in 5 tenants, 10 expiring this week: a scan costs what is due, not what exists', async () => {
    const s = await redisSetup();
    const now = Date.now();
    const tenants = Array.from({ length: 5 }, () => newTenantId());
    for (const id of tenants) await s.store.createTenant({ id, name: id, plan: 'free', maxKeys: 2_000, status: 'active', createdAt: '', updatedAt: '' }, AUDIT);
    const soon: string[] = [];
    const made: Array<Promise<unknown>> = [];
    for (let i = 0; i < 5_000; i++) {
      const tenantId = tenants[i % 5]!;
      // Most keys expire in 30 to 365 days, a tenth never; ten within the week.
      const key = keyOf(tenantId, i < 10 ? now + 3 * DAY + i * 60_000 : i % 10 === 0 ? null : now + (30 + (i % 335)) * DAY);
      if (i < 10) soon.push(key.id);
      made.push(s.store.createKey(key, AUDIT));
    }
    await Promise.all(made);

    // The first scan after an upgrade reads every key once (keys written before the index existed).
    const scan = async (at: number) => {
      await s.nextInterval();
      return commandsDuring(() => new ExpiryScanner(s.store, s.queue, 300, logger).scan(at));
    };
    const build = await scan(now);
    const first = await s.events(tenants);
    // Then a scan the next interval: nothing more is due.
    const steady = await scan(now + 300_000);
    // A key now expiring within the week is found by the next scan.
    await s.store.updateKey(tenants[1]!, (await s.store.listKeys(tenants[1]!, { limit: 20, cursor: null })).data.find((k) => k.expiresAt && !soon.includes(k.id))!.id, (k) => ({ ...k, expiresAt: new Date(now + 2 * DAY).toISOString() }), AUDIT);
    const oneDue = await scan(now + 600_000);
    const events = await s.events(tenants);
    console.log(`expiry scan, 5,000 keys in 5 tenants: first scan (index build) ${build} Redis commands; then ${steady} with nothing due, ${oneDue} with one key due; events ${first.length} then ${events.length}`);
    expect(first.map((e) => e.keyId).sort()).toEqual([...soon].sort());
    expect(events.length).toBe(11);
    // Before the index every scan read every key: one page read (2 commands) per 100 keys, over 100 commands here
    // (and 20,000 for a million keys). Now: the lease, the tenants, one index read per tenant, and the key due.
    expect(steady).toBeLessThanOrEqual(20);
    expect(oneDue).toBeLessThanOrEqual(steady + 12);
  }, 120_000);
});

describe.each([
  ['redis', redisSetup],
  ['cluster', clusterSetup],
  ['memory', async (): Promise<Setup> => {
    const outbox = new MemoryOutbox();
    const store = new MemoryStore({ auditMaxEntries: 10, outbox });
    const queue = new MemoryWebhookQueue(outbox, CAPS);
    const seen: Array<{ keyId: string; type: string; days?: number }> = [];
    return {
      store,
      queue,
      // The memory queue's lease runs on the clock: the scans below use an interval of 1 ms.
      nextInterval: () => new Promise((r) => setTimeout(r, 5)),
      events: async () => {
        for (const m of outbox.drain(1_000)) if (m.event.type.startsWith('key.exp')) seen.push({ keyId: m.event.data.keyId as string, type: m.event.type, ...(m.event.data.days ? { days: m.event.data.days as number } : {}) });
        return seen;
      },
    };
  }],
] as const)('the expiry index (%s)', (_name, setup) => {
  it('warns of an expiry moved earlier, shortened again, moved later and revoked, each event once', async () => {
    const s = await setup();
    const tenantId = newTenantId();
    await s.store.createTenant({ id: tenantId, name: 't', plan: 'free', maxKeys: 10, status: 'active', createdAt: '', updatedAt: '' }, AUDIT);
    const now = Date.now();
    const a = keyOf(tenantId, now + 60 * DAY);
    const b = keyOf(tenantId, now + 3 * DAY);
    const c = keyOf(tenantId, now + 2 * DAY);
    for (const k of [a, b, c]) await s.store.createKey(k, AUDIT);
    let t = now;
    // Each scan is its own interval (a scanner's lease lasts 0.9 of it; the memory queue's runs on the clock).
    const scan = async () => {
      await s.nextInterval();
      await new ExpiryScanner(s.store, s.queue, 0.001, logger).scan((t += 60_000));
    };
    await scan();
    // a: moved to 5 days (its 7-day warning due now); b: moved later (nothing new); c: revoked.
    await s.store.updateKey(tenantId, a.id, (k) => ({ ...k, expiresAt: new Date(now + 5 * DAY).toISOString() }), AUDIT);
    await s.store.updateKey(tenantId, b.id, (k) => ({ ...k, expiresAt: new Date(now + 40 * DAY).toISOString() }), AUDIT);
    await s.store.revokeKey(tenantId, c.id, AUDIT);
    await scan();
    await scan();
    // Four and a half days on: a's 1-day warning.
    t = now + 4.5 * DAY;
    await scan();
    await scan();
    const events = (await s.events([tenantId])).map((e) => `${e.keyId === a.id ? 'a' : e.keyId === b.id ? 'b' : 'c'} ${e.type} ${e.days ?? ''}`.trim());
    expect(events.sort()).toEqual(['a key.expiring 1', 'a key.expiring 7', 'b key.expiring 7', 'c key.expiring 7'].sort());
    // The revoked key left the index; the others wait for their next event.
    expect((await s.store.dueExpiries([tenantId], now + 365 * DAY, 10)).map((d) => d.keyId).sort()).toEqual([a.id, b.id].sort());
  }, 60_000);
});
