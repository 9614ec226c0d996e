import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ADMIN_TOKEN, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { admin, call, createTenant, self } from '../helpers/api.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { openWebSocket } from '../helpers/ws-raw.ts';

// Attacks on session tokens from a client that holds a token, a narrow key, or both: credentials mixed across
// the places keygate reads them, replays in parallel across two replicas, doors a token must not open, header
// injection through metadata. What the upstream receives is recorded and searched for any credential.

const SIGNING = 'kid1:a-token-signing-secret-of-32-chars-or-more';

interface Seen {
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

describe('session tokens under attack (two replicas on Redis)', () => {
  let redis: RedisServer;
  let upstream: WebSocketServer;
  let a!: KeygateProcess;
  let b!: KeygateProcess;
  const seen: Seen[] = [];

  beforeAll(async () => {
    upstream = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (offered) => (offered.has('voice.v1') ? 'voice.v1' : false) });
    await new Promise((r) => upstream.once('listening', r));
    upstream.on('connection', (_ws, req) => seen.push({ url: req.url ?? '', headers: req.headers }));
    const server = (upstream as unknown as { _server: Server })._server;
    server.removeAllListeners('request');
    server.on('request', (req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    redis = await startRedis();
    const config = { websocket: { revalidateSeconds: 1 } };
    const env = { KEYGATE_TOKEN_SIGNING_KEYS: SIGNING };
    [a, b] = (await Promise.all([0, 1].map(() => startKeygate({ config, env, upstream: upstreamUrl, redisUrl: redis.url })))) as [KeygateProcess, KeygateProcess];
  }, 90_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    upstream?.close();
    await redis?.close();
  });

  async function backend() {
    const { tenant, key: root } = await createTenant(a, { name: 'attacked', plan: 'pro' });
    const made = await self(a, root, 'POST', '/api-keys', { name: 'backend', permissions: ['session-tokens:write', 'voice:connect', 'calls:read'] });
    expect(made.status).toBe(201);
    return { tenant, root, key: made.body.key as string, keyId: made.body.id as string };
  }
  const mint = async (key: string, body: Record<string, unknown> = {}) => {
    const r = await self(a, key, 'POST', '/session-tokens', body);
    expect(r.status).toBe(201);
    return r.body as { token: string; id: string };
  };

  const open = openWebSocket;
  const lastUpstream = (prefix: string) => seen.findLast((s) => s.url.startsWith(prefix))!;

  it('never forwards a key sent as ?token= (the name the session tokens use) to the upstream', async () => {
    const { key } = await backend();
    const r = await open(a, `/v1/voice/asst_1/stream?token=${key}&lang=en`);
    if ('ws' in r) r.ws.close();
    // `token` names a session token only; a key there is not read (nor would it be stripped before forwarding).
    expect(r).toEqual({ status: 401, code: 'missing_api_key' });
    expect(JSON.stringify(seen)).not.toContain(key);
  });

  it('never forwards a session token offered as a subprotocol when a key authenticated the upgrade', async () => {
    const { key } = await backend();
    const t = await mint(key, { maxSessions: 5 });
    for (const [path, headers] of [
      ['/v1/voice/asst_1/stream?k=1', { 'x-api-key': key }],
      [`/v1/voice/asst_1/stream?k=2&api_key=${key}`, {}],
    ] as const) {
      const r = await open(b, path, ['keygate.token', t.token, 'voice.v1'], headers);
      expect('ws' in r, path).toBe(true);
      if ('ws' in r) {
        expect(r.ws.protocol).toBe('voice.v1');
        r.ws.close();
      }
      const up = lastUpstream(path.slice(0, path.indexOf('&') < 0 ? undefined : path.indexOf('&')));
      expect(up.headers['sec-websocket-protocol']).toBe('voice.v1');
      expect(JSON.stringify(up)).not.toContain(t.token);
      expect(JSON.stringify(up)).not.toContain(key);
    }
  });

  it('strips every credential from the query whichever one authenticates (api_key with token, token twice, an escaped name)', async () => {
    const { key } = await backend();
    const t1 = await mint(key, { maxSessions: 5 });
    const t2 = await mint(key, { maxSessions: 5 });
    for (const [i, query] of [`api_key=${key}&token=${t1.token}`, `token=${t1.token}&token=${t2.token}`, `%74oken=${t1.token}&to%6Ben=${t2.token}`, `api%5Fkey=${key}&token=${t2.token}`].entries()) {
      const path = `/v1/voice/asst_1/stream?n=${i}&${query}`;
      const r = await open(a, path);
      expect('ws' in r, query).toBe(true);
      if ('ws' in r) r.ws.close();
      const up = lastUpstream(`/v1/voice/asst_1/stream?n=${i}`);
      expect(up.url, query).toBe(`/v1/voice/asst_1/stream?n=${i}`);
    }
  });

  it('opens exactly one session for a single-use token replayed 50 times at once across two replicas', async () => {
    const { key } = await backend();
    const t = await mint(key, { ttlSeconds: 120 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => open(i % 2 ? a : b, `/v1/voice/asst_1/stream?token=${t.token}`)));
    const opened = results.filter((r) => 'ws' in r);
    expect(opened.length).toBe(1);
    for (const r of results) if (!('ws' in r)) expect(r).toEqual({ status: 401, code: 'invalid_api_key' });
    for (const r of opened) (r as { ws: WebSocket }).ws.close();
  });

  it('is refused by the admin API and by every management write, and reading its own status spends no use', async () => {
    const { tenant, key } = await backend();
    const t = await mint(key, { maxUses: 1 });
    const asBearer = (url: string, method = 'GET') => call<any>(url, { method, headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: method === 'GET' || method === 'HEAD' ? undefined : '{}' });
    expect((await asBearer(`${a.opsUrl}/admin/v1/tenants`)).status).toBe(401);
    expect((await asBearer(`${a.opsUrl}/admin/v1/tenants/${tenant.id}/session-tokens`, 'POST')).status).toBe(401);
    for (const [method, path] of [['POST', '/api-keys'], ['PATCH', '/tenants/me'], ['POST', '/session-tokens'], ['GET', '/session-tokens/current/../../api-keys'], ['HEAD', '/session-tokens/current']] as const) {
      const r = await asBearer(`${a.url}/keygate/v1${path}`, method);
      expect(r.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
    }
    for (let i = 0; i < 3; i++) expect((await asBearer(`${b.url}/keygate/v1/session-tokens/current`)).status).toBe(200);
    expect((await asBearer(`${b.url}/v1/calls/1`)).status).toBe(200);
    expect((await asBearer(`${a.url}/v1/calls/1`)).status).toBe(401);
  });

  it('follows its key: disabled, expired or its tenant suspended, the token is refused with the key\'s reason', async () => {
    const { tenant, key, keyId, root } = await backend();
    const t = await mint(key, { ttlSeconds: 600, maxSessions: 5 });
    const use = (kg: KeygateProcess) => call<any>(`${kg.url}/v1/calls/1`, { headers: { authorization: `Bearer ${t.token}` } });
    expect((await use(b)).status).toBe(200);
    expect((await self(a, root, 'PATCH', `/api-keys/${keyId}`, { isActive: false })).status).toBe(200);
    await expect.poll(async () => (await use(b)).body.error?.code).toBe('key_disabled');
    expect((await self(a, root, 'PATCH', `/api-keys/${keyId}`, { isActive: true, expiresAt: new Date(Date.now() + 1500).toISOString() })).status).toBe(200);
    await expect.poll(async () => (await use(b)).body.error?.code, { timeout: 10_000 }).toBe('key_expired');
    const other = await backend();
    const t2 = await mint(other.key, { ttlSeconds: 600 });
    expect((await admin(a, 'PATCH', `/tenants/${other.tenant.id}`, { status: 'suspended' })).status).toBe(200);
    await expect.poll(async () => (await call<any>(`${b.url}/v1/calls/1`, { headers: { authorization: `Bearer ${t2.token}` } })).body.error?.code).toBe('tenant_suspended');
    expect(tenant.id).not.toBe(other.tenant.id);
  });

  it('forwards hostile metadata as one ASCII header: no CR/LF injection, no second header', async () => {
    const { key } = await backend();
    const t = await mint(key, { metadata: { note: 'a\r\nX-Injected: 1\r\n\r\nbody', name: 'Zoë\u2028\u0000' } });
    const r = await call<any>(`${b.url}/v1/calls/1`, { headers: { authorization: `Bearer ${t.token}` } });
    expect(r.status).toBe(200);
    const h = r.body.headers;
    expect(h['x-injected']).toBeUndefined();
    expect(h['x-session-token-metadata']).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(h['x-session-token-metadata'])).toEqual({ note: 'a\r\nX-Injected: 1\r\n\r\nbody', name: 'Zoë\u2028\u0000' });
    expect(ADMIN_TOKEN).not.toBe(t.token);
  });
});
