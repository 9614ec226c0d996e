import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { answerPings, closeIn, closeOf, closePayload, frame, metric, parseFrames, pingsIn, rawClient, sessionLines, sleep, startRawUpstream, until, type Peer, type RawClient, type RawConn, type RawUpstream } from '../helpers/ws-raw.ts';

// Attacks on session liveness: keygate pings a side silent for a ping interval, between the frames going to it, and
// ends the session when a side has sent nothing, not even a pong, for the idle timeout. Each attack is seen from
// both ends over raw TCP sockets, so every byte keygate writes is checked: a ping never inside a frame, never after
// a close, never to a connection that is gone; a side that is there and answers is never taken for gone, even when
// keygate's ping to it has to wait behind a long frame; a side that is gone is found, even behind backpressure.

const PING_S = 0.5;
const IDLE_S = 1.5;
const servers = useServers();
let upstream: RawUpstream;
let kg: KeygateProcess;
let owner: string;
let tenantId: string;

beforeAll(async () => {
  upstream = await startRawUpstream();
  // Messages up to 64 MiB: enough for a frame that fills every buffer between keygate and a client that stopped reading.
  kg = await servers.keygate({ upstream: upstream.url, config: { websocket: { pingIntervalSeconds: PING_S, idleTimeoutSeconds: IDLE_S, maxPayloadBytes: 64 * 1024 * 1024 } } });
  const made = await createTenant(kg, { name: 'liveness-attacks', plan: 'pro' });
  owner = made.key;
  tenantId = made.tenant.id;
});
afterAll(async () => {
  await upstream?.close();
});

/** A key of its own, one session at a time: a session that is not ended keeps the next one out. */
async function sessionKey(): Promise<{ id: string; key: string }> {
  const made = await self(kg, owner, 'POST', '/api-keys', { maxConcurrentConnections: 1 });
  expect(made.status).toBe(201);
  return { id: made.body.id, key: made.body.key };
}

async function session(key: string): Promise<{ client: RawClient; up: RawConn }> {
  const next = upstream.next();
  const client = await rawClient(kg, key);
  return { client, up: await next };
}



/** Writes `bytes` in `pieces` writes, `everyMs` apart. */
async function trickle(peer: Peer, bytes: Buffer, pieces: number, everyMs: number): Promise<void> {
  const size = Math.ceil(bytes.length / pieces);
  for (let at = 0; at < bytes.length; at += size) {
    if (peer.socket.destroyed) return;
    peer.socket.write(bytes.subarray(at, at + size));
    await sleep(everyMs);
  }
}

