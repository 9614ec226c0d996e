import { describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { FAST_WEBHOOKS as FAST, platformEndpoint, until, useReceivers } from '../helpers/webhooks.ts';

// Webhook state a tenant controls, attacked with its own key against real keygate processes, a real redis-server
// (and the embedded store): delivery jobs and dead letters at receivers that never answer, the endpoint cap
// under concurrent creates, another tenant's dead letters, and endpoints made while the tenant is deleted.

const servers = useServers();
const startReceiver = useReceivers();

let prefixes = 0;
const prefix = () => `whb${++prefixes}:`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A port nothing listens on: every attempt is refused at once. */
const DEAD = 'http://127.0.0.1:9/hooks';

const STORES = [
  { store: 'redis', redisUrl: undefined },
  { store: 'memory', redisUrl: null },
] as const;

async function metric(kg: KeygateProcess, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{reason="([a-z_]+)"\\} (\\d+)`, 'gm'))) out[m[1]!] = Number(m[2]);
  return out;
}

async function auditLog(kg: KeygateProcess, tenantId: string): Promise<Array<{ action: string; details: Record<string, any> }>> {
  const all = [];
  let cursor: string | null = null;
  do {
    const page = await admin(kg, 'GET', `/tenants/${tenantId}/audit-log?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    expect(page.status).toBe(200);
    all.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor);
  return all;
}

/** Every Redis key of the webhook delivery state under `p`, and their memory (MEMORY USAGE, bytes). */
async function webhookState(p: string) {
  const r = servers.redis.client;
  const keys = await r.keys(`${p}{webhooks}:*`);
  let bytes = 0;
  for (const k of keys) bytes += Number(await r.memory('USAGE', k)) || 0;
  return { jobs: await r.hlen(`${p}{webhooks}:jobs`), dead: await r.zcard(`${p}{webhooks}:dead`), due: await r.zcard(`${p}{webhooks}:due`), bytes };
}

describe('webhook jobs are capped per tenant and per endpoint', () => {
  it.each(STORES)('ten endpoints at a dead port and 150 renames: jobs and dead letters stay under the caps, drops counted and audited ($store)', async ({ redisUrl }) => {
    const p = prefix();
    const caps = { maxPendingJobsPerTenant: 60, maxPendingJobsPerEndpoint: 10, maxDeadLettersPerTenant: 40, maxDeadLettersPerEndpoint: 8 };
    // Retries for 2 s: jobs are pending a while, then dead-lettered.
    const webhooks = { ...FAST, retryForHours: 2 / 3600, ...caps };
    const kg = await servers.keygate({ ...(redisUrl === null ? { redisUrl } : {}), config: { webhooks, audit: { maxEntries: 500 }, redis: { keyPrefix: p } } });
    const attacker = await createTenant(kg, { name: 'attacker', plan: 'pro' });
    for (let i = 0; i < 10; i++) expect((await self(kg, attacker.key, 'POST', '/webhooks', { url: `${DEAD}/${i}`, events: ['*'] })).status).toBe(201);
    const before = redisUrl === null ? null : await webhookState(p);

    let peakJobs = 0;
    for (let i = 0; i < 150; i++) {
      // (Through the admin API: the same mutation and events, without the plan's rate limit in the way.)
      expect((await admin(kg, 'PATCH', `/tenants/${attacker.tenant.id}/api-keys/${attacker.apiKey.id}`, { name: `n${i}` })).status).toBe(200);
      if (redisUrl !== null && i % 10 === 9) peakJobs = Math.max(peakJobs, (await webhookState(p)).jobs);
    }
    if (redisUrl !== null) console.log(`after 150 renames: ${JSON.stringify(await webhookState(p))} (before: ${JSON.stringify(before)})`);
    // 1,500 jobs were asked for; the caps hold at most 60 pending and 40 dead.
    const dropped = await until('jobs dropped at the pending caps', async () => {
      const m = await metric(kg, 'keygate_webhook_jobs_dropped_total');
      return (m.pending_tenant_cap ?? 0) + (m.pending_endpoint_cap ?? 0) > 0 && (m.dead_endpoint_cap ?? 0) + (m.dead_tenant_cap ?? 0) > 0 ? m : null;
    });
    const dead = await self(kg, attacker.key, 'GET', '/webhooks/dead-letters');
    expect(dead.status).toBe(200);
    expect(dead.body.data.length).toBeLessThanOrEqual(caps.maxDeadLettersPerTenant);
    const told = (await auditLog(kg, attacker.tenant.id)).filter((e) => e.action === 'webhook.jobs_dropped');
    if (redisUrl !== null) {
      const after = await webhookState(p);
      peakJobs = Math.max(peakJobs, after.jobs);
      console.log(`10 dead endpoints, 150 renames: dropped ${JSON.stringify(dropped)}; jobs ${before!.jobs} → ${after.jobs} (peak ${peakJobs}), dead ${after.dead}, {webhooks} keys ${before!.bytes} → ${after.bytes} bytes; ${told.length} audit entries`);
      expect(peakJobs).toBeLessThanOrEqual(caps.maxPendingJobsPerTenant + caps.maxDeadLettersPerTenant);
      expect(after.dead).toBeLessThanOrEqual(caps.maxDeadLettersPerTenant);
      // (Before the caps: 1,500 jobs and about 1.4 MB for these 150 renames, growing with every one.)
      expect(after.bytes).toBeLessThan(300_000);
    } else {
      console.log(`10 dead endpoints, 150 renames (memory): dropped ${JSON.stringify(dropped)}; ${dead.body.data.length} dead letters listed; ${told.length} audit entries`);
    }
    expect(told.length).toBeGreaterThanOrEqual(1);
    expect(told.length).toBeLessThanOrEqual(3);
    expect(Object.keys(told[0]!.details.dropped).every((r: string) => /^(pending|dead)_(tenant|endpoint)_cap$/.test(r))).toBe(true);
  }, 90_000);
});

