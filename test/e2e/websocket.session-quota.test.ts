import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Session minutes per month on real processes: two keygate replicas, one Redis, a real WebSocket
// upstream. A quota is at least a minute, so each test starts with most of it already used: the month's counter
// in Redis is set as another replica's earlier sessions would have left it (the documented layout,
// `<prefix>{<tenantId>}:q:<YYYY-MM>:s:<keyId|*>`, in ms). What is left is then a few seconds of live session.

let redis: RedisServer;
let upstream: WebSocketServer;
let a: KeygateProcess;
let b: KeygateProcess;

const none = { default: null, max: null };
const config = {
  quotas: { sessionWarningSeconds: 3, sessionGraceSeconds: 1 },
  usage: { flushIntervalSeconds: 1 },
  plans: {
    voice: {
      maxKeys: 10, requestsPerMinute: none, requestsPerDay: none, maxConcurrentConnections: none,
      requestsPerMonth: none, sessionMinutesPerMonth: { default: null, max: 1 }, maxInFlight: null,
    },
  },
};

beforeAll(async () => {
  redis = await startRedis();
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => upstream.once('listening', r));
  upstream.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  [a, b] = (await Promise.all([0, 1].map(() => startKeygate({ redisUrl: redis.url, upstream: upstreamUrl, config })))) as [KeygateProcess, KeygateProcess];
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  upstream?.close();
  await redis?.close();
});

const month = () => new Date().toISOString().slice(0, 7);
const counter = (tenantId: string, who: string) => `kg:{${tenantId}}:q:${month()}:s:${who}`;