describe("a side that is there is not taken for gone while keygate's ping to it waits behind a long frame", () => {
  // The silent side only receives: one long frame, relayed to it as it comes, for twice the idle timeout. keygate
  // cannot ask it anything before the frame ends (a ping inside a frame would corrupt the stream); the side is
  // taking every byte, and answers the ping as soon as it can read it.
  for (const silentSide of ['client', 'upstream'] as const) {
    it(`the ${silentSide}, reading a frame that takes twice the idle timeout to arrive, stays, and gets its ping after the frame`, async () => {
      const { id, key } = await sessionKey();
      const { client, up } = await session(key);
      const [talker, listener] = silentSide === 'client' ? [up, client] : [client, up];
      // Whoever sends the long frame answers pings too (it is there); the silent side answers only pings.
      answerPings(client, true);
      answerPings(up, false);
      const payload = randomBytes(300_000);
      const long = frame(0x2, payload, { mask: silentSide === 'client' ? null : undefined });
      await trickle(talker, long, 100, (IDLE_S * 2 * 1000) / 100);
      talker.socket.write(frame(0x1, 'after', { mask: silentSide === 'client' ? null : undefined }));
      expect(await until(() => parseFrames(listener.read()).frames.some((f) => f.opcode === 0x1), 5_000)).toBe(true);
      // A ping interval or two more: the silent side has its ping now, and answers it.
      await sleep(PING_S * 2 * 1000);
      const { frames, rest } = parseFrames(listener.read());
      expect(rest).toBe(0);
      expect(closeIn(frames)).toBeNull();
      expect(closeIn(talker.frames())).toBeNull();
      // (The talker's pongs to keygate's pings reach the listener too, as unsolicited pongs.)
      const data = frames.filter((f) => f.opcode < 0x8);
      expect(data.map((f) => f.opcode)).toEqual([0x2, 0x1]);
      expect(data[0]!.payload.equals(payload)).toBe(true);
      expect(pingsIn(frames).length).toBeGreaterThanOrEqual(1);
      expect(sessionLines(kg, id)).toEqual([]);
      client.socket.destroy();
      expect(await until(() => sessionLines(kg, id).length === 1, 5_000)).toBe(true);
    });
  }

  it('a client that stopped reading (gone) while a long frame is being relayed to it is still found: backpressure stalls the frame, and its silence counts', async () => {
    const { id, key } = await sessionKey();
    const { client, up } = await session(key);
    answerPings(up, false);
    up.keep = false;
    // The client is gone without a word: nothing read, nothing sent, its connection held open.
    client.holdOpen = true;
    client.socket.pause();
    // 48 MiB in one frame: more than the kernel's buffers and keygate's high-water mark hold, so keygate stops
    // reading the upstream mid-frame, and the client's ping waits behind that frame for ever.
    const big = frame(0x2, Buffer.alloc(48 * 1024 * 1024, 3), { mask: null });
    up.socket.write(big);
    expect(await until(() => sessionLines(kg, id).length === 1, IDLE_S * 1000 + 10_000)).toBe(true);
    expect(sessionLines(kg, id)[0]).toMatchObject({ closeCode: 1001, closeReason: 'client_idle', closedBy: 'keygate' });
    await expect.poll(() => servers.redis.client.zcard(`kg:{${tenantId}}:ws:${id}`)).toBe(0);
    client.socket.destroy();
    up.socket.destroy();
  });
});

describe('nothing of keygate goes to a connection that is gone', () => {
  // A frame of keygate's own for the upstream (its ping, or its close) waits behind a frame the client is half-way
  // through; the upstream then hangs up. The client is told, finishes its frame, goes on sending what it sent
  // before it read that (more than keygate reads ahead of a connection it has stopped reading, and more than the
  // kernel buffers), then its close: keygate must read all of it, and drop it. Writing the held frame to the
  // closed upstream instead fails, and a failed write stops the client being read: its unread bytes then draw a
  // reset when the grace cuts the connection.
  const held = {
    ping: {
      // The upstream, silent, is due a ping after a ping interval; it waits for the client's frame to end.
      hold: async () => sleep(PING_S * 1000 * 2.5),
      toClient: { code: 1014, reason: '' },
      line: { closeCode: 1006, closedBy: 'upstream' },
    },
    close: {
      hold: async (keyId: string) => {
        expect((await admin(kg, 'DELETE', `/tenants/${tenantId}/api-keys/${keyId}`)).status).toBe(204);
        await sleep(300);
      },
      toClient: { code: 1008, reason: 'key_revoked' },
      line: { closeCode: 1008, closeReason: 'key_revoked', closedBy: 'keygate' },
    },
  };
  for (const [what, way] of Object.entries(held)) {
    it(`keygate's ${what} held for a side that then hangs up is dropped: the other side is still read to its end, with no reset`, async () => {
      const { id, key } = await sessionKey();
      const { client, up } = await session(key);
      client.holdOpen = true;
      const long = frame(0x2, randomBytes(3000));
      client.socket.write(long.subarray(0, 1000));
      expect(await until(() => up.bytes() === 1000)).toBe(true);
      await way.hold(id);
      expect(up.frames()).toEqual([]);
      up.socket.destroy();
      expect(await until(() => closeIn(client.frames()) !== null, 3_000)).toBe(true);
      expect(closeIn(client.frames())).toEqual(way.toClient);
      client.socket.write(long.subarray(1000));
      const chunk = frame(0x2, randomBytes(60_000));
      for (let i = 0; i < 256; i++) client.socket.write(chunk);
      await sleep(100);
      client.socket.write(frame(0x8, closePayload(1000, 'bye')));
      // keygate lets the connection go within the grace: without a reset (the client holds its end open, so it
      // may see nothing at all), never with one.
      const outcome = await Promise.race([client.closed, sleep(2_000 + 1_500).then(() => null)]);
      expect(outcome?.error ?? false).toBe(false);
      expect(await until(() => sessionLines(kg, id).length === 1, 3_000)).toBe(true);
      expect(sessionLines(kg, id)[0]).toMatchObject(way.line);
      client.socket.destroy();
    });
  }
});

