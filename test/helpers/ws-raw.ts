import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import WebSocket from 'ws';
import type { KeygateProcess } from './keygate.ts';

// WebSocket at the byte level, for tests that attack a live session: frames built by hand (any length form, any
// masking, any bits), a parser for what a peer read, a client that speaks to keygate over a plain TCP socket, and
// an upstream that answers the handshake itself and then does whatever its test says.

export interface FrameOpts {
  fin?: boolean;
  /** The reserved bits, as they sit in the first byte (0x40, 0x20, 0x10). */
  rsv?: number;
  /** Masked as a client's frames are (the default: a random key), or not (null). */
  mask?: Buffer | null;
  /** The length form to write the payload length in (the shortest that fits when not given). */
  form?: 7 | 16 | 64;
  /** A length to claim in the header instead of the payload's (the payload is then only what is given); a bigint for any 64-bit one. */
  claim?: number | bigint;
}

/** One frame, as an endpoint would put it on the wire. */
export function frame(opcode: number, payload: Buffer | string, opts: FrameOpts = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = opts.claim ?? data.length;
  const form = opts.form ?? (len < 126 ? 7 : len < 65536 ? 16 : 64);
  const mask = opts.mask === undefined ? randomBytes(4) : opts.mask;
  const head = Buffer.alloc(2 + (form === 16 ? 2 : form === 64 ? 8 : 0));
  head[0] = ((opts.fin ?? true) ? 0x80 : 0) | (opts.rsv ?? 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (form === 7 ? Number(len) : form === 16 ? 126 : 127);
  if (form === 16) head.writeUInt16BE(Number(len), 2);
  if (form === 64) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, data]);
  return Buffer.concat([head, mask, Buffer.from(data.map((b, i) => b ^ mask[i & 3]!))]);
}

/** A close frame's payload: the code, then the reason. */
export const closePayload = (code: number, reason: Buffer | string = ''): Buffer =>
  Buffer.concat([Buffer.from([code >> 8, code & 0xff]), typeof reason === 'string' ? Buffer.from(reason) : reason]);

export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Unmasked. */
  payload: Buffer;
}

/** The whole frames in `buf`, and the bytes after the last of them (an incomplete frame, if any). */
export function parseFrames(buf: Buffer): { frames: Frame[]; rest: number } {
  const frames: Frame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let start = at + 2;
    if (len === 126) {
      if (buf.length < start + 2) break;
      len = buf.readUInt16BE(start);
      start += 2;
    } else if (len === 127) {
      if (buf.length < start + 8) break;
      len = Number(buf.readBigUInt64BE(start));
      start += 8;
    }
    const mask = masked ? buf.subarray(start, start + 4) : null;
    if (masked) start += 4;
    if (buf.length < start + len) break;
    const payload = Buffer.from(buf.subarray(start, start + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, payload });
    at = start + len;
  }
  return { frames, rest: buf.length - at };
}

/** A close frame's code and reason (1005 for one without a code). */
export function closeOf(f: Frame): { code: number; reason: string } {
  return f.payload.length < 2 ? { code: 1005, reason: '' } : { code: f.payload.readUInt16BE(0), reason: f.payload.toString('utf8', 2) };
}

/** Answers every ping `peer` reads with its pong, masked as its side must (a client's frames are). */
export function answerPings(peer: Peer, masked: boolean): void {
  let answered = 0;
  peer.socket.on('data', () => {
    const pings = peer.frames().filter((f) => f.opcode === 0x9);
    for (; answered < pings.length; answered++) peer.socket.write(frame(0xa, pings[answered]!.payload, { mask: masked ? undefined : null }));
  });
}

/** The pings among `frames`. */
export const pingsIn = (frames: Frame[]): Frame[] => frames.filter((f) => f.opcode === 0x9);

/** The code and reason of the first close frame among `frames`, or null. */
export const closeIn = (frames: Frame[]): { code: number; reason: string } | null => {
  const f = frames.find((x) => x.opcode === 0x8);
  return f ? closeOf(f) : null;
};

