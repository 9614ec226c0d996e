import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyFormat } from '../../src/keys/format.ts';
import { admin, createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedisCluster, startRedisSentinel, type RedisTopology } from '../helpers/redis-topologies.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// SPEC §8: a failover is a store outage of a few seconds, and keygate treats it as one. Under a steady request
// loop through two replicas, the master serving one tenant's slot (Cluster) or the master (Sentinel) is
// SIGKILLed: valid keys are never answered 401 (nor 503: they were cached before), no request waits much
// longer than redis.commandTimeoutMs (however long the failover takes), writes work again once a replica is
// promoted, and usage counts exactly what was answered.

const COMMAND_TIMEOUT_MS = 300;
// Generous: the timeout, plus a loaded two-core machine's scheduling and an upstream round trip.
const LATENCY_BOUND_MS = COMMAND_TIMEOUT_MS + 1_500;
// Writes come back within this long after the promotion (under CPU load: in 24 of 25 runs, p95 3.8 s; without
// keepConnecting in src/store/redis/connect.ts 9 of 19 never did: docs/scaling.md).
const WRITES_BACK_MS = 5_000;
const TRACE_DIR = process.env.KEYGATE_TRACE_DIR;
const format = createKeyFormat({ private: 'kg_sk_', public: 'kg_pk_' });

interface Sample {
  valid: boolean;
  key: string;
  status: number;
  ms: number;
  at: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

async function timed(url: string, key: string): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  const res = await fetch(url, { headers: { 'x-api-key': key } });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - start };
}

const topologies: Array<[string, () => Promise<RedisTopology>]> = [
  ['Cluster', () => startRedisCluster()],
  ['Sentinel', () => startRedisSentinel()],
];