describe("keygate's pings go between frames only, and never after a close", () => {
  // The upstream sends to a silent client (which answers pings) a stream cut at every awkward point, each pause
  // longer than a ping interval so that pings fall due there: between the fragments of a message, inside a 64-bit
  // length header arriving a byte at a time, inside a payload, inside a frame in the 16-bit form, and inside a
  // close frame arriving a byte at a time (held whole by keygate). The client must read whole frames only, the
  // data as sent, the close last, and nothing after it.
  it('a fragmented message, headers split across reads, every length form and a close held whole: pings only between frames', async () => {
    const { key } = await sessionKey();
    const { client, up } = await session(key);
    answerPings(client, true);
    const gap = PING_S * 1000 * 1.4;
    const first = randomBytes(300);
    const middle = randomBytes(2000);
    const last = Buffer.from('end of message');
    const binary = randomBytes(70_000);
    const bytewise = async (b: Buffer) => {
      for (const byte of b) {
        up.socket.write(Buffer.from([byte]));
        await sleep(gap / 4);
      }
    };
    up.socket.write(frame(0x1, first, { fin: false, mask: null, form: 16 }));
    await sleep(gap);
    const mid = frame(0x0, middle, { fin: false, mask: null, form: 64 });
    await bytewise(mid.subarray(0, 10)); // its whole header, a byte at a time
    up.socket.write(mid.subarray(10, 1000));
    await sleep(gap);
    up.socket.write(mid.subarray(1000));
    await sleep(gap);
    up.socket.write(frame(0x0, last, { mask: null }));
    await sleep(gap);
    const bin = frame(0x2, binary, { mask: null });
    up.socket.write(bin.subarray(0, 30_000));
    await sleep(gap);
    up.socket.write(bin.subarray(30_000));
    await sleep(gap);
    await bytewise(frame(0x8, closePayload(4000, 'done'), { mask: null }));
    expect(await until(() => closeIn(client.frames()) !== null, 3_000)).toBe(true);
    // Three ping intervals after the close: nothing follows it (the client does not answer it).
    await sleep(PING_S * 1000 * 3);
    const { frames, rest } = parseFrames(client.read());
    expect(rest).toBe(0);
    const data = frames.filter((f) => f.opcode !== 0x9);
    expect(data.map((f) => [f.opcode, f.fin])).toEqual([
      [0x1, false],
      [0x0, false],
      [0x0, true],
      [0x2, true],
      [0x8, true],
    ]);
    expect([data[0]!.payload.equals(first), data[1]!.payload.equals(middle), data[2]!.payload.equals(last), data[3]!.payload.equals(binary)]).toEqual([true, true, true, true]);
    expect(closeOf(data[4]!)).toEqual({ code: 4000, reason: 'done' });
    expect(frames.at(-1)!.opcode).toBe(0x8);
    // The pings did fall due while the stream was cut: at least one went in the middle of the fragmented message.
    const pings = frames.flatMap((f, i) => (f.opcode === 0x9 ? [i] : []));
    expect(pings.length).toBeGreaterThanOrEqual(2);
    const lastFragment = frames.indexOf(data[2]!);
    expect(pings.some((i) => i > 0 && i < lastFragment)).toBe(true);
    for (const i of pings) expect({ masked: frames[i]!.masked, payload: frames[i]!.payload.toString() }).toEqual({ masked: false, payload: 'keygate' });
    client.socket.destroy();
  });

  it("a close from the client that the upstream never answers: no ping to either side after it, and the session ends at the grace", async () => {
    const { id, key } = await sessionKey();
    const { client, up } = await session(key);
    client.holdOpen = up.holdOpen = true;
    client.socket.write(frame(0x8, closePayload(1000, 'bye')));
    expect(await until(() => closeIn(up.frames()) !== null, 3_000)).toBe(true);
    // Neither side says anything more (the grace, 2 s, is longer than the idle timeout here).
    expect(await until(() => sessionLines(kg, id).length === 1, 5_000)).toBe(true);
    await sleep(PING_S * 1000 * 2);
    expect(up.frames().map((f) => f.opcode)).toEqual([0x8]);
    // The client is sent nothing at all: no ping, and no close (the upstream never sent one).
    expect(client.frames()).toEqual([]);
    expect(sessionLines(kg, id)[0]).toMatchObject({ closeCode: 1000, closeReason: 'bye', closedBy: 'client' });
  });
});

