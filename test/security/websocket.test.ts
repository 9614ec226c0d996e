import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createTenant, proxied, self } from '../helpers/api.ts';
import { root, type KeygateProcess } from '../helpers/keygate.ts';
import { freePort } from '../helpers/ports.ts';
import { useServers } from '../helpers/servers.ts';

// WebSockets: the client's handshake is checked before the upstream is
// dialled; every failed dial gives back the session slot and the upstream socket; messages are capped by
// websocket.maxPayloadBytes (1009) and each direction is paused while the other side's buffer is full; a key
// change that removes what a live session needs closes it with 1008 within 2 s.

const servers = useServers();
const MAX = 64 * 1024;
const HASH = 'ab'.repeat(32);
const XFCC = `By=spiffe://mesh/keygate;Hash=${HASH};Subject="CN=dialer"`;

/** One connection the WebSocket upstream accepted. */
interface UpstreamConn {
  url: string;
  ws: WebSocket;
  received: number;
  closed: Promise<{ code: number; reason: string }>;
}

let upstreamServer: Server;
const upstreamSockets = new Set<Socket>();
let upstream: WebSocketServer;
let upstreamUrl: string;
/** Every request the upstream saw (accepted, refused or left hanging), by path. */
const dialled: string[] = [];
const conns: UpstreamConn[] = [];
/** Handshakes to `/held/` paths, each completed when the test calls it. */
const held: Array<() => void> = [];
let kg: KeygateProcess;
let embedded: KeygateProcess;
let unreachable: KeygateProcess;

beforeAll(async () => {
  // The voice backend: echoes, except `/refuse/` (403), `/hang/` (never answers the handshake), `/held/`
  // (answers it when the test says), `/slow/` (does not read), `/flood/` (sends what the client asks for) and
  // `/big/` (sends one frame over the cap).
  upstreamServer = createServer((_req, res) => res.end('plain HTTP'));
  upstreamServer.on('connection', (socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
  });
  upstream = new WebSocketServer({
    server: upstreamServer,
    maxPayload: 256 * 1024 * 1024,
    // Picks the client's last offer, so a proxy that answered with the first would be caught.
    handleProtocols: (offered) => [...offered].at(-1) ?? false,
    verifyClient: (info, done) => {
      const url = info.req.url ?? '';
      dialled.push(url);
      if (url.includes('/refuse/')) return done(false, 403);
      if (url.includes('/hang/')) return;
      if (url.includes('/held/')) return held.push(() => done(true));
      done(true);
    },
  });
  await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
  upstream.on('connection', (ws, req) => {
    const conn: UpstreamConn = {
      url: req.url ?? '',
      ws,
      received: 0,
      closed: new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() }))),
    };
    conns.push(conn);
    if (conn.url.includes('/slow/')) ws.pause();
    ws.on('message', (data: Buffer, isBinary) => {
      conn.received += data.length;
      if (conn.url.includes('/flood/')) {
        const [count, size] = data.toString().split(':').map(Number);
        for (let i = 0; i < count!; i++) ws.send(Buffer.alloc(size!, i % 251));
      } else if (conn.url.includes('/big/')) ws.send(Buffer.alloc(MAX + 1));
      else if (!conn.url.includes('/slow/')) ws.send(data, { binary: isBinary });
    });
  });
  upstreamUrl = `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`;
  const config = { websocket: { maxPayloadBytes: MAX }, upstream: { timeoutMs: 4_000 }, tls: { trustXfccFrom: ['127.0.0.1/32', '::1/128'] } };
  const env = { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml') };
  [kg, embedded, unreachable] = await Promise.all([
    servers.keygate({ upstream: upstreamUrl, config, env }),
    servers.keygate({ upstream: upstreamUrl, config, env, redisUrl: null }),
    servers.keygate({ upstream: `http://127.0.0.1:${await freePort()}`, config, env }),
  ]);
});
afterAll(async () => {
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise((r) => upstreamServer?.close(r));
});

