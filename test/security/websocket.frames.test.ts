import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { closeOf, frame, parseFrames, type Frame } from '../helpers/ws-raw.ts';

// A live session's frames pass through keygate as they came (only their headers are read). What a client sends
// at the frame level, byte by byte, against a real `ws` upstream: frames split anywhere still arrive whole;
// a message over the cap (one frame, or a fragmented one) and frames no client may send are never relayed, and
// both sides are closed (1009, 1002); keygate's own close comes after the frame in flight, never inside it; pings
// go end to end.

const servers = useServers();
const MAX = 4096;

interface UpstreamConn {
  ws: WebSocket;
  messages: Buffer[];
  pings: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
}
let upstream: WebSocketServer;
const conns: UpstreamConn[] = [];
let kg: KeygateProcess;

beforeAll(async () => {
  // Echoes each message; records messages and pings (ws answers pings with pongs itself).
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 1 << 24 });
  await new Promise((r) => upstream.once('listening', r));
  upstream.on('connection', (ws) => {
    const conn: UpstreamConn = { ws, messages: [], pings: [], closed: new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() }))) };
    conns.push(conn);
    ws.on('message', (data: Buffer, isBinary) => {
      conn.messages.push(data);
      ws.send(data, { binary: isBinary });
    });
    ws.on('ping', (data) => conn.pings.push(data));
  });
  kg = await servers.keygate({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, config: { websocket: { maxPayloadBytes: MAX } } });
});
afterAll(() => {
  upstream?.close();
});

/** What the client read: frames from the server, which are never masked. */
function serverFrames(buf: Buffer): Frame[] {
  const { frames } = parseFrames(buf);
  expect(frames.filter((f) => f.masked)).toEqual([]);
  return frames;
}

/** A raw client past its handshake: what it has read since, and when its connection closed. */
async function rawSession(key: string): Promise<{ socket: Socket; read: () => Buffer; ended: Promise<void>; conn: UpstreamConn }> {
  const before = conns.length;
  const socket = connect(kg.port, '127.0.0.1');
  socket.setNoDelay(true);
  let got = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
  const ended = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write(
    ['GET /v1/voice/asst_1/stream HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', `X-API-Key: ${key}`, '', ''].join('\r\n'),
  );
  await expect.poll(() => got.indexOf('\r\n\r\n')).toBeGreaterThan(0);
  const head = got.subarray(0, got.indexOf('\r\n\r\n')).toString();
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  got = got.subarray(got.indexOf('\r\n\r\n') + 4);
  await expect.poll(() => conns.length).toBe(before + 1);
  return { socket, read: () => got, ended, conn: conns.at(-1)! };
}

