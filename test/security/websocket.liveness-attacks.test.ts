import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { closeOf, closePayload, frame, parseFrames, rawClient, sessionLines, sleep, startRawUpstream, until, type Frame, type Peer, type RawClient, type RawConn, type RawUpstream } from '../helpers/ws-raw.ts';

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

/** Answers every ping `peer` reads with its pong, masked as its side must (a client's frames are). */
function answerPings(peer: Peer, masked: boolean): void {
  let answered = 0;
  peer.socket.on('data', () => {
    const pings = peer.frames().filter((f) => f.opcode === 0x9);
    for (; answered < pings.length; answered++) peer.socket.write(frame(0xa, pings[answered]!.payload, { mask: masked ? undefined : null }));
  });
}

const pingsIn = (frames: Frame[]) => frames.filter((f) => f.opcode === 0x9);
const closeIn = (frames: Frame[]) => {
  const f = frames.find((x) => x.opcode === 0x8);
  return f ? closeOf(f) : null;
};

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
