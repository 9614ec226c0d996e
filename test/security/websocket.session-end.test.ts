import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { closeOf, closePayload, frame, metric, parseFrames, rawClient, sessionLines, sleep, startRawUpstream, until, type RawClient, type RawConn, type RawUpstream } from '../helpers/ws-raw.ts';

// How a spliced session ends, seen from both ends (raw TCP sockets, the upstream answering the handshake itself):
// keygate's own close (revocation, session minutes, shutdown) goes after the frame in flight each way and nothing
// follows it; every way a session can end (either side hanging up or resetting, mid-frame or not, a close nobody
// answers, a close handshake after which neither side hangs up) ends it: both connections gone within the 2 s
// grace, the session slot and the unused session minutes given back, the live-sessions gauge down, its line
// written, with what each side carried counted as it passed.

const servers = useServers();
let upstream: RawUpstream;
let kg: KeygateProcess;
let owner: string;
let tenantId: string;
const GRACE_MS = 2_000;
const month = () => new Date().toISOString().slice(0, 7);

beforeAll(async () => {
  upstream = await startRawUpstream();
  kg = await servers.keygate({ upstream: upstream.url, config: { websocket: { maxPayloadBytes: 65_536 } } });
  const made = await createTenant(kg, { name: 'session-end', plan: 'pro' });
  owner = made.key;
  tenantId = made.tenant.id;
});
afterAll(async () => {
  await upstream?.close();
});

async function session(k: KeygateProcess, key: string): Promise<{ client: RawClient; up: RawConn }> {
  const next = upstream.next();
  const client = await rawClient(k, key);
  return { client, up: await next };
}

/** A key of its own: one session at a time, and an hour of session minutes (so each session reserves a minute). */
async function sessionKey(k: KeygateProcess, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const made = await self(k, owner, 'POST', '/api-keys', { maxConcurrentConnections: 1, quota: { sessionMinutesPerMonth: 60 }, ...extra });
  expect(made.status).toBe(201);
  return { id: made.body.id, key: made.body.key };
}

/** Everything a session holds is given back: its slot, the minutes it reserved and did not use, the gauge; its line is written. */
async function expectReleased(k: KeygateProcess, keyId: string): Promise<Record<string, any>> {
  const redis = servers.redis.client;
  expect(await until(() => sessionLines(k, keyId).length === 1, 3_000)).toBe(true);
  await expect.poll(() => redis.zcard(`kg:{${tenantId}}:ws:${keyId}`)).toBe(0);
  // A session reserves a minute when it opens; the part it did not use goes back when it ends.
  await expect.poll(async () => Number(await redis.get(`kg:{${tenantId}}:q:${month()}:s:${keyId}`))).toBeLessThan(15_000);
  await expect.poll(() => metric(k, 'keygate_websocket_connections')).toBe(0);
  return sessionLines(k, keyId)[0]!;
}

/**
 * Both ends' connections are gone within `ms` of now: closed by keygate (answered with the peer's FIN), or cut. A
 * peer holding its end open sees nothing more once keygate has sent its FIN, so it finds out as a hostile one
 * would: it writes, and a connection keygate has let go of answers with a reset.
 */
async function expectBothGone(client: RawClient, up: RawConn, ms: number): Promise<void> {
  const from = Date.now();
  await Promise.race([Promise.all([client.closed, up.closed]), sleep(ms)]);
  const probed = Date.now() - from;
  // The first write draws the reset; the second, failing on it, reports it (after a FIN, nothing is being read).
  for (let i = 0; i < 2; i++) {
    for (const side of [client, up]) if (side.socket.writable) side.socket.write(Buffer.from([0x89]));
    await sleep(100);
  }
  const late = sleep(500).then(() => 'late' as const);
  const [c, u] = await Promise.all([Promise.race([client.closed, late]), Promise.race([up.closed, late])]);
  expect({ client: c === 'late' ? 'open' : 'gone', upstream: u === 'late' ? 'open' : 'gone' }).toEqual({ client: 'gone', upstream: 'gone' });
  console.log(`both connections gone: checked ${probed} ms after the end began`);
}