describe('frames through a live session', () => {
  it('relays frames split at every byte, fragmented messages and pings, as the client sent them', async () => {
    const { key } = await createTenant(kg, { name: 'frames-split', plan: 'pro' });
    const s = await rawSession(key);
    const message = Buffer.from('a frame sent one byte at a time, header included');
    for (const byte of frame(2, message)) {
      s.socket.write(Buffer.from([byte]));
      await new Promise((r) => setTimeout(r, 2));
    }
    // A message in three fragments with a ping between them, in one write.
    s.socket.write(Buffer.concat([frame(1, Buffer.from('one ')), frame(9, Buffer.from('ping!')), frame(0, Buffer.from('two '), { fin: false }), frame(0, Buffer.from('three'))].map((f, i) => (i === 0 ? Buffer.from([f[0]! & 0x7f, ...f.subarray(1)]) : f))));
    await expect.poll(() => s.conn.messages.map(String)).toEqual([message.toString(), 'one two three']);
    expect(s.conn.pings.map(String)).toEqual(['ping!']);
    // The echoes came back whole, and the upstream's pong to the client's ping with them.
    await expect.poll(() => serverFrames(s.read()).filter((f) => f.opcode !== 10).map((f) => f.payload.toString())).toEqual([message.toString(), 'one two three']);
    expect(serverFrames(s.read()).filter((f) => f.opcode === 10).map((f) => f.payload.toString())).toEqual(['ping!']);
    // The client's close goes to the upstream, whose answer comes back; then both connections end.
    s.socket.write(frame(8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])));
    expect(await s.conn.closed).toEqual({ code: 1000, reason: 'bye' });
    await s.ended;
    expect(closeOf(serverFrames(s.read()).at(-1)!)).toEqual({ code: 1000, reason: 'bye' });
  });

  it('never relays a message over the cap, in one frame or fragmented: 1009 to both sides', async () => {
    const { key } = await createTenant(kg, { name: 'frames-big', plan: 'pro' });
    for (const send of [
      [frame(2, Buffer.alloc(MAX + 1, 1))],
      [frame(2, Buffer.alloc(MAX / 2, 1), { fin: false }), frame(0, Buffer.alloc(MAX / 2, 2), { fin: false }), frame(0, Buffer.alloc(1, 3))],
      // A 64-bit length no cap could hold.
      [Buffer.concat([Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), randomBytes(4)])],
    ]) {
      const s = await rawSession(key);
      s.socket.write(frame(2, Buffer.from('fits')));
      await expect.poll(() => s.conn.messages.length).toBe(1);
      s.socket.write(Buffer.concat(send));
      expect(await s.conn.closed).toEqual({ code: 1009, reason: 'message_too_large' });
      await s.ended;
      expect(s.conn.messages.map(String)).toEqual(['fits']);
      expect(closeOf(serverFrames(s.read()).at(-1)!)).toEqual({ code: 1009, reason: 'message_too_large' });
    }
  });

  it('closes both sides with 1002 for a frame no client may send, and relays none of it', async () => {
    const { key } = await createTenant(kg, { name: 'frames-bad', plan: 'pro' });
    const bad: Record<string, Buffer> = {
      unmasked: frame(2, Buffer.from('unmasked'), { mask: null }),
      'reserved bit (no extension was negotiated)': frame(2, Buffer.from('rsv1'), { rsv: 0x40 }),
      'unknown opcode': frame(3, Buffer.from('op3')),
      'fragmented ping': frame(9, Buffer.from('ping'), { fin: false }),
      'continuation outside a message': frame(0, Buffer.from('cont')),
      'new message inside a fragmented one': Buffer.concat([frame(2, Buffer.from('first'), { fin: false }), frame(2, Buffer.from('second'))]),
      // Malformed, not too large: the other 63 bits claim 4 bytes, and 4 come.
      '64-bit length with its most significant bit set': frame(2, Buffer.from('msb!'), { claim: 2n ** 63n + 4n, form: 64 }),
    };
    for (const [what, bytes] of Object.entries(bad)) {
      const s = await rawSession(key);
      s.socket.write(bytes);
      expect({ what, ...(await s.conn.closed) }).toEqual({ what, code: 1002, reason: 'protocol_error' });
      await s.ended;
      expect({ what, messages: s.conn.messages.length }).toEqual({ what, messages: 0 });
      expect(closeOf(serverFrames(s.read()).at(-1)!)).toEqual({ code: 1002, reason: 'protocol_error' });
    }
  });

  it("sends keygate's own close after the frame in flight, never inside it", async () => {
    const { tenant, key } = await createTenant(kg, { name: 'frames-revoke', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', {});
    const s = await rawSession(made.body.key);
    const message = randomBytes(3000);
    const bytes = frame(2, message);
    s.socket.write(bytes.subarray(0, 1000)); // the header and part of the payload
    await new Promise((r) => setTimeout(r, 100));
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.body.id}`)).status).toBe(204);
    // The client is told at once (nothing was in flight to it)...
    await expect.poll(() => serverFrames(s.read()).some((f) => f.opcode === 8)).toBe(true);
    expect(closeOf(serverFrames(s.read()).at(-1)!)).toEqual({ code: 1008, reason: 'key_revoked' });
    // ...the upstream once the client's frame is whole: the message, then the close.
    s.socket.write(bytes.subarray(1000));
    expect(await s.conn.closed).toEqual({ code: 1000, reason: 'key_revoked' });
    expect(s.conn.messages).toHaveLength(1);
    expect(s.conn.messages[0]!.equals(message)).toBe(true);
    s.socket.end(frame(8, Buffer.from([0x03, 0xf0])));
    await s.ended;
  });
});