describe('no ping storm', () => {
  // The upstream cuts every write mid-frame (each write ends one frame and starts the next), a hundred times a
  // second: a ping to the silent client is held behind almost every write. Still at most one ping per interval.
  it('a side is pinged at most once a ping interval, however the other side cuts its frames', async () => {
    const { key } = await sessionKey();
    const { client, up } = await session(key);
    answerPings(client, true);
    const started = Date.now();
    const one = frame(0x2, Buffer.alloc(20, 9), { mask: null });
    up.socket.write(one.subarray(0, 10));
    while (Date.now() - started < IDLE_S * 3 * 1000) {
      up.socket.write(Buffer.concat([one.subarray(10), one.subarray(0, 10)]));
      await sleep(10);
    }
    up.socket.write(one.subarray(10));
    const elapsed = Date.now() - started;
    await sleep(200);
    const { frames, rest } = parseFrames(client.read());
    expect(rest).toBe(0);
    const pings = pingsIn(frames).length;
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(pings).toBeLessThanOrEqual(Math.ceil(elapsed / (PING_S * 1000)) + 1);
    expect(frames.filter((f) => f.opcode === 0x2).every((f) => f.payload.equals(Buffer.alloc(20, 9)))).toBe(true);
    expect(closeIn(frames)).toBeNull();
    client.socket.destroy();
  });
});

