import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { admin, createTenant, expectError, proxied, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
let upstream: WebSocketServer;
let upstreamUrl: string;
let a: KeygateProcess;
let b: KeygateProcess;
const upgrades: Array<{ url: string; headers: Record<string, string | string[] | undefined> }> = [];

beforeAll(async () => {
  redis = await startRedis();
  // A voice backend: echoes every frame, binary stays binary, and greets with a binary frame.
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => upstream.once('listening', r));
  upstream.on('connection', (ws, req) => {
    upgrades.push({ url: req.url ?? '', headers: req.headers });
    ws.send(Buffer.from([1, 2, 3]));
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  [a, b] = await Promise.all([startKeygate({ redisUrl: redis.url, upstream: upstreamUrl }), startKeygate({ redisUrl: redis.url, upstream: upstreamUrl })]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  upstream?.close();
  await redis?.close();
});

function open(kg: KeygateProcess, path: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}${path}`, { headers });
  const frames: Array<{ data: Buffer; binary: boolean }> = [];
  ws.on('message', (data, binary) => frames.push({ data: data as Buffer, binary }));
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body), headers: res.headers })));
    });
    ws.once('error', (err) => reject(err));
  });
  return { ws, frames, opened, closed };
}

async function refusal(session: ReturnType<typeof open>): Promise<{ status: number; body: any; headers: Record<string, string> }> {
  try {
    await session.opened;
  } catch (err) {
    return err as never;
  }
  throw new Error('the upgrade was accepted');
}

describe('WebSocket voice sessions', () => {
  it('relays binary and text frames both ways, with the identity headers and without the query key', async () => {
    const { tenant, key } = await createTenant(a, { name: 'voice', plan: 'pro' });
    const s = open(a, `/v1/voice/asst_1/stream?api_key=${key}&lang=en`);
    await s.opened;
    await expect.poll(() => s.frames.length).toBe(1);
    expect(s.frames[0]).toEqual({ data: Buffer.from([1, 2, 3]), binary: true });
    s.ws.send(Buffer.from([9, 8, 7]));
    s.ws.send('hello');
    await expect.poll(() => s.frames.length).toBe(3);
    expect(s.frames[1]).toEqual({ data: Buffer.from([9, 8, 7]), binary: true });
    expect(s.frames[2]!.binary).toBe(false);
    expect(s.frames[2]!.data.toString()).toBe('hello');
    const seen = upgrades.at(-1)!;
    expect(seen.url).toBe('/v1/voice/asst_1/stream?lang=en');
    expect(seen.headers['x-tenant-id']).toBe(tenant.id);
    expect(JSON.stringify(seen)).not.toContain(key);
    s.ws.close(1000);
    expect((await s.closed).code).toBe(1000);
  });

  it('refuses an upgrade without a valid key before the upstream is contacted', async () => {
    const before = upgrades.length;
    const r = await refusal(open(a, '/v1/voice/asst_1/stream'));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('missing_api_key');
    const bad = await refusal(open(a, '/v1/voice/asst_1/stream', { 'x-api-key': 'kg_sk_000000000000000000000000000000' }));
    expect(bad.body.error.code).toBe('invalid_api_key');
    expect(upgrades.length).toBe(before);
  });

  it('refuses the (N+1)th concurrent session of a key, counted across replicas', async () => {
    const { key } = await createTenant(a, { name: 'cap', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { maxConcurrentConnections: 2 });
    const k = made.body.key as string;
    const one = open(a, '/v1/voice/x/stream', { 'x-api-key': k });
    const two = open(b, '/v1/voice/x/stream', { 'x-api-key': k });
    await Promise.all([one.opened, two.opened]);
    const three = await refusal(open(a, '/v1/voice/x/stream', { 'x-api-key': k }));
    expect(three.status).toBe(429);
    expect(three.body.error.code).toBe('concurrency_limit_reached');
    expect(three.headers['retry-after']).toBeTruthy();
    one.ws.close();
    await one.closed;
    // The slot is free once the replica that held the session has seen it close (a moment after the client).
    let again: ReturnType<typeof open> | null = null;
    await expect
      .poll(async () => {
        const attempt = open(b, '/v1/voice/x/stream', { 'x-api-key': k });
        const ok = await attempt.opened.then(() => true, () => false);
        if (ok) again = attempt;
        return ok;
      })
      .toBe(true);
    two.ws.close();
    again!.ws.close();
  });

  it("refuses an upgrade over the key's rate limit with 429 rate_limited, worded as over HTTP", async () => {
    const { key } = await createTenant(a, { name: 'ws-rpm', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 1 } });
    const k = made.body.key as string;
    const first = open(a, '/v1/voice/x/stream', { 'x-api-key': k });
    await first.opened;
    const second = await refusal(open(a, '/v1/voice/x/stream', { 'x-api-key': k }));
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe('rate_limited');
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
    expect(second.headers['ratelimit-remaining']).toBe('0');
    const overHttp = await proxied(a, '/v1/voice/x/stream', { 'x-api-key': k });
    expectError(overHttp, 429, 'rate_limited');
    expect((overHttp.body as { error: { message: string } }).error.message).toBe(second.body.error.message);
    first.ws.close();
    await first.closed;
  });

  it('closes a live session with 1008 on another replica within 2 s of revocation', async () => {
    const { tenant, key } = await createTenant(a, { name: 'revoke-live', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', {});
    const s = open(b, '/v1/voice/x/stream', { authorization: `Bearer ${made.body.key}` });
    await s.opened;
    const revokedAt = Date.now();
    expect((await admin(a, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.body.id}`)).status).toBe(204);
    const closed = await s.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toBe('key_revoked');
    console.log(`live session closed ${closed.at - revokedAt} ms after the revoke call started`);
    expect(closed.at - revokedAt).toBeLessThan(2_000);
  });

  it('closes sessions of a disabled key and of an expiring key', async () => {
    const { key } = await createTenant(a, { name: 'disable-live', plan: 'pro' });
    const made = await self(a, key, 'POST', '/api-keys', {});
    const s = open(b, '/v1/voice/x/stream', { 'x-api-key': made.body.key });
    await s.opened;
    await self(a, key, 'PATCH', `/api-keys/${made.body.id}`, { isActive: false });
    expect(await s.closed).toMatchObject({ code: 1008, reason: 'key_disabled' });

    const soon = await self(a, key, 'POST', '/api-keys', { expiresAt: new Date(Date.now() + 1_500).toISOString() });
    const e = open(a, '/v1/voice/x/stream', { 'x-api-key': soon.body.key });
    await e.opened;
    expect(await e.closed).toMatchObject({ code: 1008, reason: 'key_expired' });
  });
});