describe.each(topologies)('failover on Redis %s', (name, start) => {
  let topology: RedisTopology;
  let upstream: Upstream;
  const replicas: KeygateProcess[] = [];

  beforeAll(async () => {
    [topology, upstream] = await Promise.all([start(), startUpstream()]);
    const config = {
      redis: { ...topology.config, commandTimeoutMs: COMMAND_TIMEOUT_MS },
      // Short TTLs, so that keys are looked up in Redis during the failover, not only served from the cache.
      cache: { ttlSeconds: 1, negativeTtlSeconds: 1 },
      usage: { flushIntervalSeconds: 1 },
    };
    // KEYGATE_TRACE_DIR: ioredis's own reconnection and sentinel log (timestamped), and the sentinels' and Redis's
    // logs, kept in that directory with a timeline of the run (how the recovery stall was found: docs/scaling.md).
    const env = TRACE_DIR ? { DEBUG: 'ioredis:SentinelConnector,ioredis:FailoverDetector,ioredis:connection,ioredis:AbstractConnector' } : undefined;
    replicas.push(...(await Promise.all([0, 1].map(() => startKeygate({ config, upstream: upstream.url, redisUrl: null, env })))));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(replicas.map((kg) => kg.stop()));
    await Promise.all([topology?.close(), upstream?.close()]);
  });

  it('SIGKILL of a master under load: no 401 for a valid key, latency bounded by the timeout, writes back, usage exact', async () => {
    const [a, b] = replicas as [KeygateProcess, KeygateProcess];
    // Six tenants (their records spread over the slots), two keys each; one tenant under plan limits, so that
    // rate-limit windows live in Redis too.
    const tenants = await Promise.all(Array.from({ length: 6 }, (_, i) => createTenant(a, { name: `fo${i}`, plan: i === 5 ? 'pro' : 'enterprise', maxKeys: 1000 })));
    const keys: Array<{ tenant: string; id: string; key: string }> = [];
    for (const t of tenants) {
      keys.push({ tenant: t.tenant.id, id: t.apiKey.id, key: t.key });
      const made = await self(a, t.key, 'POST', '/api-keys', { permissions: ['calls:read'], ...(t.tenant.plan === 'pro' ? { rateLimit: { requestsPerMinute: 6000 } } : {}) });
      keys.push({ tenant: t.tenant.id, id: made.body.id, key: made.body.key });
    }
    // Replication is asynchronous: let the replicas catch up with the set-up before a master dies.
    await new Promise((r) => setTimeout(r, 300));
    const victimTenant = tenants[0]!.tenant.id;

    const samples: Sample[] = [];
    // Each key is sent to one replica by the loop below (the parity of its index): cached there before it starts.
    for (const [i, k] of keys.entries()) {
      const { status, ms } = await timed(`${(i % 2 ? a : b).url}/v1/calls`, k.key);
      expect(status).toBe(200);
      samples.push({ valid: true, key: k.key, status, ms, at: Date.now() });
    }
    let stop = false;
    const worker = async (w: number) => {
      for (let i = w; !stop; i++) {
        const kg = i % 2 ? a : b;
        // One request in five carries a well-formed key that does not exist (the failed-attempt path).
        const valid = i % 5 !== 0;
        const key = valid ? keys[i % keys.length]!.key : format.generate('private');
        const { status, ms } = await timed(`${kg.url}/v1/calls`, key);
        samples.push({ valid, key, status, ms, at: Date.now() });
      }
    };
    const loop = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await new Promise((r) => setTimeout(r, 1_000));

    // Writes to the victim tenant's slot, every 100 ms from the kill on, until one succeeds. How long the
    // topology takes to promote a replica is its business (a Sentinel election that fails is retried after
    // 2 × failover-timeout); keygate's is to write again soon after it has.
    const { killedAt, promoted } = await topology.killMaster(`{${victimTenant}}`);
    let promotedAt = 0;
    let promotionFailed: unknown = null;
    promoted.then(() => (promotedAt = Date.now()), (e: unknown) => (promotionFailed = e));
    let writesBackAt = 0;
    const writeLatencies: number[] = [];
    const attempts: Array<{ at: number; status: number; ms: number }> = [];
    try {
      while (!writesBackAt) {
        const started = performance.now();
        const r = await admin(a, 'POST', `/tenants/${victimTenant}/api-keys`, { permissions: ['calls:read'] });
        writeLatencies.push(performance.now() - started);
        attempts.push({ at: Date.now(), status: r.status, ms: Math.round(performance.now() - started) });
        if (r.status === 201) writesBackAt = Date.now();
        else expect(r.status).toBe(503);
        if (promotionFailed) throw promotionFailed;
        // Writes come back once a replica has been promoted and the client has found it.
        if (promotedAt && Date.now() - promotedAt > WRITES_BACK_MS) throw new Error(`writes did not come back within ${WRITES_BACK_MS} ms of the promotion`);
        await new Promise((r2) => setTimeout(r2, 100));
      }
      // Keep the loop running a little after recovery.
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      stop = true;
      await loop;
      if (TRACE_DIR) {
        const iso = (t: number) => new Date(t).toISOString();
        writeFileSync(join(TRACE_DIR, 'trace.txt'), [
          `topology ${name} killedAt ${iso(killedAt)} promotedAt ${promotedAt ? iso(promotedAt) : 'never'} writesBackAt ${writesBackAt ? iso(writesBackAt) : 'never'} afterPromotionMs ${writesBackAt && promotedAt ? writesBackAt - promotedAt : 'never'}`,
          ...attempts.map((x) => `write ${iso(x.at)} ${x.status} ${x.ms}ms`),
          '--- replica a', a.output(), '--- replica b', b.output(),
        ].join('\n'));
      }
    }
    const promotedAfterMs = await promoted;
    if (writesBackAt - killedAt > promotedAfterMs + 1_000) {
      console.log(`slow write recovery on ${name}: ${writesBackAt - killedAt - promotedAfterMs} ms after the promotion`);
      for (const kg of replicas) console.log(kg.output().split('\n').filter((l) => l.includes('"warn"') || l.includes('Redis connection')).slice(-30).join('\n'));
    }

    const during = samples.filter((s) => s.at >= killedAt);
    const validOnes = samples.filter((s) => s.valid);
    const wrongForValid = validOnes.filter((s) => s.status !== 200 && s.status !== 503);
    const latencies = during.map((s) => s.ms).sort((x, y) => x - y);
    const slowest = latencies.at(-1) ?? 0;
    const summary = {
      topology: name,
      requests: samples.length,
      duringFailover: during.length,
      validAnswered401: validOnes.filter((s) => s.status === 401).length,
      validAnswered503: validOnes.filter((s) => s.status === 503).length,
      // From the kill: the first and last 503 a valid key got.
      valid503WindowMs: [validOnes.find((s) => s.status === 503)?.at, validOnes.findLast((s) => s.status === 503)?.at].map((t) => (t === undefined ? null : t - killedAt)),
      unknownAnswered: Object.fromEntries([...new Set(samples.filter((s) => !s.valid).map((s) => s.status))].map((st) => [st, samples.filter((s) => !s.valid && s.status === st).length])),
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      maxMs: Math.round(slowest),
      maxWriteMs: Math.round(Math.max(...writeLatencies)),
      promotedAfterMs,
      writesBackAfterKillMs: writesBackAt - killedAt,
    };
    // Reported in the closing note; figures, not timed assertions (the bounds below are generous).
    console.log(`failover figures: ${JSON.stringify(summary)}`);
    const valid503 = validOnes.filter((s) => s.status === 503);
    if (valid503.length) {
      // Which keys, when, and how long after that key's last 200 (was it cached?).
      console.log('valid keys answered 503:', JSON.stringify(valid503.slice(0, 20).map((s) => ({
        key: keys.findIndex((k) => k.key === s.key),
        afterKillMs: s.at - killedAt,
        sinceLast200Ms: s.at - (samples.findLast((x) => x.key === s.key && x.status === 200 && x.at <= s.at)?.at ?? NaN),
      }))));
      for (const kg of replicas) console.log(kg.output().split('\n').filter((l) => l.includes('"warn"')).slice(0, 20).join('\n'));
    }

    // Every valid key was cached before the kill: served from the cache (stale if need be, SPEC §8) throughout.
    expect(wrongForValid.map((s) => s.status)).toEqual([]);
    expect(summary.validAnswered503).toBe(0);
    expect(samples.filter((s) => !s.valid && s.status !== 401 && s.status !== 503)).toEqual([]);
    expect(slowest).toBeLessThan(LATENCY_BOUND_MS);
    expect(Math.max(...writeLatencies)).toBeLessThan(LATENCY_BOUND_MS);
    // After recovery every valid key is served again.
    const last = validOnes.filter((s) => s.at > writesBackAt + 1_000);
    expect(last.length).toBeGreaterThan(0);
    expect(last.filter((s) => s.status !== 200)).toEqual([]);

    // Usage: exactly the requests answered 200, per key, once both replicas have flushed (nothing lost,
    // nothing counted twice by a flush retried after a partial failure).
    const today = new Date().toISOString().slice(0, 10);
    for (const k of keys) {
      const allowed = samples.filter((s) => s.key === k.key && s.status === 200).length;
      const owner = tenants.find((t) => t.tenant.id === k.tenant)!;
      await expect
        .poll(async () => (await self(a, owner.key, 'GET', `/usage?keyId=${k.id}&from=${today}&to=${today}`)).body?.data?.[0]?.allowed, { timeout: 10_000, interval: 250 })
        .toBe(allowed);
    }
  }, 120_000);
});