describe('the per-tenant endpoint cap', () => {
  it.each(STORES)('60 concurrent creates with a cap of 10 make exactly 10 ($store)', async ({ redisUrl }) => {
    const kg = await servers.keygate({ ...(redisUrl === null ? { redisUrl } : {}), config: { webhooks: FAST, redis: { keyPrefix: prefix() } } });
    const t = await createTenant(kg, { name: 'racer', plan: 'pro' });
    const made = await Promise.all(Array.from({ length: 60 }, (_, i) => self(kg, t.key, 'POST', '/webhooks', { url: `${DEAD}/${i}`, events: ['key.created'] })));
    const statuses = made.map((m) => m.status);
    const listed = await self(kg, t.key, 'GET', '/webhooks');
    console.log(`60 concurrent endpoint creates, cap 10: ${statuses.filter((s) => s === 201).length} × 201, ${statuses.filter((s) => s === 400).length} × 400; ${listed.body.data.length} endpoints listed`);
    expect({ created: statuses.filter((s) => s === 201).length, listed: listed.body.data.length }).toEqual({ created: 10, listed: 10 });
    expect(statuses.every((s) => s === 201 || s === 400)).toBe(true);
  }, 60_000);
});

describe('dead letters are listed per tenant', () => {
  it("a tenant's dead letter stays listed after another tenant dead-letters a thousand newer ones", async () => {
    // Every failure dead-letters at once (a retry window of 36 ms).
    const kg = await servers.keygate({ config: { webhooks: { ...FAST, retryForHours: 0.00001 }, redis: { keyPrefix: prefix() } } });
    const victim = await createTenant(kg, { name: 'victim', plan: 'pro' });
    const attacker = await createTenant(kg, { name: 'attacker', plan: 'pro' });
    expect((await self(kg, victim.key, 'POST', '/webhooks', { url: DEAD, events: ['key.updated'] })).status).toBe(201);
    expect((await self(kg, victim.key, 'PATCH', `/api-keys/${victim.apiKey.id}`, { name: 'mine' })).status).toBe(200);
    await until("the victim's dead letter", async () => (await self(kg, victim.key, 'GET', '/webhooks/dead-letters')).body.data.length === 1);

    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const made = await self(kg, attacker.key, 'POST', '/webhooks', { url: `${DEAD}/${i}`, events: ['key.updated'] });
      expect(made.status).toBe(201);
      ids.push(made.body.id);
    }
    // Its endpoints are disabled at their first failure (and then hear nothing new): it enables them again, renames
    // its key ten times, and waits for those to be dead-lettered, until it has a thousand dead letters.
    const attackerDead = async () => (await self(kg, attacker.key, 'GET', '/webhooks/dead-letters')).body.data.length as number;
    for (let round = 0, had = 0; had < 1000 && round < 200; round++) {
      for (const id of ids) expect((await self(kg, attacker.key, 'POST', `/webhooks/${id}/enable`)).status).toBe(200);
      for (let i = 0; i < 10; i++) expect((await admin(kg, 'PATCH', `/tenants/${attacker.tenant.id}/api-keys/${attacker.apiKey.id}`, { name: `r${round}n${i}` })).status).toBe(200);
      const start = had;
      try {
        had = await until('more dead letters', async () => {
          const n = await attackerDead();
          return n > start ? n : 0;
        }, 3_000);
      } catch {
        // (a poll read the endpoints while still disabled: the next round enables them again)
      }
    }
    expect(await attackerDead()).toBeGreaterThanOrEqual(1000);
    const mine = await self(kg, victim.key, 'GET', '/webhooks/dead-letters');
    console.log(`victim's dead letters listed after the attacker's 1,000+: ${mine.body.data.length}`);
    expect(mine.body.data.map((d: { event: { type: string } }) => d.event.type)).toEqual(['key.updated']);
  }, 120_000);
});