/** A WebSocket opened through keygate: the open socket, or the refusal's status and error code. */
export function openWebSocket(kg: KeygateProcess, path: string, protocols: string[] = [], headers: Record<string, string> = {}): Promise<{ ws: WebSocket } | { status: number; code: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}${path}`, protocols, { headers });
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(body).error.code }));
    });
    ws.once('error', () => resolve({ status: 0, code: 'error' }));
  });
}

/**
 * A WebSocket opened through keygate at `path` with `key`, which sends "hello": the first message back, or how the
 * upgrade failed (`refused <status>`, `error <message>`).
 */
export function firstReply(port: number, key: string, path: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { 'x-api-key': key } });
    ws.once('open', () => ws.send('hello'));
    ws.once('message', (data) => {
      resolve(data.toString());
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => resolve(`refused ${res.statusCode}`));
    ws.once('error', (err) => resolve(`error ${err.message}`));
  });
}

/** One side of a connection as the test sees it: what was read from it since the handshake, and its end. */
export interface Peer {
  socket: Socket;
  /** Everything read since the handshake. */
  read(): Buffer;
  /** How many bytes were read since the handshake (without keeping them, once `keep` is off). */
  bytes(): number;
  /** Stop keeping what is read (a flood would otherwise be held by the test). */
  keep: boolean;
  frames(): Frame[];
  /** Resolves when the socket has closed; `at` is when. */
  closed: Promise<{ at: number; error: boolean }>;
  /** The remote end sent its FIN. */
  ended: boolean;
  /** Answer the remote end's FIN with ours (the default), or hold this side open as a hostile peer would. */
  holdOpen: boolean;
}

function peerOf(socket: Socket, first: Buffer): Peer {
  const chunks: Buffer[] = first.length ? [first] : [];
  let count = first.length;
  const peer: Peer = {
    socket,
    keep: true,
    ended: false,
    holdOpen: false,
    read: () => Buffer.concat(chunks),
    bytes: () => count,
    frames: () => parseFrames(peer.read()).frames,
    closed: new Promise((r) => {
      let error = false;
      socket.on('error', () => (error = true));
      socket.once('close', () => r({ at: Date.now(), error }));
    }),
  };
  socket.on('data', (c: Buffer) => {
    count += c.length;
    if (peer.keep) chunks.push(c);
  });
  socket.on('end', () => {
    peer.ended = true;
    if (!peer.holdOpen) socket.end();
  });
  return peer;
}

/** Waits until `what` holds; false if it did not within `ms`. */
export async function until(what: () => boolean, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls `then` once a whole HTTP head has come on `socket`, with the head and what came after it. */
function afterHead(socket: Socket, then: (head: string, rest: Buffer) => void): void {
  let got = Buffer.alloc(0);
  const onData = (c: Buffer) => {
    got = Buffer.concat([got, c]);
    const end = got.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    then(got.subarray(0, end).toString(), got.subarray(end + 4));
  };
  socket.on('data', onData);
}

export interface RawClient extends Peer {
  /** The 101's head. */
  head: string;
}

/**
 * A client on a plain TCP socket: the upgrade request (with `after` written in the same write, e.g. its first
 * frames), resolved once the 101 has come. What came after the 101 is the start of `read()`.
 */
export function rawClient(kg: KeygateProcess, key: string, path = '/v1/voice/raw/stream', after: Buffer = Buffer.alloc(0)): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: kg.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.setNoDelay(true);
    socket.once('error', reject);
    afterHead(socket, (head, rest) => {
      socket.off('error', reject);
      if (!/^HTTP\/1\.1 101 /.test(head)) {
        socket.destroy();
        return reject(new Error(`not upgraded: ${head}`));
      }
      resolve(Object.assign(peerOf(socket, rest), { head }));
    });
    const request = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', `X-API-Key: ${key}`, '', ''].join('\r\n');
    socket.write(Buffer.concat([Buffer.from(request), after]));
  });
}

export interface RawConn extends Peer {
  path: string;
  /** Answers the handshake with a 101, with `after` in the same write (e.g. the upstream's first frames). */
  accept(after?: Buffer): void;
}

export interface RawUpstream {
  url: string;
  server: Server;
  conns: RawConn[];
  /** The next connection to arrive. */
  next(): Promise<RawConn>;
  close(): Promise<void>;
}

/**
 * An upstream that does its own handshake: each upgrade request is handed to `onConn` (which decides when to
 * accept and what to send) with what its client sent after the request in `read()`.
 */
export async function startRawUpstream(onConn: (c: RawConn) => void = (c) => c.accept()): Promise<RawUpstream> {
  const conns: RawConn[] = [];
  const waiting: Array<(c: RawConn) => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    afterHead(socket, (head, rest) => {
      const key = /^sec-websocket-key: *(.+)$/im.exec(head)?.[1]?.trim() ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      const conn: RawConn = Object.assign(peerOf(socket, rest), {
        path: head.split(' ')[1] ?? '',
        accept(after: Buffer = Buffer.alloc(0)) {
          const reply = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, '', ''].join('\r\n');
          socket.write(Buffer.concat([Buffer.from(reply), after]));
        },
      });
      conns.push(conn);
      waiting.shift()?.(conn);
      onConn(conn);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    conns,
    next: () => new Promise((r) => waiting.push(r)),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A metric's value on keygate's internal listener (0 when absent). */
export async function metric(kg: KeygateProcess, name: string): Promise<number> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? 0);
}

/** The session lines keygate wrote for a key, parsed. */
export const sessionLines = (kg: KeygateProcess, keyId: string): Array<Record<string, any>> =>
  kg
    .output()
    .split('\n')
    .filter((l) => l.includes('"msg":"websocket session"') && l.includes(`"keyId":"${keyId}"`))
    .map((l) => JSON.parse(l));

/** keygate's resident set (VmRSS), in bytes. */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}
