import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { createTenant } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { certificateAuthority } from '../helpers/certificates.ts';
import { scratchDir } from '../helpers/tools.ts';
import { closeOf, closePayload, frame, parseFrames, rawClient, sessionLines, until, type RawClient } from '../helpers/ws-raw.ts';

// A wss:// upstream: keygate's upstream leg of a spliced session is a TLS socket, which the splice reads and
// writes as it does a TCP one. The upstream is a real `https` server with `ws` behind it, its certificate issued
// by a CA made here and trusted by keygate through NODE_EXTRA_CA_CERTS; the client is a raw TCP socket, so what
// it reads is checked byte for byte, and what the upstream read is tapped off its TLS socket (decrypted).

const servers = useServers();
const MAX = 70_000; // above 65535: the 64-bit length form carries a message the cap allows
const dir = scratchDir('wss-upstream');
const f = (name: string) => join(dir, name);

interface UpstreamConn {
  ws: WebSocket;
  /** The upstream's TLS socket, and the TCP connection under it. */
  tls: TLSSocket;
  tcp: Socket;
  /** Everything the upstream read after its handshake, decrypted, as it came. */
  read(): Buffer;
  messages: Array<{ data: Buffer; binary: boolean }>;
  pings: string[];
  pongs: string[];
  closed: Promise<{ code: number; reason: string }>;
}

let https: Server;
let wss: WebSocketServer;
const conns: UpstreamConn[] = [];
let upstreamUrl: string;
let kg: KeygateProcess;
let key: string;
let keyId: string;

beforeAll(async () => {
  certificateAuthority(dir, 'wss-test-ca').issue('upstream', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');

  https = createServer({ cert: readFileSync(f('upstream.crt')), key: readFileSync(f('upstream.key')) });
  // The TCP connection under each TLS one, found by its port: a hard reset is sent on it (a TLS socket has none).
  const tcpByPort = new Map<number, Socket>();
  https.on('connection', (tcp: Socket) => {
    const port = tcp.remotePort!;
    tcpByPort.set(port, tcp);
    tcp.once('close', () => tcpByPort.delete(port));
  });
  wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 24 });
  https.on('upgrade', (req, socket: TLSSocket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Copied before `ws` reads them: it unmasks the client's frames in place.
      const chunks: Buffer[] = [];
      socket.prependListener('data', (c: Buffer) => chunks.push(Buffer.from(c)));
      const conn: UpstreamConn = {
        ws,
        tls: socket,
        tcp: tcpByPort.get(socket.remotePort!)!,
        read: () => Buffer.concat(chunks),
        messages: [],
        pings: [],
        pongs: [],
        closed: new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() }))),
      };
      ws.on('message', (data: Buffer, binary) => conn.messages.push({ data, binary }));
      ws.on('ping', (d) => conn.pings.push(d.toString()));
      ws.on('pong', (d) => conn.pongs.push(d.toString()));
      ws.on('error', () => {});
      conns.push(conn);
    });
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  upstreamUrl = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
  kg = await servers.keygate({ upstream: upstreamUrl, env: { NODE_EXTRA_CA_CERTS: f('ca.crt') }, config: { websocket: { maxPayloadBytes: MAX } } });
  const made = await createTenant(kg, { name: 'wss-upstream', plan: 'pro' });
  key = made.key;
  keyId = made.apiKey.id;
});
afterAll(async () => {
  for (const c of conns) c.tls.destroy();
  wss?.close();
  await new Promise((r) => https?.close(r));
});

/** A raw client's session through keygate to the TLS upstream. */
async function session(): Promise<{ client: RawClient; up: UpstreamConn }> {
  const before = conns.length;
  const client = await rawClient(kg, key);
  expect(await until(() => conns.length === before + 1)).toBe(true);
  const up = conns[before]!;
  // It is TLS on the upstream leg: keygate dialled wss://, and verified the certificate against the CA it was given.
  expect(up.tls).toBeInstanceOf(TLSSocket);
  expect(up.tls.encrypted).toBe(true);
  return { client, up };
}

/** The frame as a server (`ws` upstream) puts it on the wire: unmasked. */
const fromServer = (opcode: number, payload: Buffer | string, fin = true) => frame(opcode, payload, { mask: null, fin });