describe('tenant deletion', () => {
  it.each(STORES)('leaves no endpoint behind, made by the tenant while it is deleted, and none of them hears key.revoked ($store)', async ({ redisUrl }) => {
    const p = prefix();
    const kg = await servers.keygate({ ...(redisUrl === null ? { redisUrl } : {}), config: { webhooks: { ...FAST, maxEndpointsPerTenant: 1_000 }, redis: { keyPrefix: p } } });
    const platform = await startReceiver();
    await platformEndpoint(kg, platform, ['key.revoked']);
    const tenantRec = await startReceiver();
    const statuses = new Map<number, number>();
    let created = 0;
    let revocations = 0;
    // Three tenants deleted in turn, each while sixteen loops of its own key create endpoints until the key
    // stops working.
    for (let n = 0; n < 3; n++) {
      const t = await createTenant(kg, { name: `leaving${n}`, plan: 'pro', maxKeys: 60 });
      for (let i = 0; i < 20; i++) expect((await admin(kg, 'POST', `/tenants/${t.tenant.id}/api-keys`, { name: `k${i}` })).status).toBe(201);
      revocations += 21;
      let stop = false;
      let mine = 0;
      const creator = async () => {
        while (!stop) {
          const r = await self(kg, t.key, 'POST', '/webhooks', { url: tenantRec.url, events: ['*'] });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 201) mine++;
        }
      };
      const loops = Array.from({ length: 16 }, creator);
      await until('endpoints being created', () => mine >= 3);
      expect((await admin(kg, 'DELETE', `/tenants/${t.tenant.id}`)).status).toBe(204);
      await sleep(300);
      stop = true;
      await Promise.all(loops);
      created += mine;
    }

    // On Redis, the endpoints keygate holds are read from the store itself; the embedded store's survivors would
    // show as key.revoked deliveries to the tenants' receiver.
    const left = await admin(kg, 'GET', '/webhooks');
    const survivors = redisUrl === null ? [] : (await servers.redis.client.hvals(`${p}{webhooks}:endpoints`)).map((raw) => JSON.parse(raw) as { tenantId: string | null }).filter((e) => e.tenantId !== null);
    await until(`the platform heard of the ${revocations} revocations`, () => platform.got.filter((g) => g.type === 'key.revoked').length >= revocations);
    await sleep(500);
    const revokedToTenant = tenantRec.got.filter((g) => g.type === 'key.revoked').length;
    console.log(`3 tenants deleted while 16 loops each created endpoints: ${created} created (${JSON.stringify(Object.fromEntries(statuses))}); ${survivors.length} tenant endpoints left; ${revokedToTenant} key.revoked delivered to them`);
    expect({ survivors: survivors.length, revokedToTenant, platformEndpoints: left.body.data.length }).toEqual({ survivors: 0, revokedToTenant: 0, platformEndpoints: 1 });
  }, 120_000);
});
