// Redis commands per proxied request and per management call, counted with MONITOR on every master while a
// real keygate (the built dist/ CLI) serves a known number of requests. Not a timing benchmark: it counts.
// Figures and method: docs/scaling.md.
//
//   npm run build && node bench/redis-commands.ts             # standalone redis-server
//   npm run build && node bench/redis-commands.ts --cluster   # six-node Redis Cluster (three masters)
//   npm run build && node bench/redis-commands.ts --shard     # also: what one redis-server sustains (redis-benchmark)
//
// Commands a script runs inside Redis (source "lua" in MONITOR) are not counted: what matters to the network
// and to Redis's command loop is each EVALSHA. Background work is reported apart (bench/redis-count.ts): usage
// and lastUsedAt flushes (every usage.flushIntervalSeconds / usage.lastUsedFlushSeconds, whatever the traffic),
// the key cache's batched refresh of keys in use, and, on Cluster, the slot-map refresh (CLUSTER SLOTS every 5 s).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { scripts } from '../dist/store/redis/scripts.js';
import { admin, createTenant, proxied, self } from '../test/helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../test/helpers/keygate.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { startRedisCluster } from '../test/helpers/redis-topologies.ts';
import { startUpstream } from '../test/helpers/upstream.ts';
import { classify, monitorAll, type Command } from './redis-count.ts';

const onCluster = process.argv.includes('--cluster');
const shard = process.argv.includes('--shard');

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const scriptNames = new Map(Object.entries(scripts).map(([name, lua]) => [sha1(lua), `EVALSHA kg_${name}`]));
const monitor = (ports: number[]) => monitorAll(ports, scriptNames);

/** What requests and calls sent (background work left out: redis-count.ts), per call, by command or script. */
function summarise(seen: Command[], count: number) {
  const own = seen.filter((s) => s.name !== 'INFO' && classify(s).kind === 'request');
  const byName = new Map<string, number>();
  for (const s of own) {
    const name = s.name === 'EVALSHA' ? (s.script ?? 'EVALSHA rate-limiter-flexible') : s.name;
    byName.set(name, (byName.get(name) ?? 0) + 1);
  }
  return {
    perCall: Number((own.length / count).toFixed(3)),
    breakdown: Object.fromEntries([...byName].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number((v / count).toFixed(3))])),
    background: seen.filter((s) => s.name !== 'INFO' && classify(s).kind === 'background').length,
  };
}

