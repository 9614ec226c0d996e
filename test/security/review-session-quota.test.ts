import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { admin, createTenant } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Review of the merged branches (adversarial, seams): session metering (limits/session-quota.ts) decides at the
// upgrade whether a session is metered and with which limits, and the WebSocket hardening re-checks live
// sessions whenever their key changes (proxy/ws-sessions.ts revalidate) — but the re-check covers status,
// mTLS, origin, route and assistant, not the session minutes. A session opened before its key was given a quota
// is never metered; an admin who caps a key's minutes (a customer over budget, a leaked key being contained)
// leaves its live sessions running for as long as the client keeps them open.

let redis: RedisServer;
let upstream: WebSocketServer;
let kg: KeygateProcess;

const none = { default: null, max: null };
const config = {
  quotas: { sessionWarningSeconds: 1, sessionGraceSeconds: 1 },
  plans: {
    open: { maxKeys: 10, requestsPerMinute: none, requestsPerDay: none, maxConcurrentConnections: none, requestsPerMonth: none, sessionMinutesPerMonth: none, maxInFlight: null },
  },
};

beforeAll(async () => {
  redis = await startRedis();
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => upstream.once('listening', r));
  upstream.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  kg = await startKeygate({ redisUrl: redis.url, upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, config });
});
afterAll(async () => {
  await kg?.stop();
  upstream?.close();
  await redis?.close();
});

const month = () => new Date().toISOString().slice(0, 7);

describe('session minutes apply to live sessions when a key is given a quota', () => {
  it('closes a live session 1008 quota_exceeded once its key is capped to minutes already used up', async () => {
    const { tenant } = await createTenant(kg, { name: 'unmetered', plan: 'open' });
    const made = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { permissions: ['*'] });
    expect(made.status).toBe(201);
    const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/x/stream`, { headers: { 'x-api-key': made.body.key } });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));

    // The admin caps the key at one minute a month, which it has used (as other sessions would have left it).
    await redis.client.set(`kg:{${tenant.id}}:q:${month()}:s:${made.body.id}`, 60_000);
    const patched = await admin(kg, 'PATCH', `/tenants/${tenant.id}/api-keys/${made.body.id}`, { quota: { sessionMinutesPerMonth: 1 } });
    expect(patched.status).toBe(200);
    // Control: a new session of the key is refused at once.
    const next = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/x/stream`, { headers: { 'x-api-key': made.body.key } });
    next.on('error', () => {}); // terminated after its refusal
    const status = await new Promise<number>((r) => next.once('unexpected-response', (_q, res) => r(res.statusCode ?? 0)).once('open', () => r(101)));
    next.terminate();
    expect(status).toBe(429);

    // The live one: today it stays open (no meter was made at its upgrade, and a key change does not make one).
    const outcome = await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 8_000))]);
    ws.terminate();
    expect(outcome).toEqual({ code: 1008, reason: 'quota_exceeded' });
  });
});
