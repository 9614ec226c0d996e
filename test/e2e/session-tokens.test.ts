import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { admin, call, createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startRedisCluster, type RedisTopology } from '../helpers/redis-topologies.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// Session tokens end to end: a backend mints a short-lived token with its key, a client uses it over HTTP and
// WebSocket (query and subprotocol forms), everything it does is charged to the minting key, and it dies with
// the key. On the embedded store, standalone Redis and a six-node Cluster with two replicas (minted on one,
// used on the other).

const SIGNING = 'kid1:a-token-signing-secret-of-32-chars-or-more';

interface Seen {
  url: string;
  headers: Record<string, string | string[] | undefined>;
  protocol?: string;
}

for (const topology of ['memory', 'redis', 'cluster'] as const) {
  describe(`session tokens (${topology})`, () => {
    let redis: RedisServer | null = null;
    let cluster: RedisTopology | null = null;
    let upstream: WebSocketServer;
    let a!: KeygateProcess;
    let b!: KeygateProcess;
    const seen: Seen[] = [];

    beforeAll(async () => {
      // One server speaks HTTP (echoing what it saw) and WebSocket (echoing frames); it records both.
      upstream = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (offered) => (offered.has('voice.v1') ? 'voice.v1' : false) });
      await new Promise((r) => upstream.once('listening', r));
      upstream.on('connection', (ws, req) => {
        seen.push({ url: req.url ?? '', headers: req.headers, protocol: ws.protocol });
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      // Plain HTTP on the same port: ws's server answers 426 to non-upgrades, so wrap its server's request handler.
      const server = (upstream as unknown as { _server: Server })._server;
      server.removeAllListeners('request');
      server.on('request', (req, res) => {
        seen.push({ url: req.url ?? '', headers: req.headers });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, headers: req.headers }));
      });
      const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
      const config: Record<string, unknown> = { usage: { flushIntervalSeconds: 0.2, lastUsedFlushSeconds: 1 }, websocket: { revalidateSeconds: 1 } };
      if (topology === 'memory') {
        a = await startKeygate({ config, upstream: upstreamUrl });
        b = a;
        return;
      }
      const env = { KEYGATE_TOKEN_SIGNING_KEYS: SIGNING };
      if (topology === 'redis') {
        redis = await startRedis();
        [a, b] = (await Promise.all([0, 1].map(() => startKeygate({ config, env, upstream: upstreamUrl, redisUrl: redis!.url })))) as [KeygateProcess, KeygateProcess];
      } else {
        cluster = await startRedisCluster();
        [a, b] = (await Promise.all([0, 1].map(() => startKeygate({ config: { ...config, redis: cluster!.config }, env, upstream: upstreamUrl, redisUrl: null })))) as [KeygateProcess, KeygateProcess];
      }
    }, 90_000);

    afterAll(async () => {
      await Promise.all([a?.stop(), b !== a ? b?.stop() : null]);
      upstream?.close();
      await Promise.all([redis?.close(), cluster?.close()]);
    });

    /** A tenant, and a backend key of it that may mint (narrowed, so that tokens can be tried wider than it). */
    async function backend(extra: Record<string, unknown> = {}) {
      const { tenant, key: root } = await createTenant(a, { name: `voice-${topology}`, plan: 'pro' });
      const made = await self(a, root, 'POST', '/api-keys', {
        name: 'backend',
        permissions: ['session-tokens:write', 'voice:connect', 'calls:read', 'usage:read'],
        allowedAssistants: ['asst_1', 'asst_2'],
        ...extra,
      });
      expect(made.status).toBe(201);
      return { tenant, root, key: made.body.key as string, keyId: made.body.id as string };
    }

    const mint = (key: string, body: Record<string, unknown> = {}, kg = a) => self(kg, key, 'POST', '/session-tokens', body);
    const bearer = (kg: KeygateProcess, token: string, path: string, headers: Record<string, string> = {}) =>
      call<any>(`${kg.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

    function open(kg: KeygateProcess, path: string, protocols: string[] = []) {
      const ws = new WebSocket(`ws://127.0.0.1:${kg.port}${path}`, protocols);
      const frames: Buffer[] = [];
      ws.on('message', (d) => frames.push(d as Buffer));
      const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
      const opened = new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body) })));
        });
        ws.once('error', reject);
      });
      opened.catch(() => {});
      return { ws, frames, opened, closed };
    }
    const refusedWith = (s: ReturnType<typeof open>) => s.opened.then(() => { throw new Error('opened'); }, (e: { status: number; body: any }) => ({ status: e.status, code: e.body.error.code }));

    it('mints a narrowed token that the upstream sees as a session of the minting key, never the token itself', async () => {
      const { tenant, keyId, key } = await backend();
      const minted = await mint(key, { ttlSeconds: 120, permissions: ['calls:read'], metadata: { userId: 'u_42', name: 'Zoë' } });
      expect(minted.status).toBe(201);
      const t = minted.body;
      expect(t.token).toMatch(/^kg_st_/);
      expect(t).toMatchObject({ tenantId: tenant.id, keyId, permissions: ['calls:read'], maxSessions: 1, maxUses: null });
      expect(Date.parse(t.expiresAt) - Date.now()).toBeGreaterThan(100_000);
      // Used on the other replica (on the embedded store, the same one).
      const r = await bearer(b, t.token, '/v1/calls/1?x=1');
      expect(r.status).toBe(200);
      const h = r.body.headers;
      expect(h['x-api-key-type']).toBe('session');
      expect(h['x-api-key-id']).toBe(keyId);
      expect(h['x-tenant-id']).toBe(tenant.id);
      expect(h['x-api-key-permissions']).toBe('calls:read');
      expect(h['x-session-token-id']).toBe(t.id);
      expect(JSON.parse(h['x-session-token-metadata'])).toEqual({ userId: 'u_42', name: 'Zoë' });
      expect(JSON.stringify(r.body)).not.toContain(t.token);
      // Narrowed: voice:connect is the key's, not the token's.
      expect((await bearer(b, t.token, '/v1/voice/asst_1/stream')).body.error.code).toBe('insufficient_permissions');
      // Its own status, and nothing else of the management API.
      const status = await call<any>(`${b.url}/keygate/v1/session-tokens/current`, { headers: { authorization: `Bearer ${t.token}` } });
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ id: t.id, keyId, permissions: ['calls:read'] });
      for (const path of ['/tenants/me', '/api-keys', '/usage']) {
        const refused = await call<any>(`${b.url}/keygate/v1${path}`, { headers: { authorization: `Bearer ${t.token}` } });
        expect(refused.status, path).toBe(403);
      }
      const mintAgain = await call<any>(`${b.url}/keygate/v1/session-tokens`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: '{}' });
      expect(mintAgain.status).toBe(403);
    });

    it('never mints wider than the key, from a key without the permission, or from a public key', async () => {
      const { key, root } = await backend();
      expect((await mint(key, { permissions: ['calls:write'] })).body.error.code).toBe('insufficient_permissions');
      expect((await mint(key, { allowedAssistants: ['asst_9'] })).body.error.code).toBe('insufficient_permissions');
      expect((await mint(key, { ttlSeconds: 3601 })).body.error.code).toBe('validation_error');
      expect((await mint(key, { ttlSeconds: 5 })).body.error.code).toBe('validation_error');
      expect((await mint(key, { metadata: { blob: 'x'.repeat(600) } })).body.error.code).toBe('validation_error');
      expect((await mint(key, { nope: 1 })).body.error.code).toBe('validation_error');
      const narrow = await self(a, root, 'POST', '/api-keys', { permissions: ['calls:read'] });
      expect((await mint(narrow.body.key)).body.error.code).toBe('insufficient_permissions');
      const pub = await self(a, root, 'POST', '/api-keys', { keyType: 'public', permissions: ['voice:connect'], allowedOrigins: ['https://app.example.com'] });
      expect(pub.status).toBe(201);
      const fromPublic = await call<any>(`${a.url}/keygate/v1/session-tokens`, { method: 'POST', headers: { 'x-api-key': pub.body.key, origin: 'https://app.example.com', 'content-type': 'application/json' }, body: '{}' });
      expect(fromPublic.body.error.code).toBe('public_key_not_allowed');
      // A public key cannot be given the minting permission either.
      expect((await self(a, root, 'POST', '/api-keys', { keyType: 'public', permissions: ['session-tokens:write'], allowedOrigins: ['https://app.example.com'] })).status).toBe(400);
    });

    it('opens one voice session per token by default (query and subprotocol forms), streams both ways, and a replay opens nothing', async () => {
      const { key } = await backend();
      const q = (await mint(key, { assistantId: 'asst_1' })).body;
      const s = open(b, `/v1/voice/asst_1/stream?token=${q.token}&lang=en`);
      await s.opened;
      const frame = Buffer.alloc(320, 7);
      s.ws.send(frame);
      await expect.poll(() => s.frames.length).toBe(1);
      expect(s.frames[0]).toEqual(frame);
      const up = seen.findLast((x) => x.url.startsWith('/v1/voice/asst_1/stream'))!;
      expect(up.url).toBe('/v1/voice/asst_1/stream?lang=en');
      expect(up.headers['x-api-key-type']).toBe('session');
      expect(up.headers['x-session-token-id']).toBe(q.id);
      // A replay, on either replica: refused.
      expect(await refusedWith(open(a, `/v1/voice/asst_1/stream?token=${q.token}`))).toEqual({ status: 401, code: 'invalid_api_key' });
      // Another assistant than the token's: refused.
      const other = (await mint(key, { assistantId: 'asst_1' })).body;
      expect((await refusedWith(open(a, `/v1/voice/asst_2/stream?token=${other.token}`))).code).toBe('assistant_not_allowed');
      s.ws.close();

      // The subprotocol form, as a browser sends it: the token never reaches the upstream, the answer is right.
      const p = (await mint(key, { assistantId: 'asst_1', maxSessions: 2 })).body;
      const withVoice = open(a, '/v1/voice/asst_1/stream', ['keygate.token', p.token, 'voice.v1']);
      await withVoice.opened;
      expect(withVoice.ws.protocol).toBe('voice.v1');
      const upV = seen.findLast((x) => x.url === '/v1/voice/asst_1/stream')!;
      expect(upV.headers['sec-websocket-protocol']).toBe('voice.v1');
      expect(JSON.stringify(upV.headers)).not.toContain(p.token);
      const bare = open(b, '/v1/voice/asst_1/stream', ['keygate.token', p.token]);
      await bare.opened;
      expect(bare.ws.protocol).toBe('keygate.token');
      // maxSessions 2: the third is refused.
      expect((await refusedWith(open(a, '/v1/voice/asst_1/stream', ['keygate.token', p.token]))).code).toBe('invalid_api_key');
      withVoice.ws.close();
      bare.ws.close();
    });

    it('counts maxUses across replicas and charges every request to the minting key and its tenant', async () => {
      const { key, keyId, root } = await backend();
      const t = (await mint(key, { maxUses: 3 })).body;
      const statuses = [];
      for (const kg of [a, b, a, b]) statuses.push((await bearer(kg, t.token, '/v1/calls/1')).status);
      expect(statuses).toEqual([200, 200, 200, 401]);
      const today = new Date().toISOString().slice(0, 10);
      await expect
        .poll(async () => (await self(a, root, 'GET', `/usage?keyId=${keyId}&granularity=day&from=${today}&to=${today}`)).body.data[0]?.allowed ?? 0, { timeout: 10_000 })
        .toBe(3);
    });

    it('dies with its key: narrowed below it, then revoked — live sessions closed 1008, nothing opens after', async () => {
      const { key, keyId, root } = await backend();
      const wide = (await mint(key, { ttlSeconds: 600, maxSessions: 5 })).body;
      const narrowed = (await mint(key, { ttlSeconds: 600, permissions: ['calls:read'], maxSessions: 5 })).body;
      expect((await bearer(b, narrowed.token, '/v1/calls/1')).status).toBe(200);
      const live = open(b, `/v1/voice/asst_1/stream?token=${wide.token}`);
      await live.opened;
      // The key loses calls:read: the token narrowed to it dies; the other follows the key and keeps its session.
      expect((await self(a, root, 'PATCH', `/api-keys/${keyId}`, { permissions: ['session-tokens:write', 'voice:connect'] })).status).toBe(200);
      await expect.poll(async () => (await bearer(b, narrowed.token, '/v1/calls/1')).status).toBe(401);
      expect((await bearer(b, wide.token, '/v1/calls/1')).body.error.code).toBe('insufficient_permissions');
      expect((await bearer(b, wide.token, '/v1/voice/asst_1/stream')).status).toBe(200);
      expect(live.ws.readyState).toBe(WebSocket.OPEN);
      // Revoked: the live session closes within 2 s, and nothing opens after.
      const revokedAt = Date.now();
      expect((await self(a, root, 'DELETE', `/api-keys/${keyId}`)).status).toBe(204);
      const closed = await live.closed;
      expect(closed.code).toBe(1008);
      expect(closed.at - revokedAt).toBeLessThan(2_000);
      expect((await bearer(a, wide.token, '/v1/calls/1')).status).toBe(401);
      expect(await refusedWith(open(a, `/v1/voice/asst_1/stream?token=${wide.token}`))).toEqual({ status: 401, code: 'invalid_api_key' });
    });

    it('stays dead when its key is disabled and enabled again; a token minted after works', async () => {
      const { key, keyId, root } = await backend();
      const before = (await mint(key, { ttlSeconds: 600, maxSessions: 5 })).body;
      expect((await bearer(b, before.token, '/v1/calls/1')).status).toBe(200);
      expect((await self(a, root, 'PATCH', `/api-keys/${keyId}`, { isActive: false })).status).toBe(200);
      await expect.poll(async () => (await bearer(b, before.token, '/v1/calls/1')).body.error?.code).toBe('key_disabled');
      expect((await self(a, root, 'PATCH', `/api-keys/${keyId}`, { isActive: true })).status).toBe(200);
      // The next second: a token's issue time has a resolution of one second.
      await new Promise((r) => setTimeout(r, 1_100));
      const after = (await mint(key, { ttlSeconds: 600 })).body;
      await expect.poll(async () => (await bearer(b, after.token, '/v1/calls/1')).status).toBe(200);
      expect((await bearer(b, before.token, '/v1/calls/1')).status).toBe(401);
      expect((await bearer(a, before.token, '/v1/calls/1')).status).toBe(401);
    });

    it('never outlives the key value that minted it: a rotation takes the tokens of the value it rotates away', async () => {
      const { key, keyId, root } = await backend();
      const get = async (token: string, kg = b) => (await bearer(kg, token, '/v1/calls/1')).status;
      const first = (await mint(key, { ttlSeconds: 600, maxSessions: 5 })).body;
      expect(await get(first.token)).toBe(200);
      // Rotated with no grace period: the old value and every token minted before stop at once.
      const r1 = await self(a, root, 'POST', `/api-keys/${keyId}/rotate`, { gracePeriodSeconds: 0 });
      expect(r1.status).toBe(201);
      await expect.poll(() => get(first.token)).toBe(401);
      expect(await get(first.token, a)).toBe(401);
      const value1 = r1.body.key as string;
      const second = (await mint(value1, { ttlSeconds: 600, maxSessions: 5 })).body;
      await expect.poll(() => get(second.token)).toBe(200);
      const live = open(b, `/v1/voice/asst_1/stream?token=${second.token}`);
      await live.opened;

      // Rotated with a grace period: the previous value, and the tokens minted before, work until its end.
      const GRACE = 6;
      const rotatedAt = Date.now();
      const r2 = await self(a, root, 'POST', `/api-keys/${keyId}/rotate`, { gracePeriodSeconds: GRACE });
      expect(r2.status).toBe(201);
      const graceEnd = rotatedAt + GRACE * 1000;
      // A token minted with the previous value in its grace period expires with it, whatever ttl was asked for.
      const during = await mint(value1, { ttlSeconds: 600, maxSessions: 5 });
      expect(during.status).toBe(201);
      expect(Date.parse(during.body.expiresAt)).toBeLessThanOrEqual(graceEnd + 1_000);
      const third = (await mint(r2.body.key as string, { ttlSeconds: 600 })).body;
      expect(Date.parse(third.expiresAt)).toBeGreaterThan(Date.now() + 500_000);
      if (Date.now() < graceEnd - 1_000) {
        expect(await get(second.token)).toBe(200);
        expect(live.ws.readyState).toBe(WebSocket.OPEN);
      }
      // At its end: the live session opened with a token of the previous value closes, and its tokens stop.
      const closed = await live.closed;
      expect(closed.code).toBe(1008);
      expect(closed.at).toBeGreaterThanOrEqual(graceEnd - 1_000);
      for (const t of [second.token, during.body.token as string]) {
        expect(await get(t)).toBe(401);
        expect(await get(t, a)).toBe(401);
      }
      expect(await refusedWith(open(b, `/v1/voice/asst_1/stream?token=${second.token}`))).toEqual({ status: 401, code: 'invalid_api_key' });
      expect(await get(third.token)).toBe(200);
    });

    // A mint with the old value on a replica the rotation's event has not reached yet (or authenticated just
    // before it arrived) is judged on that replica's cached record: before tokens named the value that minted
    // them, such a token had no end and lived its whole ttl (15 of 42 alive on Cluster, 1 of 26 on a
    // redis-server). Now it names its value, and works only while that value is one of its key's values.
    it('a mint racing a rotation (no grace) never hands out a token that outlives the value rotated away', async () => {
      const { key, keyId, root } = await backend();
      const get = async (token: string, kg: KeygateProcess) => (await bearer(kg, token, '/v1/calls/1')).status;
      expect((await mint(key, {}, b)).status).toBe(201);
      // Mints with the old value on the other replica, spread over the moment the rotation lands.
      const mints = Array.from({ length: 120 }, (_, i) => new Promise((r) => setTimeout(r, i * 2)).then(() => mint(key, { ttlSeconds: 600, maxSessions: 5 }, b)));
      await new Promise((r) => setTimeout(r, 120));
      const rotatedAt = Date.now();
      expect((await self(a, root, 'POST', `/api-keys/${keyId}/rotate`, { gracePeriodSeconds: 0 })).status).toBe(201);
      const minted = (await Promise.all(mints)).filter((m) => m.status === 201).map((m) => m.body as { token: string; issuedAt: string });
      expect(minted.length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 1_500));
      const alive = [];
      for (const t of minted) if ((await get(t.token, b)) === 200 || (await get(t.token, a)) === 200) alive.push(t.issuedAt);
      expect({ alive, of: minted.length, rotatedAt: new Date(rotatedAt).toISOString() }).toEqual({ alive: [], of: minted.length, rotatedAt: new Date(rotatedAt).toISOString() });
    });

    it('closes a live session whose token the key no longer covers', async () => {
      const { key, keyId, root } = await backend();
      const t = (await mint(key, { ttlSeconds: 600, permissions: ['voice:connect'] })).body;
      const live = open(b, `/v1/voice/asst_1/stream?token=${t.token}`);
      await live.opened;
      expect((await self(a, root, 'PATCH', `/api-keys/${keyId}`, { permissions: ['session-tokens:write', 'calls:read'] })).status).toBe(200);
      expect((await live.closed).code).toBe(1008);
    });

    it('mints from the admin API for one of the tenant\'s keys', async () => {
      const { tenant, keyId } = await backend();
      const r = await admin(a, 'POST', `/tenants/${tenant.id}/session-tokens`, { keyId, ttlSeconds: 30, permissions: ['calls:read'] });
      expect(r.status).toBe(201);
      expect(r.body.keyId).toBe(keyId);
      expect((await bearer(b, r.body.token, '/v1/calls/1')).status).toBe(200);
      expect((await admin(a, 'POST', `/tenants/${tenant.id}/session-tokens`, { keyId: 'key_01JABCDEFGHJKMNPQRSTVWXYZ0' })).status).toBe(404);
      // The audit log has the mints collapsed into one entry per key and minute (written at the minute's end).
      const audit = await admin(a, 'GET', `/tenants/${tenant.id}/audit-log`);
      expect(audit.body.data.filter((e: any) => e.action === 'session_token.minted').length).toBeLessThanOrEqual(1);
    });
  });
}