/** A JSON body, or its text when it is not JSON (the assertions then say what came instead of the envelope). */
function parsed(body: string): any {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

function open(k: KeygateProcess, path: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${k.port}${path}`, { headers, maxPayload: 256 * 1024 * 1024 });
  const got = { bytes: 0, frames: [] as Buffer[] };
  ws.on('message', (data: Buffer) => {
    got.bytes += data.length;
    got.frames.push(data);
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: parsed(body) })));
    });
    ws.once('error', reject);
  });
  opened.catch(() => {});
  return { ws, got, opened, closed };
}

/** The status and JSON body of an upgrade keygate refused. */
async function refusal(session: ReturnType<typeof open>): Promise<{ status: number; body: any }> {
  try {
    await session.opened;
  } catch (err) {
    return err as never;
  }
  throw new Error('the upgrade was accepted');
}

/** Sends a hand-made upgrade request and reads the answer until keygate closes the connection. */
function rawUpgrade(k: KeygateProcess, head: string): Promise<{ status: number; head: string; body: any }> {
  return new Promise((resolve, reject) => {
    const socket = connect(k.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', reject);
    socket.on('close', () => {
      const [h = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1] ?? 0), head: h, body: parsed(body) });
    });
    socket.write(head);
  });
}

const upgradeHead = (method: string, target: string, key: string, fields: Record<string, string>) =>
  [`${method} ${target} HTTP/1.1`, 'Host: keygate', `X-API-Key: ${key}`, ...Object.entries(fields).map(([n, v]) => `${n}: ${v}`), '', ''].join('\r\n');

const GOOD = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };

/** A tenant and a key of it limited to one live session. */
async function oneSessionKey(k: KeygateProcess, name: string) {
  const { key } = await createTenant(k, { name, plan: 'pro' });
  const made = await self(k, key, 'POST', '/api-keys', { maxConcurrentConnections: 1 });
  expect(made.status).toBe(201);
  return made.body.key as string;
}

/** The key's one slot is free (or is freed at once): a session opens, and once closed, opens again. */
async function expectSlotFree(k: KeygateProcess, key: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await expect
      .poll(async () => {
        const s = open(k, '/v1/voice/asst_1/stream', { 'x-api-key': key });
        const ok = await s.opened.then(() => true, () => false);
        s.ws.close();
        await s.closed;
        return ok;
      }, { timeout: 2_000 })
      .toBe(true);
  }
}

/** The promise's value, or a failure naming what did not happen in time (rather than the test's timeout). */
function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe('the client handshake is checked before the upstream is dialled', () => {
  it('refuses a bad Sec-WebSocket-Key, a bad version, POST, and a bad subprotocol list with 400, dialling nothing and holding no slot', async () => {
    const key = await oneSessionKey(kg, 'ws-handshake');
    const cases: Array<[string, string, Record<string, string>]> = [
      ['GET', 'bad key', { ...GOOD, 'Sec-WebSocket-Key': 'not-a-key' }],
      ['GET', 'short key', { ...GOOD, 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZQ==' }],
      ['GET', 'version 8', { ...GOOD, 'Sec-WebSocket-Version': '8' }],
      ['GET', 'no version', { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': GOOD['Sec-WebSocket-Key'] }],
      ['POST', 'POST', { ...GOOD, 'Content-Length': '0' }],
      ['GET', 'bad subprotocols', { ...GOOD, 'Sec-WebSocket-Protocol': 'a,,b' }],
    ];
    for (const [method, what, fields] of cases) {
      const before = dialled.length;
      const r = await rawUpgrade(kg, upgradeHead(method, '/v1/voice/asst_1/stream', key, fields));
      expect({ what, status: r.status, code: r.body?.error?.code }).toEqual({ what, status: 400, code: 'malformed_request' });
      expect(r.head).toMatch(/content-type: application\/json/i);
      expect(r.body.error.requestId).toBeTruthy();
      expect({ what, dialled: dialled.length - before }).toEqual({ what, dialled: 0 });
    }
    await expectSlotFree(kg, key);
  });
});

describe('a failed dial gives back the session slot and the upstream socket', () => {
  it('answers 502/504 (never 503) for a dial that throws, is refused, times out or cannot connect, on Redis and the embedded store', async () => {
    for (const k of [kg, embedded]) {
      // A target the dial cannot be made to (a fragment makes `new WebSocket` throw); canonical-target checks
      // may refuse it first (400), but it is never a store outage and never keeps the slot.
      const key = await oneSessionKey(k, 'ws-dial-throw');
      for (const target of ['/v1/voice/asst_1#frag/stream', '/v1/voice/asst_1/stream#frag']) {
        const r = await rawUpgrade(k, upgradeHead('GET', target, key, GOOD));
        expect([`${r.status} ${r.body?.error?.code}`]).toEqual([expect.stringMatching(/^(400 malformed_request|404 route_not_allowed|502 upstream_unavailable)$/)]);
      }
      expect(k.output()).not.toContain('key store unavailable');
      await expectSlotFree(k, key);

      const refusedKey = await oneSessionKey(k, 'ws-dial-refused');
      const refused = await refusal(open(k, '/v1/voice/refuse/stream', { 'x-api-key': refusedKey }));
      expect([refused.status, refused.body.error.code]).toEqual([502, 'upstream_unavailable']);
      await expectSlotFree(k, refusedKey);

      const hungKey = await oneSessionKey(k, 'ws-dial-timeout');
      const hung = await refusal(open(k, '/v1/voice/hang/stream', { 'x-api-key': hungKey }));
      expect([hung.status, hung.body.error.code]).toEqual([504, 'upstream_timeout']);
      await expectSlotFree(k, hungKey);

      // The client leaves while keygate waits for the upstream.
      const leftKey = await oneSessionKey(k, 'ws-dial-left');
      const before = dialled.length;
      const leaving = open(k, '/v1/voice/hang/stream', { 'x-api-key': leftKey });
      await expect.poll(() => dialled.length).toBe(before + 1);
      leaving.ws.terminate();
      await expectSlotFree(k, leftKey);
    }
    const key = await oneSessionKey(unreachable, 'ws-dial-unreachable');
    for (let i = 0; i < 2; i++) {
      const r = await refusal(open(unreachable, '/v1/voice/asst_1/stream', { 'x-api-key': key }));
      expect([r.status, r.body.error.code]).toEqual([502, 'upstream_unavailable']);
    }
  });
});

describe('the session', () => {
  it('tells the client the subprotocol the upstream chose, and none when it chose none', async () => {
    const { key } = await createTenant(kg, { name: 'ws-protocol', plan: 'pro' });
    const s = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/asst_1/stream`, ['voice.v1', 'voice.v2'], { headers: { 'x-api-key': key } });
    await new Promise((r, j) => s.once('open', r).once('error', j));
    expect(s.protocol).toBe('voice.v2');
    expect(conns.at(-1)!.ws.protocol).toBe('voice.v2');
    s.close();
    const plain = open(kg, '/v1/voice/asst_1/stream', { 'x-api-key': key });
    await plain.opened;
    expect(plain.ws.protocol).toBe('');
    plain.ws.close();
  });
});