describe("keygate's own close", () => {
  /**
   * Each side starts a fragmented message (one whole fragment, then half of a 3000-byte one); `trigger` makes
   * keygate close; each side then finishes its fragment and sends one more frame. Each side must read: the
   * whole first fragment, the whole second, keygate's close, and nothing after.
   */
  async function closeMidFrame(k: KeygateProcess, key: string, trigger: () => Promise<void>, expected: { client: [number, string]; upstream: [number, string] }) {
    const { client, up } = await session(k, key);
    const c = [frame(1, 'first ', { fin: false }), frame(0, randomBytes(3000), { fin: false }), frame(0, 'after')];
    const u = [frame(2, 'first', { fin: false, mask: null }), frame(0, randomBytes(3000), { fin: false, mask: null }), frame(0, 'after', { mask: null })];
    client.socket.write(Buffer.concat([c[0]!, c[1]!.subarray(0, 1000)]));
    up.socket.write(Buffer.concat([u[0]!, u[1]!.subarray(0, 1000)]));
    expect(await until(() => up.bytes() === c[0]!.length + 1000 && client.bytes() === u[0]!.length + 1000)).toBe(true);
    await trigger();
    // Neither side's close can go before the frame in flight to it is whole.
    expect(up.frames().map((f) => f.opcode)).toEqual([1]);
    expect(client.frames().map((f) => f.opcode)).toEqual([2]);
    client.socket.write(c[1]!.subarray(1000));
    up.socket.write(u[1]!.subarray(1000));
    expect(await until(() => up.frames().length === 3 && client.frames().length === 3)).toBe(true);
    client.socket.write(c[2]!);
    up.socket.write(u[2]!);
    await sleep(100);
    const toClient = client.frames();
    expect(toClient.map((f) => f.opcode)).toEqual([2, 0, 8]);
    expect(Buffer.concat(toClient.slice(0, 2).map((f) => f.payload)).equals(Buffer.concat([Buffer.from('first'), parseFrames(u[1]!).frames[0]!.payload]))).toBe(true);
    expect(closeOf(toClient[2]!)).toEqual({ code: expected.client[0], reason: expected.client[1] });
    expect(parseFrames(client.read()).rest).toBe(0);
    const toUpstream = up.frames();
    expect(toUpstream.map((f) => f.opcode)).toEqual([1, 0, 8]);
    expect(up.read().subarray(0, c[0]!.length + c[1]!.length).equals(Buffer.concat([c[0]!, c[1]!]))).toBe(true); // as the client sent them
    expect(toUpstream[2]!.masked).toBe(true);
    expect(closeOf(toUpstream[2]!)).toEqual({ code: expected.upstream[0], reason: expected.upstream[1] });
    expect(parseFrames(up.read()).rest).toBe(0);
    // Both answer; keygate hangs up on both.
    client.socket.write(frame(8, closePayload(expected.client[0])));
    up.socket.write(frame(8, closePayload(expected.upstream[0]), { mask: null }));
    await expectBothGone(client, up, GRACE_MS + 1_000);
  }

  it('revocation: after the frame in flight each way, 1008 to the client and 1000 to the upstream, then nothing', async () => {
    const k = await sessionKey(kg);
    await closeMidFrame(kg, k.key, async () => {
      expect((await admin(kg, 'DELETE', `/tenants/${tenantId}/api-keys/${k.id}`)).status).toBe(204);
      await sleep(300);
    }, { client: [1008, 'key_revoked'], upstream: [1000, 'key_revoked'] });
    expect(await expectReleased(kg, k.id)).toMatchObject({ closeCode: 1008, closeReason: 'key_revoked', closedBy: 'keygate', clientMessages: 1, clientBytes: 6 + 3000 + 5, upstreamMessages: 1, upstreamBytes: 5 + 3000 + 5 });
  });

  it('session minutes used up: the same, with quota_exceeded', async () => {
    const k = await sessionKey(kg, { quota: { sessionMinutesPerMonth: 1 } });
    await servers.redis.client.set(`kg:{${tenantId}}:q:${month()}:s:${k.id}`, 58_000); // 2 s of the minute left
    // The close is due at the warning's `closesAt`, and made at the next per-second check after it.
    const warning = () => kg.output().split('\n').find((l) => l.includes('"msg":"session quota ending"') && l.includes(k.id));
    await closeMidFrame(kg, k.key, async () => {
      expect(await until(() => warning() !== undefined, 5_000)).toBe(true);
      await sleep(Date.parse(JSON.parse(warning()!).closesAt) + 1_100 - Date.now());
    }, { client: [1008, 'quota_exceeded'], upstream: [1000, 'quota_exceeded'] });
    const redis = servers.redis.client;
    expect(await until(() => sessionLines(kg, k.id).length === 1, 3_000)).toBe(true);
    expect(sessionLines(kg, k.id)[0]).toMatchObject({ closeCode: 1008, closeReason: 'quota_exceeded', closedBy: 'keygate' });
    await expect.poll(() => redis.zcard(`kg:{${tenantId}}:ws:${k.id}`)).toBe(0);
    await expect.poll(() => metric(kg, 'keygate_websocket_connections')).toBe(0);
  });

  it('shutdown (SIGTERM): the same, with 1001 to both; keygate then exits 0', async () => {
    const own = await servers.keygate({ upstream: upstream.url });
    const { key } = await createTenant(own, { name: 'session-end-shutdown', plan: 'pro' });
    await closeMidFrame(own, key, async () => {
      own.proc.kill('SIGTERM');
      await sleep(300);
    }, { client: [1001, 'shutting_down'], upstream: [1001, 'shutting_down'] });
    expect(await own.exited).toBe(0);
    expect(own.output()).toMatch(/"closeCode":1001,"closeReason":"shutting_down","closedBy":"keygate"/);
  });
  it("after the client's close, keygate's own goes to the client only, and the line names the client as the one that closed", async () => {
    const k = await sessionKey(kg);
    const { client, up } = await session(kg, k.key);
    client.socket.write(frame(8, closePayload(1000, 'bye')));
    expect(await until(() => up.frames().length === 1)).toBe(true);
    expect((await admin(kg, 'DELETE', `/tenants/${tenantId}/api-keys/${k.id}`)).status).toBe(204);
    // The upstream has not answered yet: the client is told why instead; the upstream already has a close.
    expect(await until(() => client.frames().length === 1)).toBe(true);
    expect(closeOf(client.frames()[0]!)).toEqual({ code: 1008, reason: 'key_revoked' });
    up.socket.write(frame(8, closePayload(1000, 'bye'), { mask: null }));
    await expectBothGone(client, up, GRACE_MS + 1_000);
    expect(up.frames().map(closeOf)).toEqual([{ code: 1000, reason: 'bye' }]);
    expect(client.frames()).toHaveLength(1);
    expect(await expectReleased(kg, k.id)).toMatchObject({ closeCode: 1000, closeReason: 'bye', closedBy: 'client' });
  });

  it('a header arriving a byte at a time is held back whole: the close goes at once, and none of it follows', async () => {
    const k = await sessionKey(kg);
    const { client, up } = await session(kg, k.key);
    const slow = frame(2, 'slow');
    client.socket.write(slow.subarray(0, 2));
    await sleep(100);
    expect((await admin(kg, 'DELETE', `/tenants/${tenantId}/api-keys/${k.id}`)).status).toBe(204);
    expect(await until(() => up.frames().length === 1 && client.frames().length === 1)).toBe(true);
    for (const byte of slow.subarray(2)) {
      client.socket.write(Buffer.from([byte]));
      await sleep(50);
    }
    expect(closeOf(up.frames()[0]!)).toEqual({ code: 1000, reason: 'key_revoked' });
    expect(parseFrames(up.read()).rest).toBe(0); // nothing of the held header
    expect(up.frames()).toHaveLength(1);
    client.socket.write(frame(8, closePayload(1000)));
    up.socket.write(frame(8, closePayload(1000), { mask: null }));
    await expectBothGone(client, up, GRACE_MS + 1_000);
    expect(await expectReleased(kg, k.id)).toMatchObject({ closeCode: 1008, closeReason: 'key_revoked', clientMessages: 1, clientBytes: 4 }); // whole, though it went nowhere
  });
});