describe('the liveness timer ends with its session, however the session ends', () => {
  // Counted inside a real keygate: a preload (the test's, not keygate's) counts the live intervals whose callback is
  // the splice's liveness check, and prints the count on SIGUSR2. One timer per live session, none once every
  // session has ended, whichever way it ended; a leaked one would hold its whole session (both connections and
  // their buffers) and fire for ever.
  it('every way a session ends clears its timer', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const preload = join(mkdtempSync(join(tmpdir(), 'kg-timers-')), 'count-liveness-timers.cjs');
    writeFileSync(
      preload,
      `const live = new Set();
const set = globalThis.setInterval;
const clear = globalThis.clearInterval;
globalThis.setInterval = function (fn, ...rest) {
  const t = set.call(this, fn, ...rest);
  if (typeof fn === 'function' && fn.name === 'checkLiveness') live.add(t);
  return t;
};
globalThis.clearInterval = function (t) {
  live.delete(t);
  return clear.call(this, t);
};
process.on('SIGUSR2', () => process.stderr.write('liveness timers: ' + live.size + '\\n'));
`,
    );
    const k = await servers.keygate({
      upstream: upstream.url,
      env: { NODE_OPTIONS: `--require ${preload}` },
      config: { websocket: { pingIntervalSeconds: 1, idleTimeoutSeconds: 3, maxPayloadBytes: 65_536 } },
    });
    const made = await createTenant(k, { name: 'liveness-timers', plan: 'pro' });
    let asked = 0;
    const timers = async (): Promise<number> => {
      asked++;
      k.proc.kill('SIGUSR2');
      expect(await until(() => (k.output().match(/liveness timers: \d+/g) ?? []).length === asked, 3_000)).toBe(true);
      return Number(/liveness timers: (\d+)\n?$/.exec(k.output().match(/liveness timers: \d+/g)!.at(-1)!)![1]);
    };
    expect(await timers()).toBe(0);
    const cut = frame(0x2, randomBytes(3000)).subarray(0, 1000);
    const ways: Record<string, (s: { client: RawClient; up: RawConn; keyId: string }) => Promise<unknown> | void> = {
      'client hangs up': ({ client }) => {
        client.socket.end();
      },
      'client resets mid-frame': async ({ client }) => {
        client.socket.write(cut);
        await sleep(50);
        client.socket.resetAndDestroy();
      },
      'upstream hangs up': ({ up }) => {
        up.socket.end();
      },
      'upstream resets mid-frame': async ({ up }) => {
        up.socket.write(frame(0x2, randomBytes(3000), { mask: null }).subarray(0, 1000));
        await sleep(50);
        up.socket.resetAndDestroy();
      },
      'close answered': async ({ client, up }) => {
        client.socket.write(frame(0x8, closePayload(1000)));
        await until(() => up.frames().length === 1);
        up.socket.write(frame(0x8, closePayload(1000), { mask: null }));
      },
      'close never answered, nobody hangs up': ({ client, up }) => {
        client.holdOpen = up.holdOpen = true;
        client.socket.write(frame(0x8, closePayload(1000)));
      },
      "keygate's close (revoked)": ({ keyId }) => admin(k, 'DELETE', `/tenants/${made.tenant.id}/api-keys/${keyId}`),
      'a frame the client may not send (unmasked)': ({ client }) => {
        client.socket.write(frame(0x1, 'x', { mask: null }));
      },
      'a message too large': ({ client }) => {
        client.socket.write(frame(0x2, Buffer.alloc(10), { claim: 70_000 }));
      },
      'the client goes silent (liveness)': ({ client }) => {
        client.holdOpen = true;
      },
    };
    const opened: Array<{ client: RawClient; up: RawConn; keyId: string; end: (typeof ways)[string] }> = [];
    for (const end of Object.values(ways)) {
      const key = await self(k, made.key, 'POST', '/api-keys', { maxConcurrentConnections: 1 });
      const next = upstream.next();
      const client = await rawClient(k, key.body.key);
      const up = await next;
      answerPings(up, false);
      opened.push({ client, up, keyId: key.body.id, end });
    }
    expect(await timers()).toBe(opened.length);
    await Promise.all(opened.map((s) => s.end(s)));
    // Every session ends: within the grace, or (the silent client) within the idle timeout and a ping interval.
    await expect.poll(() => metric(k, 'keygate_websocket_connections'), { timeout: 3_000 + 1_000 + 2_000 + 2_000 }).toBe(0);
    expect(await timers()).toBe(0);
    for (const s of opened) {
      s.client.socket.destroy();
      s.up.socket.destroy();
    }
  });
});