describe('a wss:// upstream', () => {
  it('is refused when its certificate is not trusted: 502, no session', async () => {
    const untrusting = await servers.keygate({ upstream: upstreamUrl, config: { websocket: { maxPayloadBytes: MAX } } });
    const made = await createTenant(untrusting, { name: 'wss-untrusted', plan: 'pro' });
    const before = conns.length;
    await expect(rawClient(untrusting, made.key)).rejects.toThrow(/not upgraded: HTTP\/1\.1 502 /);
    expect(conns.length).toBe(before);
    await untrusting.stop();
  });

  it('relays frames both ways as they came: text, binary in every length form, fragmented, ping and pong', async () => {
    const { client, up } = await session();
    const big = randomBytes(MAX);
    const mid = randomBytes(1000);
    // From the client, masked: a message in three fragments with a ping between its fragments.
    const fromClient = [
      frame(1, 'hello'),
      frame(2, mid),
      frame(2, big),
      frame(1, 'one ', { fin: false }),
      frame(9, 'ping!'),
      frame(0, 'two ', { fin: false }),
      frame(0, 'three'),
      frame(10, 'unsolicited'),
    ];
    client.socket.write(Buffer.concat(fromClient));
    const sent = Buffer.concat(fromClient);
    expect(await until(() => up.read().length >= sent.length)).toBe(true);
    expect(up.read().equals(sent)).toBe(true);
    await expect.poll(() => up.messages.length).toBe(4);
    expect(up.messages.map((m) => m.binary)).toEqual([false, true, true, false]);
    expect(up.messages[0]!.data.toString()).toBe('hello');
    expect(up.messages[1]!.data.equals(mid)).toBe(true);
    expect(up.messages[2]!.data.equals(big)).toBe(true);
    expect(up.messages[3]!.data.toString()).toBe('one two three');
    expect(up.pings).toEqual(['ping!']);
    expect(up.pongs).toEqual(['unsolicited']);
    // `ws` answered the client's ping with a pong of the same payload.
    const pong = fromServer(10, 'ping!');
    expect(await until(() => client.bytes() >= pong.length)).toBe(true);

    // From the upstream, unmasked: the same kinds, fragmented with a ping between, and a pong of its own.
    up.ws.send('hello from upstream');
    up.ws.send(mid);
    up.ws.send(big);
    up.ws.send('un ', { fin: false });
    up.ws.ping('up-ping');
    up.ws.send('deux ', { fin: false });
    up.ws.send('trois', { fin: true });
    up.ws.pong('up-pong');
    const expected = Buffer.concat([
      pong,
      fromServer(1, 'hello from upstream'),
      fromServer(2, mid),
      fromServer(2, big),
      fromServer(1, 'un ', false),
      fromServer(9, 'up-ping'),
      fromServer(0, 'deux ', false),
      fromServer(0, 'trois'),
      fromServer(10, 'up-pong'),
    ]);
    expect(await until(() => client.bytes() >= expected.length)).toBe(true);
    expect(client.read().equals(expected)).toBe(true);
    // The client's pong to the upstream's ping reaches it.
    client.socket.write(frame(10, 'up-ping'));
    await expect.poll(() => up.pongs).toEqual(['unsolicited', 'up-ping']);
    client.socket.destroy();
    await up.closed;
  });

  for (const [what, send] of [
    ['in one frame', (ws: WebSocket) => ws.send(randomBytes(MAX + 1))],
    [
      'fragmented',
      (ws: WebSocket) => {
        ws.send(randomBytes(MAX / 2), { fin: false });
        ws.send(randomBytes(MAX / 2 + 1), { fin: true });
      },
    ],
  ] as const) {
    it(`a message over websocket.maxPayloadBytes from the upstream (${what}) is never relayed: 1009 to both`, async () => {
      const { client, up } = await session();
      up.ws.send('before');
      expect(await until(() => client.frames().length === 1)).toBe(true);
      send(up.ws);
      expect(await up.closed).toEqual({ code: 1009, reason: 'message_too_large' });
      await client.closed;
      const got = client.frames();
      // The message's first fragment fits, and goes; nothing of the frame that takes it over the cap does.
      expect(got.map((f) => f.opcode)).toEqual(what === 'fragmented' ? [1, 2, 8] : [1, 8]);
      expect(got[0]!.payload.toString()).toBe('before');
      expect(closeOf(got.at(-1)!)).toEqual({ code: 1009, reason: 'message_too_large' });
      expect(parseFrames(client.read()).rest).toBe(0);
    });
  }

  it("the upstream's close reaches the client with its code and reason, and the client's answer reaches the upstream", async () => {
    const { client, up } = await session();
    up.ws.close(4000, 'call over');
    expect(await until(() => client.frames().length === 1)).toBe(true);
    expect(client.frames()[0]!.opcode).toBe(8);
    expect(closeOf(client.frames()[0]!)).toEqual({ code: 4000, reason: 'call over' });
    client.socket.write(frame(8, closePayload(4000, 'call over')));
    expect(await up.closed).toEqual({ code: 4000, reason: 'call over' });
    await client.closed;
    expect(client.frames()).toHaveLength(1);
    await expect.poll(() => sessionLines(kg, keyId).at(-1)).toMatchObject({ closeCode: 4000, closeReason: 'call over', closedBy: 'upstream' });
  });

  it('a hard reset of the upstream connection gives the client 1014', async () => {
    const { client, up } = await session();
    up.ws.send('before');
    expect(await until(() => client.frames().length === 1)).toBe(true);
    const lines = sessionLines(kg, keyId).length;
    up.tcp.resetAndDestroy();
    await client.closed;
    expect(client.frames().map((f) => f.opcode)).toEqual([1, 8]);
    expect(closeOf(client.frames()[1]!)).toEqual({ code: 1014, reason: '' });
    expect(parseFrames(client.read()).rest).toBe(0);
    await expect.poll(() => sessionLines(kg, keyId).length).toBe(lines + 1);
    expect(sessionLines(kg, keyId).at(-1)).toMatchObject({ closeCode: 1006, closedBy: 'upstream' });
  });
});
