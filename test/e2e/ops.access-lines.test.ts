import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { admin, createTenant, rawRequest, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// One access line per request, for every outcome an on-call engineer looks for: what the client was (its address
// as derived through trusted proxies, its user agent), what moved (bytes each way), what the upstream did (status,
// time), what keygate took, and what keygate decided with its code. Read from a real keygate's output.

let redis: RedisServer;
let upstream: Upstream;
let kg: KeygateProcess;
let wss: WebSocketServer;
const ANSWER = JSON.stringify({ ok: true, pad: 'x'.repeat(100) });

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startUpstream((req, res) => {
    if (req.url === '/v1/calls/reset') return req.socket.destroy();
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.statusCode = req.url === '/v1/calls/missing' ? 404 : 200;
      res.end(ANSWER);
    });
  });
  // WebSocket upstream: echoes; refuses /v1/voice/refused; hangs up itself on /v1/voice/hangup after one echo.
  wss = new WebSocketServer({ server: upstream.server, verifyClient: ({ req }, done) => done(req.url !== '/v1/voice/refused', 503) });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary });
      if (req.url === '/v1/voice/hangup') ws.close(4000, 'call over');
    });
  });
  // 127.0.0.1 (the test) is a trusted proxy: its X-Forwarded-For names the client.
  kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, config: { server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1', trustedProxies: ['127.0.0.1/32'] }, limits: { failedAttempts: { maxFailures: 1_000_000 } } } });
});
afterAll(async () => {
  await kg?.stop();
  wss?.close();
  await Promise.all([redis?.close(), upstream?.close()]);
});

type Line = Record<string, unknown>;
async function lineOf(requestId: string, msg = 'request'): Promise<Line> {
  for (let i = 0; i < 100; i++) {
    const found = kg.output().split('\n').find((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"requestId":"${requestId}"`));
    if (found) return JSON.parse(found) as Line;
    await new Promise((r) => setTimeout(r, 50)); // lines are written in batches (at most 100 ms apart)
  }
  throw new Error(`no access line for ${requestId}:\n${kg.output().slice(-2000)}`);
}

const send = (id: string, path: string, headers: Record<string, string>, method = 'GET', body?: string) =>
  rawRequest(`${kg.url}${path}`, { method, headers: { 'x-request-id': id, 'user-agent': 'voice-agent/2.1 (on-call test)', 'x-forwarded-for': '203.0.113.7', ...headers }, body });

const agent = 'voice-agent/2.1 (on-call test)';
/** Opens a WebSocket through keygate: the open socket, or the status of the answer that refused it. */
function upgrade(id: string, path: string, headers: Record<string, string>, options: { protocolVersion?: number } = {}): Promise<{ ws: WebSocket } | { status: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}${path}`, { headers: { 'x-request-id': id, 'user-agent': agent, 'x-forwarded-for': '203.0.113.7', ...headers }, ...options });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', reject);
  });
}
const opened = (r: { ws: WebSocket } | { status: number }): WebSocket => {
  if (!('ws' in r)) throw new Error(`refused with ${r.status}`);
  return r.ws;
};
/** Sends each message and waits for its echo. */
async function exchange(ws: WebSocket, messages: string[]): Promise<void> {
  for (const m of messages) {
    const echoed = new Promise((r) => ws.once('message', r));
    ws.send(m);
    await echoed;
  }
}
const sessionLines = (requestId: string): string[] => kg.output().split('\n').filter((l) => l.includes('"msg":"websocket session"') && l.includes(`"requestId":"${requestId}"`));
const closed = (ws: WebSocket) => new Promise<void>((r) => (ws.readyState === WebSocket.CLOSED ? r() : ws.once('close', () => r())));