describe('the liveness settings', () => {
  it('a value that is not a finite number of seconds in range is refused by name, before keygate serves', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { runCli } = await import('../helpers/keygate.ts');
    const dir = mkdtempSync(join(tmpdir(), 'kg-liveness-config-'));
    const cases: Array<[yaml: string, path: string]> = [
      ['pingIntervalSeconds: .nan', 'websocket.pingIntervalSeconds'],
      ["pingIntervalSeconds: '20'", 'websocket.pingIntervalSeconds'],
      ['idleTimeoutSeconds: .inf', 'websocket.idleTimeoutSeconds'],
      ['pingIntervalSeconds: 0', 'websocket.pingIntervalSeconds'],
      ['idleTimeoutSeconds: -60', 'websocket.idleTimeoutSeconds'],
      // Only the interval set, past the default timeout: the timeout is named, with why.
      ['pingIntervalSeconds: 90', 'websocket.idleTimeoutSeconds'],
    ];
    for (const [i, [yaml, path]] of cases.entries()) {
      const file = join(dir, `${i}.yaml`);
      writeFileSync(file, `websocket:\n  ${yaml}\n`);
      const r = await runCli(['config', 'check'], { KEYGATE_CONFIG: file, KEYGATE_ADMIN_TOKEN: 'test-admin-token-0123456789' });
      expect({ yaml, code: r.code, named: r.stderr.includes(`${path}:`) }).toEqual({ yaml, code: 78, named: true });
    }
  });

  it('a timeout within a millisecond of the interval (which the check lets by): the silent side is still pinged before it is taken for gone', async () => {
    const k = await servers.keygate({ upstream: upstream.url, config: { websocket: { pingIntervalSeconds: 0.3001, idleTimeoutSeconds: 0.3002 } } });
    const made = await createTenant(k, { name: 'liveness-close-timeout', plan: 'pro' });
    const next = upstream.next();
    const client = await rawClient(k, made.key);
    const up = await next;
    answerPings(up, false);
    client.holdOpen = true;
    expect(await until(() => closeIn(up.frames()) !== null, 5_000)).toBe(true);
    expect(closeIn(up.frames())).toEqual({ code: 1001, reason: 'client_idle' });
    // (The upstream's pongs to its own pings reach the client too.)
    const toClient = client.frames().filter((f) => f.opcode !== 0xa);
    expect(toClient.map((f) => f.opcode)).toEqual([0x9, 0x8]);
    client.socket.destroy();
  });
});

