import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { answerPings, closeIn, frame, metric, parseFrames, pingsIn, rawClient, sessionLines, sleep, startRawUpstream, until, type RawUpstream } from '../helpers/ws-raw.ts';

// A side of a session that vanishes without a word (no close frame, no FIN: a phone out of coverage, a NAT that
// forgot the connection) must not hold the session, its slot and its metered minutes for as long as TCP keeps a
// silent connection. keygate pings a side that has been silent for a ping interval and ends the session when a
// side has sent nothing at all, not even a pong, for the idle timeout; a side that answers pings stays, however
// quiet, and a side that talks is never pinged. Seen from both ends over raw TCP sockets (the upstream answers its
// handshake itself), so every byte keygate writes is checked.

const PING_S = 0.5;
const IDLE_S = 1.5;
const servers = useServers();
let upstream: RawUpstream;
let kg: KeygateProcess;
let owner: string;
let tenantId: string;

beforeAll(async () => {
  upstream = await startRawUpstream();
  kg = await servers.keygate({ upstream: upstream.url, config: { websocket: { pingIntervalSeconds: PING_S, idleTimeoutSeconds: IDLE_S } } });
  const made = await createTenant(kg, { name: 'liveness', plan: 'pro' });
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



describe('a side gone silent', () => {
  it('a client that answers nothing is pinged, then taken for gone: both sides closed, its slot given back', async () => {
    const { id, key } = await sessionKey();
    const next = upstream.next();
    const client = await rawClient(kg, key);
    const opened = Date.now();
    const up = await next;
    answerPings(up, false);
    // The client says nothing at all from now on, and answers no ping.
    expect(await until(() => closeIn(up.frames()) !== null, 10_000)).toBe(true);
    const lasted = Date.now() - opened;
    // keygate's pings to the client: unmasked (keygate is its server), its own payload, before the close.
    const toClient = client.frames();
    expect(pingsIn(toClient).length).toBeGreaterThanOrEqual(1);
    for (const p of pingsIn(toClient)) expect({ masked: p.masked, payload: p.payload.toString() }).toEqual({ masked: false, payload: 'keygate' });
    expect(closeIn(up.frames())).toEqual({ code: 1001, reason: 'client_idle' });
    expect(await until(() => closeIn(client.frames()) !== null, 3_000)).toBe(true);
    expect(closeIn(client.frames())).toEqual({ code: 1001, reason: 'client_idle' });
    // Not before the idle timeout: a silent side is given that long.
    expect(lasted).toBeGreaterThanOrEqual(IDLE_S * 1000);
    // Both connections are cut (the client holds its end open, as a vanished one does) and the session is over.
    await Promise.all([client.closed, up.closed]);
    expect(await until(() => sessionLines(kg, id).length === 1, 3_000)).toBe(true);
    expect(sessionLines(kg, id)[0]).toMatchObject({ closeCode: 1001, closeReason: 'client_idle', closedBy: 'keygate' });
    await expect.poll(() => servers.redis.client.zcard(`kg:{${tenantId}}:ws:${id}`)).toBe(0);
    await expect.poll(() => metric(kg, 'keygate_websocket_connections')).toBe(0);
    // Its one slot is free: the key opens a session again.
    const again = upstream.next();
    const second = await rawClient(kg, key);
    second.socket.destroy();
    (await again).socket.destroy();
  });

  it('an upstream that answers nothing is taken for gone: the client gets 1014, the upstream 1001', async () => {
    const { id, key } = await sessionKey();
    const next = upstream.next();
    const client = await rawClient(kg, key);
    const up = await next;
    answerPings(client, true);
    // The upstream says nothing and answers no ping: keygate's pings to it are masked (keygate is its client).
    expect(await until(() => closeIn(client.frames()) !== null, 10_000)).toBe(true);
    expect(closeIn(client.frames())).toEqual({ code: 1014, reason: 'upstream_idle' });
    const toUpstream = up.frames();
    expect(pingsIn(toUpstream).length).toBeGreaterThanOrEqual(1);
    for (const p of pingsIn(toUpstream)) expect({ masked: p.masked, payload: p.payload.toString() }).toEqual({ masked: true, payload: 'keygate' });
    expect(closeIn(toUpstream)).toEqual({ code: 1001, reason: 'upstream_idle' });
    expect(await until(() => sessionLines(kg, id).length === 1, 5_000)).toBe(true);
    expect(sessionLines(kg, id)[0]).toMatchObject({ closeCode: 1014, closeReason: 'upstream_idle', closedBy: 'keygate' });
  });

  it('an upstream that stalls half-way through a frame to a quiet client is the one taken for gone', async () => {
    const { id, key } = await sessionKey();
    const next = upstream.next();
    const client = await rawClient(kg, key);
    const up = await next;
    // The client would answer a ping, but keygate's ping to it waits behind the frame the upstream never finishes
    // (and the upstream, inside its own frame, can answer no ping either).
    answerPings(client, true);
    up.socket.write(frame(0x2, Buffer.alloc(3000, 7), { mask: null }).subarray(0, 1500));
    expect(await until(() => sessionLines(kg, id).length === 1, 10_000)).toBe(true);
    expect(sessionLines(kg, id)[0]).toMatchObject({ closeCode: 1014, closeReason: 'upstream_idle', closedBy: 'keygate' });
    expect(closeIn(up.frames())).toEqual({ code: 1001, reason: 'upstream_idle' });
  });
});

describe('a side that is there', () => {
  it('a quiet client that answers pings (as every WebSocket client does by itself) stays, and its session still works', async () => {
    const { id, key } = await sessionKey();
    const next = upstream.next();
    const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/quiet/stream`, { headers: { 'x-api-key': key } });
    const up = await next;
    answerPings(up, false);
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    const closed: number[] = [];
    ws.on('close', (code) => closed.push(code));
    // Three idle timeouts with no message either way: only pings and pongs.
    await sleep(IDLE_S * 3 * 1000);
    expect(closed).toEqual([]);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    // The client's pongs reach the upstream as unsolicited pongs (RFC 6455 §5.5.3), with keygate's payload.
    const fromClient = up.frames();
    expect(fromClient.filter((f) => f.opcode === 0xa).length).toBeGreaterThanOrEqual(2);
    expect(fromClient.filter((f) => f.opcode !== 0xa && f.opcode !== 0x9)).toEqual([]);
    // And the session carries messages as before.
    ws.send('still here');
    expect(await until(() => up.frames().some((f) => f.opcode === 0x1 && f.payload.toString() === 'still here'), 3_000)).toBe(true);
    ws.close(1000, 'bye');
    expect(await until(() => sessionLines(kg, id).length === 1, 5_000)).toBe(true);
    expect(sessionLines(kg, id)[0]).toMatchObject({ closeCode: 1000, closedBy: 'client' });
  });

  it('sides that talk are never pinged', async () => {
    const { key } = await sessionKey();
    const next = upstream.next();
    const client = await rawClient(kg, key);
    const up = await next;
    // Both send a frame every 100 ms (a voice call sends one every 20 ms) for three idle timeouts.
    const talk = setInterval(() => {
      client.socket.write(frame(0x2, Buffer.alloc(32, 1)));
      up.socket.write(frame(0x2, Buffer.alloc(32, 2), { mask: null }));
    }, 100);
    await sleep(IDLE_S * 3 * 1000);
    clearInterval(talk);
    expect(pingsIn(client.frames())).toEqual([]);
    expect(pingsIn(up.frames())).toEqual([]);
    expect(client.frames().length).toBeGreaterThan(20);
    expect(closeIn(client.frames())).toBeNull();
    client.socket.destroy();
  });

  it("keygate's ping never lands inside a frame: it waits for the frame being relayed to the silent side to end", async () => {
    const { key } = await sessionKey();
    const next = upstream.next();
    const client = await rawClient(kg, key);
    const up = await next;
    // The upstream sends half of a 3000-byte frame, then the rest after more than two ping intervals (the silent
    // client's first ping falls due in between), then a small one.
    const big = frame(0x2, Buffer.alloc(3000, 7), { mask: null });
    up.socket.write(big.subarray(0, 1500));
    await sleep(PING_S * 1000 * 2.6);
    up.socket.write(big.subarray(1500));
    up.socket.write(frame(0x1, 'after', { mask: null }));
    expect(await until(() => pingsIn(client.frames()).length >= 1, 5_000)).toBe(true);
    // What the client read is whole frames in order: the big one intact, and the ping only after it.
    const { frames, rest } = parseFrames(client.read());
    expect(rest).toBe(0);
    expect(frames[0]).toMatchObject({ opcode: 0x2, fin: true });
    expect(frames[0]!.payload.equals(Buffer.alloc(3000, 7))).toBe(true);
    const firstPing = frames.findIndex((f) => f.opcode === 0x9);
    expect(firstPing).toBeGreaterThan(0);
    client.socket.destroy();
  });
});