describe('session tokens refused without a store call', () => {
  let redis: RedisServer;
  let http: Upstream;
  let kg: KeygateProcess;
  beforeAll(async () => {
    [redis, http] = await Promise.all([startRedis(), startUpstream()]);
    kg = await startKeygate({ env: { KEYGATE_TOKEN_SIGNING_KEYS: SIGNING }, redisUrl: redis.url, upstream: http.url });
  }, 30_000);
  afterAll(async () => {
    // Its store is gone: nothing to flush to, so no graceful stop to wait for.
    await kg?.stop('SIGKILL');
    await http?.close();
    await redis?.close();
  });

  it('answers a forged, truncated, re-signed or expired token 401 invalid_api_key while the store is down', async () => {
    const { key } = await createTenant(kg, { name: 'forgery' });
    const made = (await self(kg, key, 'POST', '/api-keys', { permissions: ['session-tokens:write', 'calls:read'] })).body;
    const token: string = (await self(kg, made.key, 'POST', '/session-tokens', {})).body.token;
    const { createHmac } = await import('node:crypto');
    const { checksum } = await import('../../src/keys/format.ts');
    const [payload, kid] = token.slice(6, -7).split('.') as [string, string];
    const wire = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const sign = (w: object, k: string, secret: string) => {
      const signed = `kg_st_${Buffer.from(JSON.stringify(w)).toString('base64url')}.${k}`;
      const body = `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}.`;
      return body + checksum(body);
    };
    const secret = SIGNING.slice(SIGNING.indexOf(':') + 1);
    const forged = {
      truncated: token.slice(0, -3),
      tampered: sign({ ...wire, p: ['*'] }, kid, 'not-the-secret-0123456789abcdef0123456'),
      otherKid: sign(wire, 'kid2', secret),
      expired: sign({ ...wire, iat: wire.iat - 120, exp: wire.iat - 60 }, kid, secret),
    };
    // The real token works, and caches its key; then the store goes away.
    expect((await call<any>(`${kg.url}/v1/calls/1`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    await redis.close();
    for (const [name, value] of Object.entries(forged)) {
      const r = await call<any>(`${kg.url}/v1/calls/1`, { headers: { authorization: `Bearer ${value}` } });
      expect([name, r.status, r.body.error.code]).toEqual([name, 401, 'invalid_api_key']);
    }
    // The store is really down: a well-formed key it has never seen cannot be decided.
    const unknown = await call<any>(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': `${made.key.slice(0, 10)}${'A'.repeat(made.key.length - 10)}` } });
    expect([401, 503]).toContain(unknown.status);
  });
});

describe('session-token mints in the audit log', () => {
  let redis: RedisServer;
  afterAll(async () => {
    await redis?.close();
  });

  it('collapses into one entry per key and minute with a count, written at the latest when keygate stops', async () => {
    redis = await startRedis();
    const env = { KEYGATE_TOKEN_SIGNING_KEYS: SIGNING };
    const first = await startKeygate({ env, redisUrl: redis.url });
    const { tenant, key } = await createTenant(first, { name: 'audited', plan: 'pro' });
    const minter = (await self(first, key, 'POST', '/api-keys', { permissions: ['session-tokens:write', 'calls:read'] })).body;
    const minuteOf = () => Math.floor(Date.now() / 60_000);
    // Within one minute (waiting for the next one if this one is nearly over), so that one entry is expected.
    if (Date.now() % 60_000 > 45_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 100));
    const minute = minuteOf();
    for (let i = 0; i < 30; i++) expect((await self(first, minter.key, 'POST', '/session-tokens', {})).status).toBe(201);
    expect(minuteOf()).toBe(minute);
    expect(await first.stop()).toBe(0);
    const second = await startKeygate({ env, redisUrl: redis.url });
    try {
      const audit = (await admin(second, 'GET', `/tenants/${tenant.id}/audit-log?limit=100`)).body.data.filter((e: any) => e.action === 'session_token.minted');
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor: minter.id, keyId: minter.id, details: { count: 30, minute: new Date(minute * 60_000).toISOString() } });
    } finally {
      await second.stop();
    }
  }, 90_000);
});