describe('websocket.maxPayloadBytes', () => {
  it('relays messages up to the cap both ways and closes both sides with 1009 for one over it, from either side', async () => {
    const { key } = await createTenant(kg, { name: 'ws-payload', plan: 'pro' });
    const s = open(kg, '/v1/voice/asst_1/stream', { 'x-api-key': key });
    await s.opened;
    const conn = conns.at(-1)!;
    s.ws.send(Buffer.alloc(MAX, 7));
    await expect.poll(() => s.got.bytes).toBe(MAX);
    expect(s.got.frames[0]!.equals(Buffer.alloc(MAX, 7))).toBe(true);
    s.ws.send(Buffer.alloc(MAX + 1));
    expect((await within('client closed', 5_000, s.closed)).code).toBe(1009);
    expect((await within('upstream closed', 5_000, conn.closed)).code).toBe(1009);

    const b = open(kg, '/v1/voice/big/stream', { 'x-api-key': key });
    await b.opened;
    const bigConn = conns.at(-1)!;
    b.ws.send('send me too much');
    expect((await within('upstream closed', 5_000, bigConn.closed)).code).toBe(1009);
    expect((await within('client closed', 5_000, b.closed)).code).toBe(1009);
    expect(b.got.bytes).toBe(0);
  });
});

describe('backpressure', () => {
  // Bytes that have left the sender's process but not reached the receiver's sit in four kernel socket
  // buffers and in keygate. Without backpressure keygate reads everything the sender writes, so that grows to
  // all of it; with it keygate stops reading at about one cap's worth, and the sender keeps the rest.
  const FRAME = MAX - 1024;
  const FRAMES = 1024; // ~63 MiB, far more than the kernel holds between the two sockets
  const TOTAL = FRAME * FRAMES;
  const BOUND = TOTAL / 2;

  /** Checks, for a while, that no more than BOUND bytes are between sender and receiver. */
  async function expectBounded(inFlight: () => number): Promise<number> {
    let peak = 0;
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 50));
      peak = Math.max(peak, inFlight());
      expect(peak).toBeLessThan(BOUND);
    }
    return peak;
  }

  it('stops reading the client while the upstream does not read, and delivers everything once it does', async () => {
    const { key } = await createTenant(kg, { name: 'ws-bp-up', plan: 'pro' });
    const s = open(kg, '/v1/voice/slow/stream', { 'x-api-key': key });
    await s.opened;
    const conn = conns.at(-1)!;
    for (let i = 0; i < FRAMES; i++) s.ws.send(Buffer.alloc(FRAME, i % 251));
    const peak = await expectBounded(() => TOTAL - s.ws.bufferedAmount - conn.received);
    console.log(`client → upstream: at most ${peak} bytes in flight of ${TOTAL}`);
    conn.ws.resume();
    await expect.poll(() => conn.received, { timeout: 20_000 }).toBe(TOTAL);
    expect(s.ws.bufferedAmount).toBe(0);
    s.ws.close();
  });

  it('stops reading the upstream while the client does not read, and delivers everything once it does', async () => {
    const { key } = await createTenant(kg, { name: 'ws-bp-down', plan: 'pro' });
    const s = open(kg, '/v1/voice/flood/stream', { 'x-api-key': key });
    await s.opened;
    const conn = conns.at(-1)!;
    s.ws.pause();
    s.ws.send(`${FRAMES}:${FRAME}`);
    await expect.poll(() => conn.received).toBeGreaterThan(0);
    const peak = await expectBounded(() => TOTAL - conn.ws.bufferedAmount - s.got.bytes);
    console.log(`upstream → client: at most ${peak} bytes in flight of ${TOTAL}`);
    s.ws.resume();
    await expect.poll(() => s.got.bytes, { timeout: 20_000 }).toBe(TOTAL);
    expect(s.got.frames.every((f, i) => f.length === FRAME && f[0] === i % 251)).toBe(true);
    s.ws.close();
  });
});