function open(kg: KeygateProcess, key: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/x/stream`, { headers: { 'x-api-key': key } });
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
  const opened = new Promise<{ status: number; body: any; headers: Record<string, unknown> } | null>((resolve, reject) => {
    ws.once('open', () => resolve(null));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body), headers: res.headers }));
    });
    ws.once('error', reject);
  });
  return { ws, opened, closed };
}

/** Seconds from now until the calendar month (UTC) ends. */
function toMonthEnd(): number {
  const now = new Date();
  return (Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000;
}

function expectQuotaRefusal(r: { status: number; body: any; headers: Record<string, unknown> } | null, whose: string): void {
  expect(r?.status).toBe(429);
  expect(r?.body.error.code).toBe('quota_exceeded');
  expect(r?.body.error.message).toContain(whose);
  expect(Math.abs(Number(r?.headers['retry-after']) - toMonthEnd())).toBeLessThan(30);
}

/** Log lines of a replica with this message, parsed. */
const logLines = (kg: KeygateProcess, msg: string) =>
  kg.output().split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l));

async function metric(kg: KeygateProcess, name: string): Promise<number> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? 0);
}

describe('session minutes per month', () => {
  it("warn, then close a live session with 1008 quota_exceeded when its key's minutes run out; refuse the next on another replica", async () => {
    const { tenant, key } = await createTenant(a, { name: 'minutes', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { quota: { sessionMinutesPerMonth: 1 } });
    expect(made.body.quota.sessionMinutesPerMonth).toBe(1);
    const k = made.body.key as string;
    await redis.client.set(counter(tenant.id, made.body.id), 55_000); // 5 s of the minute left

    const s = open(a, k);
    expect(await s.opened).toBeNull();
    const openedAt = Date.now();
    const echoed = new Promise((r) => s.ws.once('message', r));
    s.ws.send('hello');
    await echoed;

    const closed = await s.closed;
    const lasted = (closed.at - openedAt) / 1000;
    console.log(`session with 5 s of quota left closed after ${lasted.toFixed(2)} s (grace 1 s)`);
    expect(closed).toMatchObject({ code: 1008, reason: 'quota_exceeded' });
    expect(lasted).toBeGreaterThan(5); // the 5 s left and the 1 s grace (checked every second)
    expect(lasted).toBeLessThan(9);

    // Warned sessionWarningSeconds before the minutes ran out: a log line naming the close time; and the
    // reservation that handed out the last of them emitted the 100% quota.threshold event.
    const [warning] = logLines(a, 'session quota ending').filter((l) => l.keyId === made.body.id);
    expect(warning).toMatchObject({ tenantId: tenant.id, scope: 'key', quota: 'sessionMinutesPerMonth' });
    // sessionWarningSeconds (3) before the minutes ran out, the grace (1) before the close; the check runs every second.
    expect(closed.at - Date.parse(warning.timestamp)).toBeGreaterThan(2_500);
    expect(Math.abs(Date.parse(warning.closesAt) - closed.at)).toBeLessThan(1_500);
    const events = [...logLines(a, 'quota.threshold'), ...logLines(b, 'quota.threshold')].map((l) => l.event).filter((e) => e.keyId === made.body.id);
    expect(events).toMatchObject([{ quota: 'sessionMinutesPerMonth', threshold: 100, limit: 1, used: 1, period: month() }]);

    // The whole minute is spent: the other replica refuses the next session, until the month ends.
    expectQuotaRefusal(await open(b, k).opened, 'API key');
    expect(await redis.client.get(counter(tenant.id, made.body.id))).toBe('60000');

    // Metered like any session: one session, its seconds, in usage and in the metric.
    await expect
      .poll(async () => (await self(a, key, 'GET', `/usage?keyId=${made.body.id}`)).body.data.at(-1), { timeout: 5_000 })
      .toMatchObject({ sessions: 1 });
    const today = (await self(a, key, 'GET', `/usage?keyId=${made.body.id}`)).body.data.at(-1);
    expect(today.sessionSeconds).toBeGreaterThan(5);
    expect(today.sessionSeconds).toBeLessThan(9);
    expect(await metric(a, 'keygate_session_seconds_total')).toBeGreaterThan(5);
  });

  it("share a tenant's minutes (the plan's max) across keys and replicas; a session that ends gives back what it did not use", async () => {
    const { tenant, key } = await createTenant(a, { name: 'shared', plan: 'voice' });
    const other = (await self(a, key, 'POST', '/api-keys', {})).body.key as string;
    await redis.client.set(counter(tenant.id, '*'), 52_000); // 8 s of the tenant's minute left

    const first = open(a, key);
    expect(await first.opened).toBeNull(); // holds the 8 s
    expectQuotaRefusal(await open(b, other).opened, 'tenant'); // nothing left for a second session
    await new Promise((r) => setTimeout(r, 1_000));
    first.ws.close(1000);
    expect((await first.closed).code).toBe(1000);

    // What the first session did not use (about 7 s) is back: the other key gets it on the other replica.
    let second: ReturnType<typeof open> | null = null;
    await expect
      .poll(async () => {
        const attempt = open(b, other);
        const refused = await attempt.opened;
        if (!refused) second = attempt;
        return refused === null;
      })
      .toBe(true);
    const closed = await second!.closed;
    expect(closed).toMatchObject({ code: 1008, reason: 'quota_exceeded' });
    const [warning] = logLines(b, 'session quota ending').filter((l) => l.tenantId === tenant.id);
    expect(warning).toMatchObject({ scope: 'tenant' });
    // The tenant's minute was handed out exactly: what was given back went to the second session.
    expect(await redis.client.get(counter(tenant.id, '*'))).toBe('60000');
  });

  it('a session re-metered while it runs (its key re-capped) gives back what the new meter reserved and did not use when it ends', async () => {
    const { tenant, key } = await createTenant(a, { name: 'recapped', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { quota: { sessionMinutesPerMonth: 1 } });
    const k = made.body.key as string;
    await redis.client.set(counter(tenant.id, made.body.id), 50_000); // 10 s of the minute left
    const s = open(a, k);
    expect(await s.opened).toBeNull();
    await expect.poll(async () => Number(await redis.client.get(counter(tenant.id, made.body.id)))).toBe(60_000); // the 10 s reserved

    // Two minutes now: the live session is metered against them, a new reservation taken (the old one's rest given back).
    expect((await self(a, key, 'PATCH', `/api-keys/${made.body.id}`, { quota: { sessionMinutesPerMonth: 2 } })).status).toBe(200);
    await expect.poll(async () => Number(await redis.client.get(counter(tenant.id, made.body.id))), { timeout: 5_000 }).toBeGreaterThan(100_000);

    s.ws.close(1000);
    expect((await s.closed).code).toBe(1000);
    // Only what the session used stays counted: the new meter's reservation comes back as the first one's did.
    await expect.poll(async () => Number(await redis.client.get(counter(tenant.id, made.body.id))), { timeout: 5_000 }).toBeLessThan(60_000);
  });

  it('meter sessions without any quota, and keep them off the quota counters', async () => {
    const { tenant, key } = await createTenant(a, { name: 'unmetered', plan: 'enterprise' });
    const s = open(b, key);
    expect(await s.opened).toBeNull();
    await new Promise((r) => setTimeout(r, 1_200));
    s.ws.close(1000);
    await s.closed;
    await expect
      .poll(async () => (await self(b, key, 'GET', '/usage')).body.data.at(-1).sessions, { timeout: 5_000 })
      .toBe(1);
    const today = (await self(b, key, 'GET', '/usage')).body.data.at(-1);
    expect(today.sessionSeconds).toBeGreaterThan(1);
    expect(today.sessionSeconds).toBeLessThan(5);
    expect(await redis.client.keys(`kg:{${tenant.id}}:q:*`)).toEqual([]);
  });
});
