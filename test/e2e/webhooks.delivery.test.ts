import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { admin, createTenant, proxied, self } from '../helpers/api.ts';
import { startKeygate } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { FAST_WEBHOOKS as FAST, platformEndpoint as endpoint, until, useReceivers, type Receiver } from '../helpers/webhooks.ts';

// Signed webhooks against real processes: keygate replicas on one real Redis (and the embedded store),
// receivers on 127.0.0.1 that verify every delivery with `standardwebhooks` — the specification's own library,
// not keygate's code. Short timeouts and backoff are configured so retries are observed within a test.

const servers = useServers();
const startReceiver = useReceivers();

// Each test has its own key prefix: the platform's endpoints and the delivery queue are fleet-wide, and a replica
// of one test must not deliver another test's events.
let prefixes = 0;
const isolated = (config: Record<string, unknown>) => ({ ...config, redis: { keyPrefix: `wh${++prefixes}:` } });

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

describe('signed webhooks', () => {
  it('deliver every key event and quota.threshold, each verified by standardwebhooks (latency printed)', async () => {
    const none = { default: null, max: null };
    const plans = { metered: { maxKeys: 100, requestsPerMinute: none, requestsPerDay: none, maxConcurrentConnections: none, requestsPerMonth: { default: null, max: 100 }, sessionMinutesPerMonth: none, maxInFlight: null } };
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST, plans }) });
    const rec = await startReceiver();
    await endpoint(kg, rec);
    const { tenant } = await createTenant(kg, { name: 'hooked', plan: 'metered' });

    // Latency: from the mutation's answer to the receiver's arrival, for 40 key.created events.
    const answered = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const made = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { name: `k${i}` });
      expect(made.status).toBe(201);
      answered.set(made.body.id, Date.now());
    }
    const keyId = [...answered.keys()][0]!;
    expect((await admin(kg, 'PATCH', `/tenants/${tenant.id}/api-keys/${keyId}`, { name: 'renamed' })).status).toBe(200);
    expect((await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys/${keyId}/rotate`, {})).status).toBe(201);
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}/api-keys/${keyId}`)).status).toBe(204);
    const quoted = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { name: 'q', quota: { requestsPerMonth: 5 } });
    for (let i = 0; i < 5; i++) expect((await proxied(kg, '/v1/calls', { 'x-api-key': quoted.body.key })).status).toBe(200);

    const count = (t: string) => rec.got.filter((g) => g.type === t).length;
    await until('every event', () => count('quota.threshold') >= 2 && count('key.created') >= 42 && count('key.updated') && count('key.rotated') && count('key.revoked'));
    expect(rec.got.every((g) => g.verifiedWith.length === 1)).toBe(true);
    const types = (t: string) => rec.got.filter((g) => g.type === t);
    expect(types('key.updated').map((g) => g.data.keyId)).toEqual([keyId]);
    expect(types('key.rotated').map((g) => g.data.keyId)).toEqual([keyId]);
    expect(types('key.revoked').map((g) => g.data.keyId)).toEqual([keyId]);
    expect(types('quota.threshold').map((g) => [g.data.keyId, g.data.threshold, g.data.limit]).sort()).toEqual([[quoted.body.id, 100, 5], [quoted.body.id, 80, 5]]);
    expect(new Set(rec.got.map((g) => g.id)).size).toBe(rec.got.length);

    const latencies = types('key.created').filter((g) => answered.has(g.data.keyId)).map((g) => g.at - answered.get(g.data.keyId)!).sort((x, y) => x - y);
    console.log(`webhook delivery latency (mutation answered → receiver), healthy receiver, pollIntervalMs 50, n=${latencies.length}: p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms, max ${latencies.at(-1)} ms`);
  }, 60_000);

  it('retry a failing and a hanging receiver with backoff until it recovers, each attempt in the delivery log', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    // The first two attempts of each event fail: a 500, then no answer within timeoutMs (1 s); the third is taken.
    const rec = await startReceiver((_r, nth) => (nth === 1 ? 500 : nth === 2 ? 'hang' : 200));
    const ep = await endpoint(kg, rec, ['key.created']);
    const { tenant } = await createTenant(kg, { name: 'flaky' });
    const made = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { name: 'x' });
    // The tenant's first key and this one.
    await until('two delivered events', () => new Set(rec.got.filter((g) => g.id && rec.got.filter((h) => h.id === g.id).length === 3).map((g) => g.id)).size === 2);
    const mine = rec.got.filter((g) => g.data.keyId === made.body.id);
    expect(mine).toHaveLength(3);
    expect(new Set(mine.map((g) => g.id)).size).toBe(1);
    expect(mine.every((g) => g.verifiedWith.length === 1)).toBe(true);
    const log = await until('the delivery log', async () => {
      const r = await admin(kg, 'GET', `/webhooks/${ep.id}/deliveries`);
      const rows = (r.body.data as any[]).filter((d) => d.eventId === mine[0]!.id);
      return rows.length === 3 ? rows : undefined;
    });
    expect(log.map((d) => [d.attempt, d.status, d.outcome])).toEqual([[3, 200, 'delivered'], [2, null, 'retry'], [1, 500, 'retry']]);
    expect(log[1].error).toMatch(/timeout|abort/i);
    rec.release(200);
  }, 60_000);

  it('sign with both secrets while a rotation is in its grace period, then with the new one only', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    const rec = await startReceiver();
    const ep = await endpoint(kg, rec, ['key.created']);
    const rotated = await admin(kg, 'POST', `/webhooks/${ep.id}/rotate-secret`, { gracePeriodSeconds: 3600 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secretsActive).toBe(2);
    rec.secrets.push(rotated.body.secret);
    await createTenant(kg, { name: 'rotating' });
    await until('a delivery', () => rec.got.length === 1);
    expect(rec.got[0]!.verifiedWith).toEqual([ep.secret, rotated.body.secret]);

    const again = await admin(kg, 'POST', `/webhooks/${ep.id}/rotate-secret`, { gracePeriodSeconds: 0 });
    rec.secrets.push(again.body.secret);
    await createTenant(kg, { name: 'rotated' });
    await until('a second delivery', () => rec.got.length === 2);
    expect(rec.got[1]!.verifiedWith).toEqual([again.body.secret]);
  }, 60_000);

  it('refuse loopback targets unless webhooks.allowPrivateTargets, by address and by a name resolving to one', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: { ...FAST, allowPrivateTargets: false, retryForHours: 0.0003 } }) });
    const rec = await startReceiver();
    const byAddress = await endpoint(kg, rec, ['key.created']);
    const byName = (await admin(kg, 'POST', '/webhooks', { url: rec.url.replace('127.0.0.1', 'localhost'), events: ['key.created'] })).body;
    await createTenant(kg, { name: 'ssrf' });
    for (const id of [byAddress.id, byName.id]) {
      const rows = await until('a refused attempt', async () => (await admin(kg, 'GET', `/webhooks/${id}/deliveries`)).body.data.length > 0 && (await admin(kg, 'GET', `/webhooks/${id}/deliveries`)).body.data);
      expect(rows[0].status).toBeNull();
      expect(rows[0].error).toMatch(/^blocked: /);
    }
    // Given up after the (short) retry window: dead letters, never a request to the receiver.
    await until('dead letters', async () => (await admin(kg, 'GET', '/webhooks/dead-letters')).body.data.length === 2);
    expect(rec.got).toEqual([]);
  }, 60_000);

  it("deliver a tenant's own events only to its endpoints, managed with webhooks:write and webhooks:read", async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    const platform = await startReceiver();
    const mine = await startReceiver();
    await endpoint(kg, platform, ['key.created']);
    const acme = await createTenant(kg, { name: 'acme', plan: 'pro' });
    const other = await createTenant(kg, { name: 'other', plan: 'pro' });
    // The tenants' first keys' events fanned out before the tenant's endpoint exists (an endpoint gets the events
    // fanned out after it is added).
    await until('the first keys\' events', () => platform.got.length === 2);
    const made = await self(kg, acme.key, 'POST', '/webhooks', { url: mine.url, events: ['key.created', 'key.revoked'] });
    expect(made.status).toBe(201);
    mine.secrets.push(made.body.secret);
    // Another tenant cannot see it; a key without webhooks:* cannot manage it; a public key cannot be given them.
    expect((await self(kg, other.key, 'GET', `/webhooks/${made.body.id}`)).status).toBe(404);
    expect((await self(kg, other.key, 'GET', '/webhooks')).body.data).toEqual([]);
    const narrow = await self(kg, acme.key, 'POST', '/api-keys', { name: 'narrow', permissions: ['api-keys:read', 'webhooks:read'] });
    expect((await self(kg, narrow.body.key, 'GET', '/webhooks')).body.data.map((e: any) => e.id)).toEqual([made.body.id]);
    expect((await self(kg, narrow.body.key, 'DELETE', `/webhooks/${made.body.id}`)).body.error.code).toBe('insufficient_permissions');
    const pub = await self(kg, acme.key, 'POST', '/api-keys', { keyType: 'public', permissions: ['webhooks:read'], allowedOrigins: ['https://app.example.com'] });
    expect(pub.status).toBe(400);

    const otherKey = await self(kg, other.key, 'POST', '/api-keys', { name: 'elsewhere' });
    const acmeKey = await self(kg, acme.key, 'POST', '/api-keys', { name: 'here' });
    expect((await self(kg, acme.key, 'DELETE', `/api-keys/${acmeKey.body.id}`)).status).toBe(204);
    await until('the tenant endpoint\'s events', () => mine.got.length >= 3 && platform.got.length >= 5);
    await new Promise((r) => setTimeout(r, 300));
    expect(mine.got.map((g) => [g.type, g.data.keyId]).sort()).toEqual([['key.created', narrow.body.id], ['key.created', acmeKey.body.id], ['key.revoked', acmeKey.body.id]].sort());
    expect(mine.got.every((g) => g.verifiedWith.length === 1 && g.data.tenantId === acme.tenant.id)).toBe(true);
    // The platform hears of every tenant's key.created (the one type it asked for), the tenants' first keys too.
    expect(platform.got.map((g) => g.data.keyId).sort()).toEqual([acme.apiKey.id, other.apiKey.id, narrow.body.id, otherKey.body.id, acmeKey.body.id].sort());
    const log = await self(kg, narrow.body.key, 'GET', `/webhooks/${made.body.id}/deliveries`);
    expect(log.body.data.map((d: any) => d.outcome)).toEqual(['delivered', 'delivered', 'delivered']);
  }, 60_000);

  it('send key.expiring 7 and 1 days before and key.expired after, once each across two scanning replicas', async () => {
    const cfg = isolated({ webhooks: { ...FAST, expiryScanSeconds: 0.3 } });
    const [a, b] = await Promise.all([servers.keygate({ config: cfg }), servers.keygate({ config: cfg })]);
    const rec = await startReceiver();
    await endpoint(a, rec, ['key.expiring', 'key.expired']);
    const { tenant } = await createTenant(a, { name: 'expiring', plan: 'pro' });
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const make = async (name: string, expiresAt: string) => (await admin(b, 'POST', `/tenants/${tenant.id}/api-keys`, { name, expiresAt })).body.id as string;
    const inThreeDays = await make('3d', at(3 * 86_400_000));
    const inHalfADay = await make('12h', at(12 * 3_600_000));
    const soon = await make('soon', at(2_000));
    const far = await make('far', at(30 * 86_400_000));
    await until('four events', () => rec.got.length >= 4, 15_000);
    // Many more scans by both replicas: nothing is sent twice.
    await new Promise((r) => setTimeout(r, 2_000));
    const seen = rec.got.map((g) => [g.data.keyId, g.type, g.data.days ?? null]);
    expect(seen.sort()).toEqual([[inThreeDays, 'key.expiring', 7], [inHalfADay, 'key.expiring', 1], [soon, 'key.expiring', 1], [soon, 'key.expired', null]].sort());
    expect(seen.some(([k]) => k === far)).toBe(false);
    expect(rec.got.every((g) => g.verifiedWith.length === 1)).toBe(true);
    expect(new Set(rec.got.map((g) => g.id)).size).toBe(4);
  }, 60_000);

  it('disable an endpoint failing for retryForHours, tell its owner (webhook.disabled, a tenant\'s audit log), and deliver again once enabled', async () => {
    // retryForHours 0.0005: a "day" of failing is 1.8 s here.
    const kg = await servers.keygate({ config: isolated({ webhooks: { ...FAST, retryForHours: 0.0005 } }) });
    let up = false;
    const rec = await startReceiver(() => (up ? 200 : 503));
    // The platform hears of every disabled endpoint on its working ones: a tenant's, and one of its own.
    const watcher = await startReceiver();
    await endpoint(kg, watcher, ['webhook.disabled']);
    const platformDown = await startReceiver(() => 503);
    const platformEp = await endpoint(kg, platformDown, ['key.created']);
    const { tenant, key } = await createTenant(kg, { name: 'down', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/webhooks', { url: rec.url, events: ['key.created'] });
    rec.secrets.push(made.body.secret);
    const first = await self(kg, key, 'POST', '/api-keys', { name: 'first' });
    const disabled = await until('the endpoint disabled', async () => {
      const e = (await self(kg, key, 'GET', `/webhooks/${made.body.id}`)).body;
      return e.disabledAt ? e : undefined;
    });
    expect(disabled.failingSince).not.toBeNull();
    const audit = (await admin(kg, 'GET', `/tenants/${tenant.id}/audit-log`)).body.data as any[];
    expect(audit.filter((a) => a.action === 'webhook.disabled').map((a) => a.details)).toEqual([{ endpointId: made.body.id, url: rec.url }]);
    const told = await until('both webhook.disabled events', () => (watcher.got.length >= 2 ? watcher.got : null));
    expect(told.map((g) => [g.data.endpointId, g.data.tenantId ?? null, g.data.url]).sort()).toEqual([[made.body.id, tenant.id, rec.url], [platformEp.id, null, platformDown.url]].sort());
    expect(told.every((g) => g.type === 'webhook.disabled' && g.verifiedWith.length === 1 && g.data.disabledAt && g.data.failingSince)).toBe(true);
    // Disabled: a new event is not sent to it (nor queued for it).
    up = true;
    const before = rec.got.length;
    const second = await self(kg, key, 'POST', '/api-keys', { name: 'second' });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(rec.got.length).toBe(before);
    // Enabled again: the next event is delivered, and the dead-lettered one can be sent again.
    const enabled = await self(kg, key, 'POST', `/webhooks/${made.body.id}/enable`);
    expect([enabled.status, enabled.body.disabledAt, enabled.body.failingSince]).toEqual([200, null, null]);
    const third = await self(kg, key, 'POST', '/api-keys', { name: 'third' });
    await until('the third delivered', () => rec.delivered.has(rec.got.find((g) => g.data.keyId === third.body.id)?.id ?? ''));
    const dead = (await self(kg, key, 'GET', '/webhooks/dead-letters')).body.data as any[];
    // (The tenant's first key's event may be there too: fanned out just after the endpoint was added.)
    expect(dead.map((d) => d.event.data.keyId)).toContain(first.body.id);
    expect(dead.map((d) => d.event.data.keyId)).not.toContain(second.body.id);
    for (const d of dead) expect((await self(kg, key, 'POST', `/webhooks/dead-letters/${encodeURIComponent(d.key)}/redeliver`)).status).toBe(204);
    await until('the first delivered', () => rec.delivered.has(rec.got.find((g) => g.data.keyId === first.body.id)?.id ?? ''));
    expect(rec.got.some((g) => g.data.keyId === second.body.id)).toBe(false);
  }, 60_000);

  it('send key.revoked for every key of a deleted tenant, written with each revocation', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    const rec = await startReceiver();
    await endpoint(kg, rec, ['key.revoked']);
    const { tenant, apiKey, key } = await createTenant(kg, { name: 'leaving', plan: 'pro' });
    const more = await Promise.all([1, 2].map(async (i) => (await self(kg, key, 'POST', '/api-keys', { name: `k${i}` })).body.id as string));
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}`)).status).toBe(204);
    await until('three key.revoked', () => rec.got.length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(rec.got.map((g) => g.data.keyId).sort()).toEqual([apiKey.id, ...more].sort());
    expect(rec.got.every((g) => g.type === 'key.revoked' && g.data.tenantId === tenant.id && g.data.reason === 'tenant_deleted' && g.data.actor === 'admin' && g.verifiedWith.length === 1)).toBe(true);
    // The keys are gone: a revoked key is refused like any unknown one.
    expect((await proxied(kg, '/v1/calls', { 'x-api-key': key })).status).toBe(401);
  }, 60_000);

  it('send limits.blocked once per blocked address across two replicas, to the platform\'s endpoints only', async () => {
    const cfg = isolated({ webhooks: FAST, limits: { failedAttempts: { maxFailures: 5, windowSeconds: 60, blockSeconds: 120 } } });
    const [a, b] = await Promise.all([servers.keygate({ config: cfg }), servers.keygate({ config: cfg })]);
    const platform = await startReceiver();
    await endpoint(a, platform, ['*']);
    const tenantRec = await startReceiver();
    const { tenant, key } = await createTenant(a, { name: 'watching', plan: 'pro' });
    // The first key's key.created fanned out before the tenant's endpoint exists (it gets events fanned out after).
    await until('the first key\'s key.created', () => platform.got.some((g) => g.type === 'key.created'));
    // A tenant cannot subscribe to a platform event, nor hear of it through `*`.
    const refused = await self(a, key, 'POST', '/webhooks', { url: tenantRec.url, events: ['key.created', 'limits.blocked'] });
    expect([refused.status, refused.body.error.code]).toEqual([400, 'validation_error']);
    expect(refused.body.error.message).toMatch(/limits\.blocked/);
    const mine = await self(a, key, 'POST', '/webhooks', { url: tenantRec.url, events: ['*'] });
    expect(mine.status).toBe(201);

    // Ten failures from 127.0.0.1, alternating replicas: the fifth (on b) blocks the address; a learns of the
    // block from Redis with its next failure (counted, answered 401), and both refuse it from then on.
    const bad = { 'x-api-key': 'kg_sk_not-a-real-key' };
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await proxied(i % 2 ? a : b, '/v1/calls', bad)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429, 429, 429, 429]);
    const blocked = await until('limits.blocked', () => platform.got.find((g) => g.type === 'limits.blocked'));
    expect(blocked.data).toEqual({ ip: '127.0.0.1', failures: 5, windowSeconds: 60, blockSeconds: 120, blockedUntil: expect.any(String), suppressed: 0 });
    expect(Date.parse(blocked.data.blockedUntil) - Date.parse(new Date(blocked.at).toISOString())).toBeGreaterThan(100_000);
    expect(blocked.verifiedWith).toHaveLength(1);
    // A key event after it (through the admin API: the address is blocked on the public listener): once it is
    // delivered, anything sent before it has been too.
    expect((await admin(a, 'POST', `/tenants/${tenant.id}/api-keys`, { name: 'after' })).status).toBe(201);
    await until('the tenant\'s key.created', () => tenantRec.got.some((g) => g.type === 'key.created'));
    await until('the platform\'s key.created', () => platform.got.filter((g) => g.type === 'key.created').length >= 2);
    expect(platform.got.filter((g) => g.type === 'limits.blocked')).toHaveLength(1);
    expect(tenantRec.got.map((g) => g.type)).toEqual(['key.created']);
  }, 60_000);

  it('deliver from the embedded store too', async () => {
    const kg = await startKeygate({ redisUrl: null, upstream: servers.upstream.url, config: { webhooks: FAST } });
    try {
      const rec = await startReceiver();
      await endpoint(kg, rec);
      const { tenant, apiKey } = await createTenant(kg, { name: 'embedded' });
      expect((await admin(kg, 'PATCH', `/tenants/${tenant.id}/api-keys/${apiKey.id}`, { name: 'n' })).status).toBe(200);
      expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}`)).status).toBe(204);
      await until('three events', () => rec.got.length === 3);
      // Delivered in parallel: in any order.
      expect(rec.got.map((g) => [g.type, g.data.keyId]).sort()).toEqual([['key.created', apiKey.id], ['key.revoked', apiKey.id], ['key.updated', apiKey.id]]);
      expect(rec.got.find((g) => g.type === 'key.revoked')!.data).toMatchObject({ tenantId: tenant.id, actor: 'admin', reason: 'tenant_deleted' });
      expect(rec.got.every((g) => g.verifiedWith.length === 1)).toBe(true);
    } finally {
      await kg.stop();
    }
  }, 60_000);

  it('lose no event when the delivering replica is SIGKILLed mid-delivery; a duplicate carries the same webhook-id', async () => {
    const cfg = isolated({ webhooks: FAST });
    const [a, b] = await Promise.all([servers.keygate({ config: cfg }), servers.keygate({ config: cfg })]);
    // Every request is held open until the kill.
    let holding = true;
    const rec = await startReceiver(() => (holding ? 'hang' : 200));
    await endpoint(a, rec, ['key.created']);
    const { tenant } = await createTenant(a, { name: 'killed', plan: 'pro', maxKeys: 30 });
    const keyIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const made = await admin(i % 2 ? b : a, 'POST', `/tenants/${tenant.id}/api-keys`, { name: `k${i}` });
      expect(made.status).toBe(201);
      keyIds.push(made.body.id as string);
    }
    keyIds.push(...((await admin(a, 'GET', `/tenants/${tenant.id}/api-keys?limit=100`)).body.data as any[]).map((k) => k.id).filter((id: string) => !keyIds.includes(id)));
    // Every event in flight (held) at least once before the kill.
    await until('every event held', () => new Set(rec.got.map((g) => g.id)).size === keyIds.length);
    // The replica holding an open delivery: the process owning the other end of its connection. (A held attempt
    // times out after timeoutMs and is sent again: the newest open ones are looked at, until one is found whose
    // connection is still there.)
    const open = () => rec.held.filter((h) => !h.req.socket.destroyed && h.req.socket.remotePort);
    const ownerOf = (h: Receiver['held'][number]) => Number(/pid=(\d+)/.exec(execFileSync('ss', ['-tnpH', 'state', 'established', `( sport = :${h.req.socket.remotePort} )`]).toString())?.[1]);
    const victim = await until('a held delivery whose sender is found', () => {
      for (const h of open().reverse()) {
        const found = [a, b].find((k) => k.proc.pid === ownerOf(h));
        if (found) return found;
      }
      return null;
    });
    const pid = victim.proc.pid!;
    const heldBefore = open().length;
    const victimHeld = open().filter((h) => ownerOf(h) === pid).length;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();
    // Its connections are closed by the kernel: seen here before the survivor's held deliveries are answered.
    await new Promise((r) => setTimeout(r, 200));
    holding = false;
    rec.release(200);

    const idOf = (keyId: string) => rec.got.find((g) => g.data.keyId === keyId)?.id;
    const survivorDone = await until('every event answered 2xx', () => (keyIds.every((k) => rec.delivered.has(idOf(k) ?? '')) ? Date.now() : 0), 30_000);
    // Let a late duplicate (a reclaimed fan-out) arrive before counting.
    await new Promise((r) => setTimeout(r, 1_000));
    const byKey = new Map<string, Set<string>>();
    for (const g of rec.got) (byKey.get(g.data.keyId) ?? byKey.set(g.data.keyId, new Set()).get(g.data.keyId)!).add(g.id);
    expect([...byKey.keys()].sort()).toEqual([...keyIds].sort());
    // One webhook-id per event however often it arrived.
    expect([...byKey.values()].every((ids) => ids.size === 1)).toBe(true);
    expect(rec.got.every((g) => g.verifiedWith.length === 1)).toBe(true);
    const arrivals = rec.got.length;
    const duplicates = arrivals - keyIds.length;
    console.log(`kill mid-delivery: ${keyIds.length} events, ${heldBefore} deliveries held open (${victimHeld} by the victim) when replica pid ${pid} was SIGKILLed; ` +
      `all ${keyIds.length} delivered (${arrivals} arrivals, ${duplicates} beyond one per event, every duplicate with its event's webhook-id); ` +
      `last event delivered ${survivorDone - killedAt} ms after the kill (claimIdleMs ${FAST.claimIdleMs}, timeoutMs ${FAST.timeoutMs})`);
  }, 90_000);
});