describe('every way a session ends gives back what it holds, and both connections', () => {
  const cut = frame(2, randomBytes(3000)).subarray(0, 1000); // a header and part of its payload
  const ways: Record<string, { end: (s: { client: RawClient; up: RawConn }) => Promise<void> | void; line: Record<string, unknown>; toOther?: { side: 'client' | 'up'; code: number } }> = {
    'the client hangs up between frames, without a close': {
      end: ({ client, up }) => {
        up.holdOpen = true;
        client.socket.end();
      },
      line: { closeCode: 1006, closedBy: 'client' },
      // The upstream is told the client went away.
      toOther: { side: 'up', code: 1001 },
    },
    'the client hangs up mid-frame': {
      end: ({ client, up }) => {
        up.holdOpen = true;
        client.socket.end(cut);
      },
      line: { closeCode: 1006, closedBy: 'client' },
    },
    'the client resets mid-frame': {
      end: async ({ client, up }) => {
        up.holdOpen = true;
        client.socket.write(cut);
        await sleep(50);
        client.socket.resetAndDestroy();
      },
      line: { closeCode: 1006, closedBy: 'client' },
    },
    'the upstream hangs up between frames, without a close': {
      end: ({ client, up }) => {
        client.holdOpen = true;
        up.socket.end();
      },
      line: { closeCode: 1006, closedBy: 'upstream' },
      // The client is told its gateway lost the upstream.
      toOther: { side: 'client', code: 1014 },
    },
    'the upstream resets mid-frame': {
      end: async ({ client, up }) => {
        client.holdOpen = true;
        up.socket.write(frame(2, randomBytes(3000), { mask: null }).subarray(0, 1000));
        await sleep(50);
        up.socket.resetAndDestroy();
      },
      line: { closeCode: 1006, closedBy: 'upstream' },
    },
    "the client's close is answered, and neither side hangs up": {
      end: async ({ client, up }) => {
        client.holdOpen = up.holdOpen = true;
        client.socket.write(frame(8, closePayload(1000, 'bye')));
        await until(() => up.frames().length === 1);
        up.socket.write(frame(8, closePayload(1000, 'bye'), { mask: null }));
      },
      line: { closeCode: 1000, closeReason: 'bye', closedBy: 'client' },
    },
    "the client's close is never answered, and neither side hangs up": {
      end: async ({ client, up }) => {
        client.holdOpen = up.holdOpen = true;
        client.socket.write(frame(8, closePayload(1000, 'bye')));
        await until(() => up.frames().length === 1);
      },
      line: { closeCode: 1000, closeReason: 'bye', closedBy: 'client' },
    },
    "the upstream's close is answered, and neither side hangs up": {
      end: async ({ client, up }) => {
        client.holdOpen = up.holdOpen = true;
        up.socket.write(frame(8, closePayload(4000, 'call over'), { mask: null }));
        await until(() => client.frames().length === 1);
        client.socket.write(frame(8, closePayload(4000, 'call over')));
      },
      line: { closeCode: 4000, closeReason: 'call over', closedBy: 'upstream' },
    },
  };
  for (const [what, way] of Object.entries(ways)) {
    it(`${what}: both connections gone within the grace, the slot and minutes given back`, async () => {
      const k = await sessionKey(kg);
      const s = await session(kg, k.key);
      s.client.socket.write(frame(1, 'hello'));
      await until(() => s.up.frames().length === 1);
      await way.end(s);
      await expectBothGone(s.client, s.up, GRACE_MS + 1_000);
      expect(await expectReleased(kg, k.id)).toMatchObject(way.line);
      // A well-formed end for whoever is left: a whole close frame, or (after a frame cut off) none.
      for (const side of [s.client, s.up]) expect(parseFrames(side.read()).frames.filter((f) => f.opcode === 8).length).toBeLessThanOrEqual(1);
      if (way.toOther) {
        const closes = parseFrames(s[way.toOther.side].read()).frames.filter((f) => f.opcode === 8);
        expect(closes.map((f) => closeOf(f).code)).toEqual([way.toOther.code]);
      }
    });
  }

  it("keygate's close that neither side answers (both holding their connections open) is cut after the grace", async () => {
    const k = await sessionKey(kg, { expiresAt: new Date(Date.now() + 2_500).toISOString() });
    const s = await session(kg, k.key);
    s.client.holdOpen = s.up.holdOpen = true;
    expect(await until(() => s.client.frames().length === 1 && s.up.frames().length === 1, 5_000)).toBe(true);
    const closedAt = Date.now();
    expect(closeOf(s.client.frames()[0]!)).toEqual({ code: 1008, reason: 'key_expired' });
    expect(closeOf(s.up.frames()[0]!)).toEqual({ code: 1000, reason: 'key_expired' });
    await expectBothGone(s.client, s.up, GRACE_MS + 1_000);
    expect(Math.min((await s.client.closed).at, (await s.up.closed).at) - closedAt).toBeGreaterThan(GRACE_MS - 200);
    expect(await expectReleased(kg, k.id)).toMatchObject({ closeCode: 1008, closeReason: 'key_expired', closedBy: 'keygate' });
  });
});