async function main() {
  const upstream = await startUpstream();
  const standalone = onCluster ? null : await startRedis();
  const cluster = onCluster ? await startRedisCluster() : null;
  const ports = cluster ? await cluster.masters() : [standalone!.port];
  const redisConfig = cluster ? cluster.config : { url: standalone!.url };
  // Flushes every hour: their commands are counted on their own below, not smeared over the requests.
  const config = {
    redis: redisConfig,
    usage: { flushIntervalSeconds: 3600, lastUsedFlushSeconds: 60 },
    plans: {
      // Limits under 200 per minute lease one request at a time; larger ones up to 1% of the window.
      small: { maxKeys: 1000, requestsPerMinute: { default: 150, max: 150 }, requestsPerDay: { default: 10_000, max: 10_000 }, maxConcurrentConnections: { default: 2, max: 10 } },
      large: { maxKeys: 1000, requestsPerMinute: { default: 60_000, max: 60_000 }, requestsPerDay: { default: 5_000_000, max: 5_000_000 }, maxConcurrentConnections: { default: 2, max: 10 } },
      enterprise: { maxKeys: 1000, requestsPerMinute: { default: null, max: null }, requestsPerDay: { default: null, max: null }, maxConcurrentConnections: { default: null, max: null } },
    },
    defaultPlan: 'enterprise',
  };
  const kg: KeygateProcess = await startKeygate({ config, upstream: upstream.url, redisUrl: null });
  const results: Record<string, unknown> = {};

  async function count(label: string, n: number, work: () => Promise<void>) {
    const m = await monitor(ports);
    await new Promise((r) => setTimeout(r, 100));
    await work();
    await new Promise((r) => setTimeout(r, 300));
    m.stop();
    results[label] = summarise(m.seen, n);
    console.log(label, JSON.stringify(results[label]));
  }
  const many = async (n: number, each: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < n; i++) await each(i);
  };

  // ---- proxied requests --------------------------------------------------------------------------------------
  const unlimited = await createTenant(kg, { name: 'unlimited', plan: 'enterprise' });
  await proxied(kg, '/v1/calls', { 'x-api-key': unlimited.key });
  await count('proxied, cached key, no rate limit', 2_000, () => many(2_000, () => proxied(kg, '/v1/calls', { 'x-api-key': unlimited.key })));

  const large = await createTenant(kg, { name: 'large', plan: 'large' });
  await proxied(kg, '/v1/calls', { 'x-api-key': large.key });
  await count('proxied, cached key, limits 60,000/min and 5,000,000/day (key and plan windows, leases of 600 and 1,000)', 6_000, () =>
    many(6_000, () => proxied(kg, '/v1/calls', { 'x-api-key': large.key })));

  const small = await createTenant(kg, { name: 'small', plan: 'small' });
  await proxied(kg, '/v1/calls', { 'x-api-key': small.key });
  await count('proxied, cached key, limits 150/min and 10,000/day (leases of 1 and 100)', 140, () => many(140, () => proxied(kg, '/v1/calls', { 'x-api-key': small.key })));

  const fresh: string[] = [];
  for (let i = 0; i < 200; i++) fresh.push((await admin(kg, 'POST', `/tenants/${unlimited.tenant.id}/api-keys`, { permissions: ['calls:read'] })).body.key);
  await count('proxied, cache miss (a key not seen before), no rate limit', 200, () => many(200, (i) => proxied(kg, '/v1/calls', { 'x-api-key': fresh[i]! })));

  const unknown = Array.from({ length: 300 }, () => `kg_sk_${'x'.repeat(24)}`); // wrong checksum: refused before any lookup
  await count('401, malformed key (checksum wrong), sequential from one address', 300, () => many(300, (i) => proxied(kg, '/v1/calls', { 'x-api-key': unknown[i]! })));
  const { createKeyFormat } = await import('../dist/keys/format.js');
  const format = createKeyFormat({ private: 'kg_sk_', public: 'kg_pk_' });
  const wellFormed = Array.from({ length: 300 }, () => format.generate('private'));
  await count('401, well-formed unknown key, sequential from one address', 300, () => many(300, (i) => proxied(kg, '/v1/calls', { 'x-api-key': wellFormed[i]! })));

  // ---- management calls (admin API; self-service calls cost the same store work, plus their own gate) -------
  const t = unlimited.tenant.id;
  const R = 20;
  await count('admin: POST /tenants (a tenant and its first key)', R, () => many(R, (i) => createTenant(kg, { name: `m${i}` })));
  const made: string[] = [];
  await count('admin: POST api-keys', R, () => many(R, async () => void made.push((await admin(kg, 'POST', `/tenants/${t}/api-keys`, { permissions: ['calls:read'] })).body.id)));
  await count('admin: GET api-keys (a page of 20)', R, () => many(R, () => admin(kg, 'GET', `/tenants/${t}/api-keys?limit=20`)));
  await count('admin: GET api-keys/{id}', R, () => many(R, (i) => admin(kg, 'GET', `/tenants/${t}/api-keys/${made[i]}`)));
  await count('admin: PATCH api-keys/{id}', R, () => many(R, (i) => admin(kg, 'PATCH', `/tenants/${t}/api-keys/${made[i]}`, { name: `n${i}` })));
  await count('admin: POST rotate (grace 3600 s)', R, () => many(R, (i) => admin(kg, 'POST', `/tenants/${t}/api-keys/${made[i]}/rotate`, { gracePeriodSeconds: 3600 })));
  await count('admin: DELETE api-keys/{id} (rotated: two values)', R, () => many(R, (i) => admin(kg, 'DELETE', `/tenants/${t}/api-keys/${made[i]}`)));
  await count('admin: PATCH tenant', R, () => many(R, () => admin(kg, 'PATCH', `/tenants/${large.tenant.id}`, { name: 'renamed' })));
  await count('self-service: GET usage (30 days)', R, () => many(R, () => self(kg, unlimited.key, 'GET', '/usage')));
  await count('admin: GET audit-log', R, () => many(R, () => admin(kg, 'GET', `/tenants/${t}/audit-log`)));
  const doomed: string[] = [];
  for (let i = 0; i < R; i++) doomed.push((await createTenant(kg, { name: `d${i}` })).tenant.id);
  await count('admin: DELETE tenant (one key)', R, () => many(R, (i) => admin(kg, 'DELETE', `/tenants/${doomed[i]}`)));

  // ---- background: one usage flush after traffic on N keys of T tenants -------------------------------------
  // GET /usage flushes this replica's counts first; counted here: the flush and the read of one key's day.
  const flushTenants = await Promise.all(Array.from({ length: 10 }, (_, i) => createTenant(kg, { name: `f${i}` })));
  for (const ft of flushTenants) for (let i = 0; i < 5; i++) await proxied(kg, '/v1/calls', { 'x-api-key': ft.key });
  const m = await monitor(ports);
  await new Promise((r) => setTimeout(r, 100));
  await self(kg, flushTenants[0]!.key, 'GET', `/usage?from=${new Date().toISOString().slice(0, 10)}`);
  await new Promise((r) => setTimeout(r, 300));
  m.stop();
  const flushCommands = m.seen.filter((c) => c.script === 'EVALSHA kg_incrementFields').length;
  results['usage flush with 10 tenants active (hour + day + month hash each, plus the two fleet totals)'] = { commands: flushCommands };
  console.log('usage flush, 10 tenants active', flushCommands);
  await kg.stop();

  // ---- background: the key cache's refresh of keys in use (a keygate with cache.ttlSeconds 3) ---------------
  // 200 keys of one tenant and 1 of another, each loaded once; once in the last third of their TTL, each used
  // again: served from the cache at once, and read again together in the background.
  const refreshing = await startKeygate({ config: { ...config, cache: { ttlSeconds: 3 } }, upstream: upstream.url, redisUrl: null });
  const owner = await createTenant(refreshing, { name: 'refresh', plan: 'enterprise' });
  const other = await createTenant(refreshing, { name: 'refresh-other', plan: 'enterprise' });
  const inUse = [other.key];
  for (let i = 0; i < 200; i++) inUse.push((await admin(refreshing, 'POST', `/tenants/${owner.tenant.id}/api-keys`, { permissions: ['calls:read'] })).body.key);
  for (const k of inUse) await proxied(refreshing, '/v1/calls', { 'x-api-key': k });
  await new Promise((r) => setTimeout(r, 2_300));
  const r = await monitor(ports);
  await new Promise((res) => setTimeout(res, 100));
  for (const k of inUse) await proxied(refreshing, '/v1/calls', { 'x-api-key': k });
  await new Promise((res) => setTimeout(res, 1_500));
  r.stop();
  const refresh = r.seen.filter((c) => classify(c).cause.startsWith('cache refresh'));
  const lookups = r.seen.filter((c) => classify(c).cause.startsWith('lookup'));
  results['cache refresh of 201 keys in use (200 of one tenant, 1 of another)'] = { commands: refresh.length, keysRead: refresh.reduce((n, c) => n + c.keys, 0), lookupsOnTheRequestPath: lookups.length };
  console.log('cache refresh of 201 keys in use', JSON.stringify(results['cache refresh of 201 keys in use (200 of one tenant, 1 of another)']));
  await refreshing.stop();
  await upstream.close();
  await (cluster ? cluster.close() : standalone!.close());

  if (shard) {
    // What one redis-server (one shard) sustains on this machine for the commands above: redis-benchmark, 50
    // clients, without and with pipelining (keygate's client auto-pipelines concurrent commands).
    const one = await startRedis();
    const port = String(one.port);
    const rl = "redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX') local c = redis.call('incrby', KEYS[1], ARGV[1]) local t = redis.call('pttl', KEYS[1]) return {c, t}";
    const sha = execFileSync('redis-cli', ['-p', port, 'SCRIPT', 'LOAD', rl]).toString().trim();
    // --csv: a header and one line per test, "name","rps","avg_latency_ms",...
    const run = (args: string[]) => Math.round(Number(execFileSync('redis-benchmark', ['-p', port, '--csv', '-n', '200000', '-c', '50', ...args]).toString().trim().split('\n').at(-1)!.split(',')[1]!.replaceAll('"', '')));
    for (const pipeline of ['1', '16']) {
      results[`shard GET, pipeline ${pipeline}`] = run(['-P', pipeline, '-r', '100000', 'GET', 'kg:vr:__rand_int__']);
      results[`shard rate-limit EVALSHA, pipeline ${pipeline}`] = run(['-P', pipeline, '-r', '100000', 'EVALSHA', sha, '1', 'kg:rl:m600:__rand_int__', '1', '60']);
      console.log(`pipeline ${pipeline}: GET ${results[`shard GET, pipeline ${pipeline}`]}/s, EVALSHA ${results[`shard rate-limit EVALSHA, pipeline ${pipeline}`]}/s`);
    }
    await one.close();
  }
  console.log(JSON.stringify({ topology: onCluster ? 'cluster' : 'standalone', results }, null, 2));
}

await main();
