import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { admin, createTenant, proxied, rawRequest, self } from '../helpers/api.ts';
import { ADMIN_TOKEN, startKeygate } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let redis: RedisServer;
let upstream: Upstream;
let wss: WebSocketServer;
let held: Array<() => void> = [];

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startUpstream((req, res) => {
    if (req.url?.startsWith('/v1/slow')) {
      held.push(() => res.end('done'));
      return;
    }
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  wss = new WebSocketServer({ server: upstream.server });
  wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
});
afterAll(async () => {
  wss?.close();
  await Promise.all([redis?.close(), upstream?.close()]);
});

const SIGNING = 'signing-secret-for-the-log-test';
const PEPPER = 'pepper-for-the-log-test-0123';

describe('logs and errors never carry key material', () => {
  it('finds no key or secret in anything keygate wrote', async () => {
    const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, env: { KEYGATE_SIGNING_SECRET: SIGNING, KEYGATE_PEPPER: PEPPER, LOG_LEVEL: 'debug' } });
    const secrets: string[] = [ADMIN_TOKEN, SIGNING, PEPPER];
    const bodies: string[] = [];
    try {
      const { key, tenant } = await createTenant(kg, { name: 'secrets', plan: 'pro' });
      secrets.push(key);
      const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
      secrets.push(made.body.key);
      bodies.push(JSON.stringify((await proxied(kg, '/v1/a', { 'x-api-key': made.body.key })).body));
      bodies.push(JSON.stringify((await proxied(kg, '/v1/a', { authorization: `Bearer ${made.body.key}` })).body));
      bodies.push((await rawRequest(`${kg.url}/v1/a?api_key=${made.body.key}`, {})).body);
      const rotated = await self(kg, key, 'POST', `/api-keys/${made.body.id}/rotate`, { gracePeriodSeconds: 0 });
      secrets.push(rotated.body.key);
      // Rejected values, almost right: wrong checksum, revoked, rotated away.
      const flipped = rotated.body.key.slice(0, -1) + (rotated.body.key.endsWith('a') ? 'b' : 'a');
      secrets.push(flipped);
      for (const k of [flipped, made.body.key]) {
        bodies.push(JSON.stringify((await proxied(kg, '/v1/a', { 'x-api-key': k })).body));
        bodies.push(JSON.stringify((await self(kg, k, 'GET', '/tenants/me')).body));
      }
      const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/a/stream?api_key=${key}`);
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      ws.close();
      const bad = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/a/stream?api_key=${flipped}`);
      await new Promise((r) => bad.once('error', r));
      await admin(kg, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.body.id}`);
      bodies.push(JSON.stringify((await fetch(`${kg.opsUrl}/admin/v1/tenants`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } }).then((r) => r.json()))));
      bodies.push(await (await fetch(`${kg.opsUrl}/metrics`)).text());
    } finally {
      expect(await kg.stop()).toBe(0);
    }
    const everything = kg.output() + bodies.join('\n');
    expect(kg.output()).toContain('"msg":"request"'); // the access log was on
    for (const secret of secrets) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice(-24)); // nor a recognisable part of it
    }
  });
});

describe('graceful shutdown', () => {
  it('drains 100 slow requests, refuses new connections, sends 1001 to WebSockets, flushes usage and exits 0', async () => {
    const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, config: { shutdown: { timeoutSeconds: 15 }, usage: { flushIntervalSeconds: 3600 } } });
    const { tenant, key } = await createTenant(kg, { name: 'drain', plan: 'enterprise' });
    const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/a/stream`, { headers: { 'x-api-key': key } });
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const wsClosed = new Promise<number>((r) => ws.once('close', (code) => r(code)));

    held = [];
    const inflight = Array.from({ length: 100 }, (_, i) => rawRequest(`${kg.url}/v1/slow/${i}`, { headers: { 'x-api-key': key } }));
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(100);
    const signalled = Date.now();
    kg.proc.kill('SIGTERM');

    expect(await wsClosed).toBe(1001);
    // New connections are refused once the listener has closed.
    await expect
      .poll(
        () =>
          new Promise<string>((resolve) => {
            const s = connect(kg.port, '127.0.0.1');
            s.once('connect', () => (s.destroy(), resolve('accepted')));
            s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          }),
      )
      .toBe('ECONNREFUSED');
    expect(kg.proc.exitCode).toBeNull(); // still draining
    for (const release of held) release();
    const replies = await Promise.all(inflight);
    expect(replies.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(await kg.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(15_000);

    // The counters flushed at shutdown are exact: 100 slow requests + the WebSocket session.
    const today = new Date().toISOString().slice(0, 10);
    const counts = await redis.client.hgetall(`kg:{${tenant.id}}:u:${today}`);
    expect(Number(counts['*:allowed'])).toBe(101);
    expect(Number(counts['*:denied'] ?? 0)).toBe(0);
  });
});