describe("the session's line counts what each side carried, as it passed", () => {
  it('counts messages whole (fragments, zero-length frames), payload bytes as relayed, and no control frame', async () => {
    const k = await sessionKey(kg);
    const { client, up } = await session(kg, k.key);
    const fromUpstream = [
      frame(1, 'hey', { mask: null }), // 1 message, 3 bytes
      frame(1, 'a', { mask: null, fin: false }), frame(10, 'pong', { mask: null }), frame(0, 'bc', { mask: null }), // 1 message, 3 bytes
      frame(9, 'ping!', { mask: null }),
      frame(2, randomBytes(500), { mask: null }).subarray(0, 104), // 100 bytes of a frame never finished (after a 4-byte header)
    ];
    const fromClient = [
      frame(1, 'hello'), // 1 message, 5 bytes
      frame(2, 'ab', { fin: false }), frame(9, 'p'), frame(0, 'cd', { fin: false }), frame(0, '', { fin: true }), // 1 message, 4 bytes
      frame(2, ''), // 1 message, 0 bytes
      frame(10, 'pong'),
      frame(2, randomBytes(3000)).subarray(0, 1008), // 1000 bytes of a frame never finished (after an 8-byte header)
    ];
    up.socket.write(Buffer.concat(fromUpstream));
    client.socket.write(Buffer.concat(fromClient));
    expect(await until(() => client.bytes() === Buffer.concat(fromUpstream).length && up.bytes() === Buffer.concat(fromClient).length)).toBe(true);
    up.holdOpen = true;
    client.socket.resetAndDestroy();
    await expectBothGone(client, up, GRACE_MS + 1_000);
    expect(await expectReleased(kg, k.id)).toMatchObject({ clientMessages: 3, clientBytes: 1009, upstreamMessages: 2, upstreamBytes: 106 });
  });
});
