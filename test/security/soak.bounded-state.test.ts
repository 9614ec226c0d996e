import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import { check, startAuthzKeygate, type AuthzKeygate } from '../helpers/gateways.ts';
import { useServers } from '../helpers/servers.ts';

// A soak of random hostile traffic against a real keygate on a real Redis for a bounded time (SOAK_SECONDS,
// default 20): random methods, targets, headers and keys through the proxy and the authorizer, self-PATCHes of
// a key's own limits, children minted, used and revoked, refused reads of a wider key. Afterwards every piece of
// state that traffic can reach is checked against the bound docs/state.md gives it: the metrics exposition, each
// Redis key family, the audit stream, the lastUsedAt hash, the refusal hash, the key cache.

const SOAK_MS = Number(process.env.SOAK_SECONDS ?? 20) * 1000;
const AUDIT_MAX = 100;
const MAX_KEYS = 10;
const none = { default: null, max: null };

const servers = useServers();
let kg: AuthzKeygate;
let root: string;
let tenantId: string;
let wideId: string;
let narrow: string;
let worker: { key: string; id: string };
let workerLimit = 50_000;

beforeAll(async () => {
  kg = await startAuthzKeygate({
    redisUrl: servers.redis.url,
    upstream: servers.upstream.url,
    config: {
      audit: { maxEntries: AUDIT_MAX },
      cache: { maxEntries: 1_000 },
      usage: { flushIntervalSeconds: 1, lastUsedFlushSeconds: 1 },
      plans: {
        soak: {
          maxKeys: MAX_KEYS, requestsPerMinute: { default: 100_000, max: 100_000 }, requestsPerDay: none, maxConcurrentConnections: none,
          requestsPerMonth: { default: null, max: 1_000_000 }, sessionMinutesPerMonth: none, maxInFlight: null,
        },
      },
    },
  });
  const t = await createTenant(kg, { name: 'soak', plan: 'soak' });
  root = t.key;
  tenantId = t.tenant.id;
  wideId = (await self(kg, root, 'POST', '/api-keys', { name: 'wide' })).body.id;
  narrow = (await self(kg, root, 'POST', '/api-keys', { name: 'narrow', permissions: ['api-keys:read', 'api-keys:delete'] })).body.key;
  const w = await self(kg, root, 'POST', '/api-keys', { name: 'worker', quota: { requestsPerMonth: 500_000 }, rateLimit: { requestsPerMinute: 50_000 } });
  worker = { key: w.body.key, id: w.body.id };
}, 60_000);
afterAll(async () => {
  await kg?.stop();
});

const TOKEN = "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-";
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const token = (n = 1 + Math.floor(Math.random() * 16)) => Array.from({ length: n }, () => pick([...TOKEN])).join('');
const hex = (n: number) => Array.from({ length: n }, () => pick([...'0123456789abcdef'])).join('');
const path = () => `/${pick(['v1', 'keygate/v1', 'admin', 'x', hex(4)])}/${hex(8)}${Math.random() < 0.3 ? `?q=${hex(6)}` : ''}`;

