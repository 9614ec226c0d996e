// The expiry scan (webhooks/expiry.ts) over a million keys: time and Redis commands per scan, reading every key
// (how each scan worked before the expiry index, and how the first scan after an upgrade still builds it)
// against reading the index (store/expiry.ts). `BENCH_ONLY=expiry npm run bench`; BENCH_EXPIRY_KEYS sets the
// count (default 1,000,000; BENCH_QUICK=1: 100,000).
//
// The records are written straight into Redis with pipelines, as the store writes them (key record, the
// tenant's key set, and the expiry index entry at the first event's time), not through the API: a million
// creates through HTTP would take most of an hour. 1,000 tenants; 90% of keys expire at a uniformly random time
// in the next 365 days, 10% never.
import { Redis } from 'ioredis';
import pino from 'pino';
import { RedisStore } from '../dist/store/redis/redis-store.js';
import { ExpiryScanner } from '../dist/webhooks/expiry.js';
import { RedisWebhookQueue } from '../dist/webhooks/redis-queue.js';
import { WebhookOutboxes } from '../dist/webhooks/outbox.js';

const DAY = 86_400_000;
const NOTICE = 7 * DAY;
const TENANTS = 1_000;
const P = 'kgx:';

/** Commands Redis ran (INFO commandstats; those inside scripts included), INFO itself left out. */
async function commands(r: Redis): Promise<number> {
  const info = await r.info('commandstats');
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (m[1] !== 'info') n += Number(m[2]);
  return n;
}

/** Counts the commands a client sends (a script call is one): what the scanning replica sends to Redis. */
function countSent(client: Redis): () => number {
  let n = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    n++;
    return send(...args);
  }) as Redis['sendCommand'];
  return () => n;
}

async function write(r: Redis, count: number, now: number): Promise<{ withExpiry: number }> {
  const perTenant = Math.ceil(count / TENANTS);
  let withExpiry = 0;
  let n = 0;
  const stamp = new Date(0).toISOString();
  for (let t = 0; t < TENANTS && n < count; t++) {
    const tenantId = `ten_${String(t).padStart(26, '0')}`;
    const pipe = r.pipeline();
    pipe.set(`${P}{${tenantId}}:t`, JSON.stringify({ id: tenantId, name: `t${t}`, plan: 'free', maxKeys: perTenant, status: 'active', createdAt: stamp, updatedAt: stamp }));
    pipe.zadd(`${P}tenants`, 0, tenantId);
    for (let i = 0; i < perTenant && n < count; i++, n++) {
      const id = `key_${String(n).padStart(26, '0')}`;
      const expires = n % 10 === 0 ? null : now + Math.random() * 365 * DAY;
      const record = {
        id, tenantId, name: null, keyType: 'private', prefix: 'kg_sk_bench', permissions: ['*'], allowedOrigins: null, allowedAssistants: null, transientAssistant: false,
        rateLimit: { requestsPerMinute: null, requestsPerDay: null }, quota: { requestsPerMonth: null, sessionMinutesPerMonth: null }, maxConcurrentConnections: null,
        enforceMtls: false, clientCertFingerprints: null, metadata: {}, isActive: true, createdAt: stamp, updatedAt: stamp,
        expiresAt: expires === null ? null : new Date(expires).toISOString(), lastUsedAt: null, createdBy: 'admin', hashes: [],
      };
      pipe.set(`${P}{${tenantId}}:k:${id}`, JSON.stringify(record));
      pipe.zadd(`${P}{${tenantId}}:keys`, 0, id);
      if (expires !== null) {
        pipe.zadd(`${P}{${tenantId}}:exp`, Math.floor(expires - NOTICE), id);
        withExpiry++;
      }
    }
    await pipe.exec();
  }
  // Every key is in the index (the store wrote each entry): no build scan.
  await r.set(`${P}expiry-index`, '1');
  return { withExpiry };
}

export async function expiryPhase(redisUrl: string, count: number): Promise<Record<string, unknown>> {
  const r = new Redis(redisUrl);
  const client = new Redis(redisUrl);
  const caps = { maxEndpointsPerTenant: 10, maxPendingJobsPerTenant: 1, maxPendingJobsPerEndpoint: 1, maxDeadLettersPerTenant: 1, maxDeadLettersPerEndpoint: 1, deadLetterHours: 1 };
  const store = new RedisStore({ client, subscriber: new Redis(redisUrl, { lazyConnect: true }), prefix: P, channel: 'bench', auditMaxEntries: 10, outbox: new WebhookOutboxes(P, 10_000_000, caps).redis(client) });
  const queue = new RedisWebhookQueue(client, P, 10_000_000, caps);
  const sentSoFar = countSent(client);
  const scanner = new ExpiryScanner(store, queue, 300, pino({ level: 'silent' }));
  const now = Date.now();
  const t0 = performance.now();
  const { withExpiry } = await write(r, count, now);
  const setupSeconds = Math.round((performance.now() - t0) / 100) / 10;
  const usedMb = Math.round(Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]) / 2 ** 20);
  console.log(`expiry: ${count.toLocaleString('en')} keys (${withExpiry.toLocaleString('en')} with an expiry) in ${TENANTS} tenants written in ${setupSeconds} s; Redis holds ${usedMb} MB`);

  const measure = async (name: string, work: () => Promise<number>) => {
    const [c0, s0] = [await commands(r), sentSoFar()];
    const started = performance.now();
    const events = await work();
    const ms = Math.round(performance.now() - started);
    const [c1, s1] = [await commands(r), sentSoFar()];
    const row = { scan: name, ms, redisCommands: c1 - c0, commandsSent: s1 - s0, events };
    console.log(`  ${name}: ${ms} ms, ${row.commandsSent.toLocaleString('en')} commands sent (${row.redisCommands.toLocaleString('en')} run by Redis, those inside scripts included), ${events} events written`);
    return row;
  };
  const rows = [
    // Before: every scan read every key. The first finds the events due (key.expiring for keys within 7 days);
    // the second is any later interval (the same reads, the events already sent).
    await measure('every key, first interval', () => scanner.scanAll(now)),
    await measure('every key, next interval', () => scanner.scanAll(now + 300_000)),
    // After, on a fresh set of markers and index: reset what the scans above wrote.
    ...(await (async () => {
      await r.eval(`for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1`, 0, `${P}{ten_*}:once:*`);
      await r.eval(`for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1`, 0, `${P}{ten_*}:outbox`);
      return [
        await measure('index, first interval', () => scanner.scanIndexed(now)),
        await measure('index, next interval', () => scanner.scanIndexed(now + 300_000)),
        await measure('index, an hour on', () => scanner.scanIndexed(now + 3_600_000)),
      ];
    })()),
  ];
  await r.flushall();
  for (const c of [r, client]) c.disconnect();
  await store.close().catch(() => {});
  return { keys: count, withExpiry, tenants: TENANTS, setupSeconds, redisUsedMb: usedMb, rows };
}