// Before the HTTP lines' test, which ends by stopping and restarting Redis.
describe('WebSocket access lines', () => {
  it('write the upgrade\'s outcome at once, and a line with duration, messages and bytes each way when the session ends', async () => {
    const { key, tenant } = await createTenant(kg, { name: 'ws-lines' });
    const common = { clientIp: '203.0.113.7', userAgent: agent, level: 'info', service: 'keygate', msg: 'request', method: 'GET', upgrade: 'websocket', requestBytes: 0 };

    // Allowed: the 101 is written when it is answered, before the session ends.
    const ws = opened(await upgrade('ws-allowed', '/v1/voice/a/stream', { 'x-api-key': key }));
    const allowed = await lineOf('ws-allowed');
    expect(allowed).toMatchObject({ ...common, path: '/v1/voice/a/stream', status: 101, upstreamStatus: 101, responseBytes: 0, tenantId: tenant.id, decision: 'allowed', code: null });
    expect(allowed.keyId).toMatch(/^key_/);
    expect(allowed.upstreamMs).toBeGreaterThan(0);
    expect(allowed.keygateMs).toBeLessThanOrEqual(allowed.durationMs as number);
    expect(allowed).not.toHaveProperty('trace_id'); // tracing is off
    expect(sessionLines('ws-allowed')).toEqual([]); // none while the session lives
    await exchange(ws, ['0123456789', 'x'.repeat(20)]);
    ws.close(1000, 'bye');
    await closed(ws);
    const session = await lineOf('ws-allowed', 'websocket session');
    expect(session).toMatchObject({
      level: 'info',
      service: 'keygate',
      path: '/v1/voice/a/stream',
      clientIp: '203.0.113.7',
      tenantId: tenant.id,
      keyId: allowed.keyId,
      closeCode: 1000,
      closeReason: 'bye',
      closedBy: 'client',
      clientMessages: 2,
      clientBytes: 30,
      upstreamMessages: 2,
      upstreamBytes: 30,
    });
    expect(session.durationMs).toBeGreaterThan(0);
    expect(Date.parse(session.timestamp as string)).toBeGreaterThan(Date.now() - 60_000);

    // The upstream ends the session.
    const hangup = opened(await upgrade('ws-hangup', '/v1/voice/hangup', { 'x-api-key': key }));
    await exchange(hangup, ['hello']);
    await closed(hangup);
    expect(await lineOf('ws-hangup', 'websocket session')).toMatchObject({ closeCode: 4000, closeReason: 'call over', closedBy: 'upstream', clientMessages: 1, clientBytes: 5, upstreamMessages: 1, upstreamBytes: 5 });

    // keygate ends the session: the key is revoked while it lives.
    const made = (await self(kg, key, 'POST', '/api-keys', {})).body as { key: string; id: string };
    const revoked = opened(await upgrade('ws-revoked', '/v1/voice/a/stream', { 'x-api-key': made.key }));
    await exchange(revoked, ['abc']);
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.id}`)).status).toBe(204);
    await closed(revoked);
    expect(await lineOf('ws-revoked', 'websocket session')).toMatchObject({ keyId: made.id, closeCode: 1008, closeReason: 'key_revoked', closedBy: 'keygate', clientMessages: 1, clientBytes: 3 });

    // Refused by keygate, each with its code.
    expect(await upgrade('ws-401', '/v1/voice/a/stream', { 'x-api-key': 'kg_sk_nope' })).toEqual({ status: 401 });
    const refused = await lineOf('ws-401');
    expect(refused).toMatchObject({ ...common, status: 401, decision: 'refused', code: 'invalid_api_key', tenantId: null, upstreamStatus: null, upstreamMs: null });
    expect(refused.responseBytes).toBeGreaterThan(0);
    expect(refused.keygateMs).toBe(refused.durationMs);
    expect(await upgrade('ws-400', '/v1/voice/a/stream', { 'x-api-key': key }, { protocolVersion: 8 })).toEqual({ status: 400 });
    expect(await lineOf('ws-400')).toMatchObject({ ...common, status: 400, decision: 'refused', code: 'malformed_request', tenantId: null });
    expect(await upgrade('ws-403', '/keygate/v1/api-keys', { 'x-api-key': key })).toEqual({ status: 400 });
    expect(await lineOf('ws-403')).toMatchObject({ ...common, status: 400, decision: 'refused', code: 'malformed_request' });
    // Allowed by keygate, refused by the upstream: failed, with the upstream's status.
    expect(await upgrade('ws-502', '/v1/voice/refused', { 'x-api-key': key })).toEqual({ status: 502 });
    expect(await lineOf('ws-502')).toMatchObject({ ...common, status: 502, upstreamStatus: 503, decision: 'failed', code: 'upstream_unavailable', tenantId: tenant.id });

    for (const id of ['ws-401', 'ws-400', 'ws-403', 'ws-502']) expect(sessionLines(id), id).toEqual([]);
    expect(sessionLines('ws-allowed')).toHaveLength(1);
    expect(kg.output()).not.toContain(key.slice(-24));
  });
});

describe('access lines', () => {
  it('name the client, bytes, upstream and keygate times, and the decision with its code, for every outcome', async () => {
    const { key, tenant } = await createTenant(kg, { name: 'lines' });
    const reader = (await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] })).body as { key: string; id: string };
    const limited = (await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'], rateLimit: { requestsPerMinute: 1 } })).body as { key: string };
    const upload = JSON.stringify({ pad: 'u'.repeat(990) }); // 1000 bytes; POST /v1/calls reads JSON (an assistant rule)

    expect((await send('acc-allowed', '/v1/calls', { 'x-api-key': key, 'content-type': 'application/json', 'content-length': String(upload.length) }, 'POST', upload)).status).toBe(200);
    expect((await send('acc-upstream-404', '/v1/calls/missing', { 'x-api-key': key })).status).toBe(404);
    expect((await send('acc-401', '/v1/calls/1', { 'x-api-key': 'kg_sk_nope' })).status).toBe(401);
    expect((await send('acc-403', '/v1/calls', { 'x-api-key': reader.key, 'content-type': 'application/json' }, 'POST', '{"a":1}')).status).toBe(403);
    expect((await send('acc-400-target', '/v1/calls/%2e%2e/admin', { 'x-api-key': key })).status).toBe(400);
    expect((await send('acc-400-body', '/keygate/v1/api-keys', { 'x-api-key': key, 'content-type': 'application/json' }, 'POST', '{"permissions":"not-a-list"}')).status).toBe(400);
    expect((await send('acc-429-first', '/v1/calls/1', { 'x-api-key': limited.key })).status).toBe(200);
    expect((await send('acc-429', '/v1/calls/1', { 'x-api-key': limited.key })).status).toBe(429);
    expect((await send('acc-502', '/v1/calls/reset', { 'x-api-key': key })).status).toBe(502);

    const common = { clientIp: '203.0.113.7', userAgent: 'voice-agent/2.1 (on-call test)', level: 'info', service: 'keygate', msg: 'request' };
    const allowed = await lineOf('acc-allowed');
    expect(allowed).toMatchObject({ ...common, method: 'POST', path: '/v1/calls', status: 200, upstreamStatus: 200, requestBytes: 1000, responseBytes: ANSWER.length, tenantId: tenant.id, decision: 'allowed', code: null });
    expect(Date.parse(allowed.timestamp as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(allowed.upstreamMs).toBeGreaterThan(0);
    expect(allowed.keygateMs).toBeLessThanOrEqual(allowed.durationMs as number);
    expect(allowed).not.toHaveProperty('trace_id'); // tracing is off

    // The upstream's own 404 is its answer, not keygate's refusal.
    expect(await lineOf('acc-upstream-404')).toMatchObject({ ...common, status: 404, upstreamStatus: 404, decision: 'allowed', code: null, responseBytes: ANSWER.length });
    expect(await lineOf('acc-401')).toMatchObject({ ...common, status: 401, upstreamStatus: null, upstreamMs: null, decision: 'refused', code: 'invalid_api_key', tenantId: null });
    const refused403 = await lineOf('acc-403');
    expect(refused403).toMatchObject({ ...common, status: 403, decision: 'refused', code: 'insufficient_permissions', keyId: reader.id, requestBytes: 0, upstreamStatus: null });
    expect(refused403.responseBytes).toBeGreaterThan(0);
    expect(refused403.keygateMs).toBe(refused403.durationMs);
    expect(await lineOf('acc-400-target')).toMatchObject({ ...common, status: 400, decision: 'refused', code: 'malformed_request', path: '(refused)' });
    // A management request that passed the gate and failed validation: refused with its code, not "allowed".
    expect(await lineOf('acc-400-body')).toMatchObject({ ...common, status: 400, decision: 'refused', code: 'validation_error', path: '/keygate/v1/api-keys', requestBytes: 28 });
    expect(await lineOf('acc-429')).toMatchObject({ ...common, status: 429, decision: 'refused', code: 'rate_limited' });
    expect(await lineOf('acc-502')).toMatchObject({ ...common, status: 502, upstreamStatus: null, decision: 'failed', code: 'upstream_unavailable' });

    // The admin API (internal listener) names its refusals' codes too.
    const adminRefusal = await fetch(`${kg.opsUrl}/admin/v1/overview`, { headers: { authorization: 'Bearer not-the-admin-token-000000', 'x-request-id': 'acc-admin' } });
    const adminCode = ((await adminRefusal.json()) as { error: { code: string } }).error.code;
    expect(await lineOf('acc-admin')).toMatchObject({ listener: 'internal', status: 401, decision: 'management', code: adminCode, clientIp: '127.0.0.1' });

    // Last: the store goes away, and a key keygate has not cached cannot be checked.
    await redis.stop();
    const unknown = await unknownKey();
    expect((await send('acc-503b', '/v1/calls/1', { 'x-api-key': unknown })).status).toBe(503);
    expect(await lineOf('acc-503b')).toMatchObject({ ...common, status: 503, decision: 'failed', code: 'store_unavailable' });
    await redis.start(); // so that keygate's shutdown can flush what it counted

    // Nothing of a key on any line.
    for (const secret of [key, reader.key, limited.key, unknown]) expect(kg.output()).not.toContain(secret.slice(-24));
  });
});

/** A well-formed key (right prefix and checksum) that was never issued: keygate must ask the store about it. */
async function unknownKey(): Promise<string> {
  const { createKeyFormat } = await import('../../src/keys/format.ts');
  const { configSchema } = await import('../../src/config/schema.ts');
  const { keys } = configSchema.parse({});
  return createKeyFormat({ private: keys.privatePrefix, public: keys.publicPrefix }).generate('private');
}