function raw(method: string, target: string, headers: Record<string, string>): Promise<number> {
  const { hostname, port } = new URL(kg.url);
  return new Promise((resolve) => {
    const req = request({ hostname, port, method, path: target, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** One random hostile action; resolves with the status answered (0: the connection was refused or reset). */
async function act(statuses: number[]): Promise<void> {
  const r = Math.random();
  const junk = { [`x-${token(6).toLowerCase().replace(/[^a-z0-9-]/g, 'a')}`]: hex(20) };
  let status: number;
  if (r < 0.25) status = await raw(token(), path(), junk); // random method and target, no key
  else if (r < 0.4) status = (await check(kg.authzUrl, { path: '/forward-auth', headers: { 'x-forwarded-method': token(), 'x-forwarded-uri': path(), ...junk } })).status;
  else if (r < 0.5) status = await raw(pick(['GET', 'POST', token()]), path(), { 'x-api-key': `kg_sk_${hex(40)}`, ...junk }); // wrong keys
  else if (r < 0.65) status = await raw(pick(['GET', 'POST', 'PUT', token()]), path(), { 'x-api-key': worker.key, ...junk });
  else if (r < 0.75) {
    // A self-PATCH lowering the worker's own limit (a key may narrow itself, never widen), or trying to raise it.
    const to = Math.random() < 0.8 ? (workerLimit = Math.max(1_000, workerLimit - 1 - Math.floor(Math.random() * 50))) : workerLimit + 1_000;
    status = (await self(kg, worker.key, 'PATCH', `/api-keys/${worker.id}`, { rateLimit: { requestsPerMinute: to } })).status;
  } else if (r < 0.85) {
    // A child minted, used and revoked (409 when the tenant is at maxKeys: other workers hold children).
    const child = await self(kg, worker.key, 'POST', '/api-keys', { name: token(8).replace(/[^A-Za-z0-9]/g, 'x') });
    status = child.status;
    if (child.status === 201) {
      for (let i = 0; i < 3; i++) statuses.push(await raw('GET', path(), { 'x-api-key': child.body.key }));
      // Revoked by the tenant's first key: the worker may have narrowed itself below the child since.
      statuses.push((await self(kg, root, 'DELETE', `/api-keys/${child.body.id}`)).status);
    }
  } else status = (await self(kg, narrow, pick(['GET', 'DELETE']), `/api-keys/${wideId}`)).status; // refused, audited
  statuses.push(status);
}

async function keygateSeries(): Promise<{ series: number; bytes: number; cacheEntries: number; rss: number; state: Record<string, number> }> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  const lines = text.split('\n');
  const value = (name: string) => Number(lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
  // keygate_state_entries{state="…"}: the process tables docs/state.md bounds.
  const state = Object.fromEntries(lines.flatMap((l) => {
    const m = /^keygate_state_entries\{state="([a-z_]+)"\} (\d+)$/.exec(l);
    return m ? [[m[1]!, Number(m[2])]] : [];
  }));
  return { series: lines.filter((l) => l.startsWith('keygate_')).length, bytes: text.length, cacheEntries: value('keygate_key_cache_entries'), rss: value('process_resident_memory_bytes'), state };
}

/** Redis keys by family (the key with ids, hashes, periods and addresses replaced), with their count. */
async function families(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const client = servers.redis.client;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const family = k
        .replace(/\{ten_[0-9A-Z]{26}\}/g, '{ten}')
        .replace(/key_[0-9A-Z]{26}/g, 'key')
        .replace(/ten_[0-9A-Z]{26}/g, 'ten')
        .replace(/vr:[0-9a-f]{64}/, 'vr:<hash>')
        .replace(/\d{4}-\d{2}(-\d{2})?/g, '<period>')
        .replace(/fail:.*$/, 'fail:<ip>');
      out.set(family, (out.get(family) ?? 0) + 1);
    }
  } while (cursor !== '0');
  return out;
}

describe('random hostile traffic for a bounded time', () => {
  it('leaves every piece of state within its documented bound', async () => {
    const before = await keygateSeries();
    const statuses: number[] = [];
    const until = Date.now() + SOAK_MS;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (Date.now() < until) await act(statuses);
    }));
    // Let the usage and lastUsedAt flushes run once more.
    await new Promise((r) => setTimeout(r, 2_500));
    const after = await keygateSeries();
    const fams = await families();
    const redis = servers.redis.client;
    const auditLen = await redis.xlen(`kg:{${tenantId}}:audit`);
    const keys = await redis.zcard(`kg:{${tenantId}}:keys`);
    const lastUsed = await redis.hlen(`kg:{${tenantId}}:lu`);
    const refusals = await redis.hlen(`kg:{${tenantId}}:refusals`);
    const memory = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    const byStatus = new Map<number, number>();
    for (const s of statuses) byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    const minted = statuses.filter((s) => s === 201).length + 4; // every key the tenant ever had: children and the first four
    console.log(
      `soak ${SOAK_MS / 1000} s: ${statuses.length} requests (${[...byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ')}); ` +
        `keygate_* series ${before.series} -> ${after.series}, /metrics ${before.bytes} -> ${after.bytes} B, RSS ${Math.round(before.rss / 2 ** 20)} -> ${Math.round(after.rss / 2 ** 20)} MB, ` +
        `key cache ${after.cacheEntries}, state ${JSON.stringify(after.state)}; Redis used_memory ${Math.round(memory / 1024)} KB, audit ${auditLen}, keys ${keys}, lastUsed ${lastUsed}, refusals ${refusals}; ` +
        `families ${JSON.stringify(Object.fromEntries(fams))}`,
    );

    expect(statuses.filter((s) => s >= 500)).toEqual([]); // nothing hostile here is a server error
    // Process: the exposition (closed label sets) and the key cache (cache.maxEntries).
    expect(after.series - before.series).toBeLessThan(150);
    expect(after.cacheEntries).toBeLessThanOrEqual(1_000);
    const state = after.state;
    expect(Object.keys(state).sort()).toEqual(['cache_untrusted', 'failure_blocks', 'failure_counts', 'month_counts', 'rate_limit_specs', 'rate_limit_tenant_windows', 'usage_carried', 'usage_rows', 'usage_sessions']);
    expect(state.cache_untrusted).toBeLessThanOrEqual(1_000);
    expect(state.rate_limit_specs).toBeLessThanOrEqual(1_024);
    expect(state.rate_limit_tenant_windows).toBeLessThanOrEqual(3); // one tenant: minute, day, month
    expect(state.failure_blocks! + state.failure_counts!).toBeLessThanOrEqual(2); // one client address
    expect(state.month_counts).toBeLessThanOrEqual(minted + 2);
    expect(state.usage_rows! + state.usage_carried!).toBeLessThanOrEqual(2 * minted);
    expect(state.usage_sessions).toBe(0);
    // Redis, per family (docs/state.md).
    expect(auditLen).toBeLessThanOrEqual(AUDIT_MAX + 100); // MAXLEN ~ trims by whole radix-tree nodes (up to 100 entries)
    expect(keys).toBeLessThanOrEqual(MAX_KEYS);
    expect(lastUsed).toBeLessThanOrEqual(MAX_KEYS);
    expect(refusals).toBeLessThanOrEqual(MAX_KEYS * MAX_KEYS * 4); // actor × key × operation, this window only
    expect(fams.get('kg:{ten}:k:key') ?? 0).toBeLessThanOrEqual(MAX_KEYS);
    expect(fams.get('kg:vr:<hash>') ?? 0).toBeLessThanOrEqual(MAX_KEYS);
    expect(fams.get('kg:fail:<ip>') ?? 0).toBeLessThanOrEqual(2); // one client address
    // A rate window per period and subject (never per limit value): the tenant's and each key's that was used.
    expect((fams.get('kg:rl:m:key') ?? 0) + (fams.get('kg:rl:d:key') ?? 0)).toBeLessThanOrEqual(2 * minted);
    expect([...fams.keys()].filter((f) => f.startsWith('kg:rl:') && !/^kg:rl:[md]:(key|ten)$/.test(f))).toEqual([]);
    // Quota counters: one per key that used a quota, and the tenant's.
    expect(fams.get('kg:{ten}:q:<period>:r:key') ?? 0).toBeLessThanOrEqual(minted);
    // Nothing else: every family present is one docs/state.md bounds.
    const known = /^kg:(vr:<hash>|tenants|expiry-index|(op:)?fail:<ip>|rl:[md]:(key|ten)|u:<period>|\{platform\}:audit|\{ten\}:(t|keys|k:key|audit|refusals|lu|exp|u:<period>(T\d{2})?|q:<period>:[rs]:(key|\*)|tok:[^:]+:[us]|outbox|ws(:key)?))$/;
    expect([...fams.keys()].filter((f) => !known.test(f))).toEqual([]);
    // The lifecycle record of the wide key survived the refusals.
    const log = await admin(kg, 'GET', `/tenants/${tenantId}/audit-log?limit=100`);
    expect(log.status).toBe(200);
  }, SOAK_MS + 60_000);
});