describe('a key change that removes what a live session needs closes it', () => {
  it('closes with 1008 and the refusal as reason within 2 s: permission, origin, assistant, mTLS, certificate; a rename keeps it open', async () => {
    const { key: owner } = await createTenant(kg, { name: 'ws-narrow', plan: 'pro' });
    const origin = 'https://app.example';
    const cases: Array<{ reason: string; create: Record<string, unknown>; headers?: Record<string, string>; patch: Record<string, unknown> }> = [
      { reason: 'insufficient_permissions', create: { permissions: ['voice:connect', 'usage:read'] }, patch: { permissions: ['usage:read'] } },
      { reason: 'origin_not_allowed', create: { allowedOrigins: [origin] }, patch: { allowedOrigins: ['https://other.example'] } },
      { reason: 'assistant_not_allowed', create: { allowedAssistants: ['asst_1', 'asst_2'] }, patch: { allowedAssistants: ['asst_2'] } },
      { reason: 'mtls_required', create: {}, patch: { enforceMtls: true } },
      { reason: 'client_certificate_not_allowed', create: { enforceMtls: true, clientCertFingerprints: [HASH] }, headers: { 'x-forwarded-client-cert': XFCC }, patch: { clientCertFingerprints: ['cd'.repeat(32)] } },
    ];
    const kept = await self(kg, owner, 'POST', '/api-keys', { permissions: ['voice:connect'], allowedOrigins: [origin], allowedAssistants: ['asst_1'] });
    const keptSession = open(kg, '/v1/voice/asst_1/stream', { 'x-api-key': kept.body.key, origin });
    await keptSession.opened;
    for (const c of cases) {
      const made = await self(kg, owner, 'POST', '/api-keys', c.create);
      expect(made.status).toBe(201);
      const s = open(kg, '/v1/voice/asst_1/stream', { 'x-api-key': made.body.key, origin, ...c.headers });
      await s.opened;
      // A change that removes nothing the sessions need, made first: it is re-checked before the next one is.
      expect((await self(kg, owner, 'PATCH', `/api-keys/${kept.body.id}`, { name: `renamed for ${c.reason}`, allowedAssistants: ['asst_1', 'asst_9'] })).status).toBe(200);
      const patchedAt = Date.now();
      const patched = await self(kg, owner, 'PATCH', `/api-keys/${made.body.id}`, c.patch);
      expect(patched.status).toBe(200);
      const closed = await within(`session closed for ${c.reason}`, 5_000, s.closed);
      expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: c.reason });
      expect(closed.at - patchedAt).toBeLessThan(2_000);
    }
    expect(keptSession.ws.readyState).toBe(WebSocket.OPEN);
    keptSession.ws.send('still here');
    await expect.poll(() => keptSession.got.frames.some((f) => f.toString() === 'still here')).toBe(true);
    keptSession.ws.close();
  });

  it('closes a session whose key was narrowed while its upstream was being dialled', async () => {
    const { key: owner } = await createTenant(kg, { name: 'ws-narrow-dialling', plan: 'pro' });
    const made = await self(kg, owner, 'POST', '/api-keys', { permissions: ['voice:connect', 'usage:read'] });
    const before = held.length;
    const s = open(kg, '/v1/voice/held/stream', { 'x-api-key': made.body.key });
    await expect.poll(() => held.length).toBe(before + 1);
    expect((await self(kg, owner, 'PATCH', `/api-keys/${made.body.id}`, { permissions: ['usage:read'] })).status).toBe(200);
    // This keygate has applied the change (its cache answers with the narrowed key) before the upstream accepts.
    await expect.poll(async () => (await proxied(kg, '/v1/voice/held/stream', { 'x-api-key': made.body.key })).status).toBe(403);
    held.at(-1)!();
    await s.opened;
    const openedAt = Date.now();
    const closed = await within('session closed', 5_000, s.closed);
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: 'insufficient_permissions' });
    expect(closed.at - openedAt).toBeLessThan(2_000);
  });
});