describe("real endpoints answer keygate's pings by themselves, and take the other side's pong unasked", () => {
  it('a `ws` client and a `ws` upstream, both quiet for three idle timeouts: pinged, answering, still open, still carrying messages', async () => {
    const { createServer } = await import('node:http');
    const { WebSocket, WebSocketServer } = await import('ws');
    const server = createServer();
    const wss = new WebSocketServer({ server });
    const serverSide = new Promise<InstanceType<typeof WebSocket>>((r) => wss.once('connection', r));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const k = await servers.keygate({ upstream: `http://127.0.0.1:${(server.address() as { port: number }).port}`, config: { websocket: { pingIntervalSeconds: PING_S, idleTimeoutSeconds: IDLE_S } } });
    const made = await createTenant(k, { name: 'liveness-ws', plan: 'pro' });
    const ws = new WebSocket(`ws://127.0.0.1:${k.port}/v1/voice/quiet/stream`, { headers: { 'x-api-key': made.key } });
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    const back = await serverSide;
    const seen = { clientPings: 0, clientPongs: 0, upstreamPings: 0, upstreamPongs: 0, errors: [] as string[], closes: [] as number[] };
    ws.on('ping', () => seen.clientPings++).on('pong', () => seen.clientPongs++).on('error', (e) => seen.errors.push(e.message)).on('close', (c) => seen.closes.push(c));
    back.on('ping', () => seen.upstreamPings++).on('pong', () => seen.upstreamPongs++).on('error', (e) => seen.errors.push(e.message)).on('close', (c) => seen.closes.push(c));
    await sleep(IDLE_S * 3 * 1000);
    // Each was pinged by keygate, and got the other's answers as unsolicited pongs, and nothing broke.
    expect(seen).toMatchObject({ errors: [], closes: [] });
    expect(Math.min(seen.clientPings, seen.clientPongs, seen.upstreamPings, seen.upstreamPongs)).toBeGreaterThanOrEqual(1);
    const echoed = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    back.once('message', (d) => back.send(`echo ${String(d)}`));
    ws.send('still here');
    expect(await echoed).toBe('echo still here');
    ws.close(1000);
    await new Promise((r) => ws.once('close', r));
    wss.close();
    server.closeAllConnections();
    server.close();
  });

  it('Chromium, quiet for three idle timeouts behind keygate: pinged, answering by itself, the upstream pinged too, the session open and working', async () => {
    const { createServer } = await import('node:http');
    const { chromium } = await import('playwright-core');
    const { tool } = await import('../helpers/tools.ts');
    const executablePath = tool('chromium');
    const k = await servers.keygate({
      upstream: upstream.url,
      env: { KEYGATE_TOKEN_SIGNING_KEYS: 'liveness:a-token-signing-secret-of-32-chars-or-more' },
      config: { websocket: { pingIntervalSeconds: PING_S, idleTimeoutSeconds: IDLE_S } },
    });
    const made = await createTenant(k, { name: 'liveness-browser', plan: 'pro' });
    const backend = await self(k, made.key, 'POST', '/api-keys', { name: 'web backend', permissions: ['session-tokens:write', 'voice:connect'] });
    const app = createServer((_req, res) => res.setHeader('content-type', 'text/html').end('<!doctype html><title>quiet</title>'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    const minted = await self(k, backend.body.key, 'POST', '/session-tokens', { ttlSeconds: 60, assistantId: 'asst_1', allowedOrigins: [origin], permissions: ['voice:connect'] });
    expect(minted.status).toBe(201);
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/`);
      const next = upstream.next();
      const opened = await page.evaluate(
        ({ url, token }) =>
          new Promise<boolean>((resolve) => {
            const ws = new WebSocket(url, ['keygate.token', token]);
            const w = globalThis as unknown as { quiet: { ws: WebSocket; closed: number | null; messages: string[] } };
            w.quiet = { ws, closed: null, messages: [] };
            ws.onopen = () => resolve(true);
            ws.onclose = (e) => {
              w.quiet.closed = e.code;
              resolve(false);
            };
            ws.onmessage = (e) => w.quiet.messages.push(String(e.data));
          }),
        { url: `ws://127.0.0.1:${k.port}/v1/voice/asst_1/stream`, token: minted.body.token as string },
      );
      expect(opened).toBe(true);
      const up = await next;
      answerPings(up, false);
      await sleep(IDLE_S * 3 * 1000);
      // The page said nothing and ran no script, yet answered every ping: its pongs reached the upstream.
      expect(up.frames().filter((f) => f.opcode === 0xa).length).toBeGreaterThanOrEqual(2);
      expect(up.frames().filter((f) => f.opcode !== 0xa && f.opcode !== 0x9)).toEqual([]);
      expect(pingsIn(up.frames()).length).toBeGreaterThanOrEqual(1);
      // The upstream's pongs (to keygate's pings) reached the page as unsolicited pongs and closed nothing.
      expect(await page.evaluate(() => (globalThis as unknown as { quiet: { closed: number | null } }).quiet.closed)).toBeNull();
      up.socket.write(frame(0x1, 'hello page', { mask: null }));
      await page.evaluate(() => (globalThis as unknown as { quiet: { ws: WebSocket } }).quiet.ws.send('hello upstream'));
      expect(await until(() => up.frames().some((f) => f.opcode === 0x1 && f.payload.toString() === 'hello upstream'), 3_000)).toBe(true);
      await expect.poll(() => page.evaluate(() => (globalThis as unknown as { quiet: { messages: string[] } }).quiet.messages)).toEqual(['hello page']);
      up.socket.destroy();
    } finally {
      await browser.close();
      app.close();
    }
  }, 60_000);
});
