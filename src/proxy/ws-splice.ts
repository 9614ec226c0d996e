import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

// A live session's two connections, spliced: once `ws` has completed both handshakes, the bytes each side sends
// go to the other as they came, frames intact, as nginx and Envoy relay WebSockets. The client's frames stay
// masked (an upstream requires that of a client) and the upstream's unmasked (a client requires that of a
// server), so nothing is unmasked, re-framed or copied on the way: a read becomes one write. Only each frame's
// header is read, to hold what keygate promises:
// - a message over `maxPayload` bytes (one frame or the sum of a fragmented message's) is never relayed: both
//   sides get 1009 before any of it leaves;
// - a frame no endpoint of this session may send (reserved bits with no extension negotiated, an unknown opcode,
//   the wrong masking for its side, a 64-bit length with its most significant bit set, a fragmented or oversized
//   control frame, a continuation outside a message, a close frame with one byte of payload, a code no endpoint
//   may send or a reason that is not UTF-8) closes both sides with 1002. A close frame (at most 125 bytes of
//   payload) is the one frame held whole and read before it goes: its peer would otherwise get a close it must
//   fail the connection on (a browser's 1006);
// - keygate's own close (the key revoked, its minutes used up, shutdown) is written between frames, after the
//   one being relayed, and nothing follows it;
// - what each side carried is counted as it passes: data frames' payload bytes as they are read, a message once
//   its last frame has been read whole (a frame cut off counts the bytes that came, and no message).
// Pings and pongs pass end to end, as do the endpoints' own close frames (their code and reason as sent). Text
// frames are not checked for UTF-8: the receiving endpoint does that, as it would behind nginx.
//
// Liveness: a side gone without a word (a phone out of coverage, a NAT that forgot the connection) would hold its
// session, its slot and its metered minutes for as long as TCP keeps a silent connection (for ever, when nothing
// is being sent to it). So a side that has sent nothing for a ping interval is pinged (between frames, as
// keygate's close), and every endpoint answers a ping (browsers too, without any script); one that has sent
// nothing at all, pong or frame, for the idle timeout is taken for gone and the session is closed (1001 to the
// upstream for a silent client, 1014 to the client for a silent upstream). Its pong then reaches the other side
// as an unsolicited pong, which RFC 6455 §5.5.3 allows and endpoints ignore. A side that talks is never pinged.
//
// Backpressure: a side is no longer read while its peer's socket holds more than its high-water mark unsent, so
// keygate holds at most that plus one read per direction. The handlers are shared by every session: each socket
// carries its leg. A wss:// upstream's leg is a TLS socket: its stream is the decrypted one, read and written alike.

/** What one direction of a session carried: messages and their payload bytes (the session's line and span). */
export interface Carried {
  messages: number;
  bytes: number;
}

/** How the session ended: the first close frame (keygate's own, or either side's), or 1006 from the side that left without one. */
export interface SpliceEnd {
  code: number;
  reason: string;
  closedBy: 'client' | 'upstream' | 'keygate';
}

/** A connection `ws` handed over after its handshake, and what had already arrived on it. */
export interface Taken {
  socket: Duplex;
  head: Buffer;
}

export interface SpliceOptions {
  /** The largest message either side may send. */
  maxPayload: number;
  /** A side that has sent nothing for this long is pinged, and again each interval it stays silent. */
  pingIntervalMs: number;
  /** A side that has sent nothing, not even a pong, for this long is taken for gone: the session is closed. */
  idleTimeoutMs: number;
}

export interface Splice {
  readonly fromClient: Carried;
  readonly fromUpstream: Carried;
  /** keygate ends the session: `clientCode` to the client, `upstreamCode` to the upstream, each after the frame in flight to it. */
  close(clientCode: number, upstreamCode: number, reason: string): void;
}

/**
 * `ws` completes and checks the handshake (the accept digest, the subprotocol, no extension), then hands the
 * connection over here instead of framing it itself. Used as the server's `WebSocket` class and for the dial.
 */
export class Handshake extends WebSocket {
  taken: Taken | null = null;

  // `ws` calls this once the handshake is complete, on the server (handleUpgrade) and on the client (the dial's
  // 'upgrade'); it is where `ws` would attach its own reader and writer.
  setSocket(socket: Duplex, head: Buffer): void {
    socket.pause(); // read only once the session starts
    this.taken = { socket, head };
    this.emit('open');
  }

  /** Before the handshake completes, `ws`'s own; after, the connection it handed over. */
  override terminate(): void {
    if (this.taken) this.taken.socket.destroy();
    else super.terminate();
  }
}

const LEG = Symbol('splice leg');
/** After keygate's close, or a side's close handshake, how long either side may take to hang up before it is cut. */
const CLOSE_GRACE_MS = 2_000;
const NOT_IN_MESSAGE = -1;

interface Session {
  maxPayload: number;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  /** Pings silent sides and ends the session when one stays silent for the idle timeout. */
  liveness: NodeJS.Timeout | null;
  /** How the session ends: the first close frame, keygate's own or either side's. */
  first: SpliceEnd | null;
  closedByKeygate: boolean;
  ended: ((end: SpliceEnd) => void) | null;
  grace: NodeJS.Timeout | null;
  client: Leg;
  upstream: Leg;
}

/** One side's connection: what is read from it, and what has been written to it. */
interface Leg {
  side: 'client' | 'upstream';
  socket: Duplex;
  peer: Leg;
  session: Session;
  /** Frames read from this side must be masked: the client's. */
  masked: boolean;
  carried: Carried;
  // Reading this side:
  /** An incomplete frame header from the last read, held back (never relayed until it is whole and allowed). */
  partial: Buffer | null;
  /** Payload bytes of the current frame still to come. */
  remaining: number;
  /** Bytes so far of the message being fragmented, or NOT_IN_MESSAGE. */
  inMessage: number;
  /** The current frame is a data frame (its payload is counted), and the last of its message (counted once whole). */
  data: boolean;
  lastOfMessage: boolean;
  /** The current frame's payload while it is a close frame (at most 125 bytes, held until it is whole), and its mask. */
  closing: Buffer[] | null;
  closeMask: Buffer | null;
  /** Nothing more from this side is relayed: it sent its close frame, or a frame it may not send, or it is gone. */
  stopped: boolean;
  /** This side's close frame arrived. */
  closeReceived: boolean;
  // Writing this side:
  /** A close frame was written to this side (relayed, or keygate's), or it is gone: nothing more is written. */
  closeSent: boolean;
  /** keygate's close frame for this side, written when the frame being relayed to it ends. */
  pendingClose: Buffer | null;
  /** keygate's ping to this side waits for the frame being relayed to it to end. */
  pendingPing: boolean;
  // Liveness:
  /** Something came from this side (or it took what was written to it) since the last liveness check. */
  heard: boolean;
  /** How long this side has been silent, in whole ping intervals, as of the last check. */
  silentMs: number;
  /** Frames went to this side since the last check while keygate's ping to it waited for them to end. */
  waited: boolean;
}

type Sock = Duplex & { [LEG]: Leg };

/** Masks or unmasks `payload` in place (RFC 6455 §5.3: the same XOR both ways). Only close frames are (un)masked here. */
function xorMask(payload: Buffer, mask: Buffer): void {
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
}

/** A close frame without a code says so with no payload at all; this is its code in a `SpliceEnd`. */
const NO_CODE = 1005;

/** A control frame of keygate's own (payload at most 125 bytes); masked toward the upstream (keygate is its client). */
function controlFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const header = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomFillSync(Buffer.allocUnsafe(4));
  const body = Buffer.from(payload);
  xorMask(body, mask);
  return Buffer.concat([header, mask, body]);
}

/** A close frame (NO_CODE: an empty one). */
function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.allocUnsafe(code === NO_CODE ? 0 : 2 + text.length);
  if (code !== NO_CODE) {
    payload.writeUInt16BE(code, 0);
    text.copy(payload, 2);
  }
  return controlFrame(0x8, payload, masked);
}

/** What keygate's pings carry, so that whoever sees the pong can tell whose ping it answers. */
const PING_PAYLOAD = Buffer.from('keygate');

// The codes an endpoint may put in a close frame (RFC 6455 §7.4, and IANA's registry up to 1014), as `ws` checks them.
const mayClose = (code: number): boolean => (code >= 1000 && code <= 1014 && code !== 1004 && code !== NO_CODE && code !== 1006) || (code >= 3000 && code <= 4999);

/** The code and reason of the close frame just read from `leg`; null when no endpoint may send it. */
function parseClose(leg: Leg): { code: number; reason: string } | null {
  const payload = Buffer.concat(leg.closing!);
  if (leg.closeMask) xorMask(payload, leg.closeMask);
  leg.closing = leg.closeMask = null;
  if (payload.length === 0) return { code: NO_CODE, reason: '' };
  if (payload.length === 1) return null;
  const code = payload.readUInt16BE(0);
  const reason = payload.subarray(2);
  return mayClose(code) && isUtf8(reason) ? { code, reason: reason.toString('utf8') } : null;
}

// The side still there when the other's connection is gone is closed with the session's first code; when there
// was none (1006 is never sent, RFC 6455 §7.4.1), the upstream is told the client went away (1001) and the client
// that its gateway lost the upstream (1014, bad gateway); after an empty close, 1000.
const sendable = (code: number, gone: Leg['side']): number => (code === NO_CODE ? 1000 : code === 1006 ? (gone === 'client' ? 1001 : 1014) : code);

/** Writes to `to`; while `to` holds more than its high-water mark unsent, its peer is not read. */
function write(to: Leg, bytes: Buffer): void {
  if (!to.socket.write(bytes)) to.peer.socket.pause();
}

/**
 * A side whose close frames have gone both ways (or that may send nothing more) is done: its connection is ended,
 * and cut after the grace if its end never hangs up too (the session, its slot and its minutes would otherwise
 * stay held for as long as both ends kept their connections open).
 */
function settle(leg: Leg): void {
  if (!leg.closeSent || !(leg.closeReceived || leg.stopped)) return;
  leg.socket.end();
  startGrace(leg.session);
}

function writeClose(to: Leg, frame: Buffer): void {
  to.closeSent = true;
  to.pendingClose = null;
  to.pendingPing = false;
  write(to, frame);
  settle(to);
}

/** Nothing `from` sent is half-relayed: it is between frames, or in a close frame (held until it is whole). */
const atBoundary = (from: Leg): boolean => from.remaining === 0 || from.closing !== null;

/** keygate's close frame to `to`: now if no frame is half-relayed to it, else once that frame ends. */
function sendClose(to: Leg, code: number, reason: string): void {
  if (to.closeSent || to.pendingClose !== null) return;
  const frame = closeFrame(code, reason, to.side === 'upstream');
  if (atBoundary(to.peer) || to.peer.stopped) writeClose(to, frame);
  else to.pendingClose = frame;
}

/** Both connections are cut if they have not closed within the grace. */
function startGrace(s: Session): void {
  s.grace ??= setTimeout(() => {
    s.client.socket.destroy();
    s.upstream.socket.destroy();
  }, CLOSE_GRACE_MS).unref();
}

/** keygate's ping to `to`: now if no frame is half-relayed to it, else once that frame ends. */
function sendPing(to: Leg): void {
  if (to.closeSent || to.pendingClose !== null) return;
  if (atBoundary(to.peer) || to.peer.stopped) write(to, controlFrame(0x9, PING_PAYLOAD, to.side === 'upstream'));
  else to.pendingPing = true;
}

/** One more ping interval of `leg`'s life: true once it has been silent for the idle timeout. */
function silent(leg: Leg): boolean {
  const s = leg.session;
  const waited = leg.waited;
  leg.waited = false;
  if (leg.heard) {
    leg.heard = false;
    leg.silentMs = 0;
    return false;
  }
  // Its ping was held behind a frame still being relayed to it: it has not been asked yet, and it is taking that
  // frame, so this interval is not held against it (a side that stops taking it stops the frame: backpressure
  // pauses its sender, and its silence counts again).
  if (waited) return false;
  leg.silentMs += s.pingIntervalMs;
  // Never before it was pinged once (the first silent interval pings it), even with a timeout within a millisecond
  // of the interval.
  if (leg.silentMs >= s.idleTimeoutMs && leg.silentMs > s.pingIntervalMs) return true;
  sendPing(leg);
  return false;
}

/** Every ping interval: a silent side is pinged; one silent for the idle timeout is gone, and the session with it. */
function checkLiveness(s: Session): void {
  if (s.grace !== null) return; // closing already: the grace ends it
  const clientGone = silent(s.client);
  const upstreamGone = silent(s.upstream);
  // Both silent, and keygate's ping to the client held behind a frame the upstream has not finished, though the
  // client takes what it is sent (no backpressure): the upstream stalled (inside its frame it can answer no ping
  // either), and the client was never asked. A client that stopped reading stalls that frame itself.
  const upstreamStalled = s.client.pendingPing && !s.client.socket.writableNeedDrain;
  if (upstreamGone && (!clientGone || upstreamStalled)) keygateClose(s, 1014, 1001, 'upstream_idle');
  else if (clientGone) keygateClose(s, 1001, 1001, 'client_idle');
}

function keygateClose(s: Session, clientCode: number, upstreamCode: number, reason: string): void {
  if (s.closedByKeygate) return;
  s.closedByKeygate = true;
  // A session one side had begun to close (its close frame went first) is still that side's to have closed.
  s.first ??= { code: clientCode, reason, closedBy: 'keygate' };
  sendClose(s.client, clientCode, reason);
  sendClose(s.upstream, upstreamCode, reason);
  startGrace(s);
}

const PROTOCOL_ERROR = -1002;
const TOO_LARGE = -1009;

/**
 * Reads the frame header at `at` in `c`: its size; 0 when it is not all here yet; PROTOCOL_ERROR or TOO_LARGE when
 * the side may not send it.
 */
function header(leg: Leg, c: Buffer, at: number): number {
  const left = c.length - at;
  if (left < 2) return 0;
  const b0 = c[at]!;
  const b1 = c[at + 1]!;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  const size = 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) + (masked ? 4 : 0);
  if (left < size) return 0;
  const opcode = b0 & 0x0f;
  const fin = (b0 & 0x80) !== 0;
  if ((b0 & 0x70) !== 0 || masked !== leg.masked) return PROTOCOL_ERROR;
  if (length === 126) length = c.readUInt16BE(at + 2);
  else if (length === 127) {
    const high = c.readUInt32BE(at + 2);
    // A 64-bit length's most significant bit must be 0 (RFC 6455 §5.2): with it set the frame is malformed,
    // whatever the other bits say, not merely too large.
    if (high >= 0x8000_0000) return PROTOCOL_ERROR;
    if (high !== 0) return TOO_LARGE;
    length = c.readUInt32BE(at + 6);
  }
  if (opcode >= 8) {
    if (opcode > 10 || !fin || length > 125) return PROTOCOL_ERROR;
    if (opcode === 8) {
      leg.closing = [];
      leg.closeMask = masked ? Buffer.from(c.subarray(at + size - 4, at + size)) : null;
    }
  } else {
    if (opcode === 0 ? leg.inMessage === NOT_IN_MESSAGE : opcode > 2 || leg.inMessage !== NOT_IN_MESSAGE) return PROTOCOL_ERROR;
    const total = (leg.inMessage === NOT_IN_MESSAGE ? 0 : leg.inMessage) + length;
    if (total > leg.session.maxPayload) return TOO_LARGE;
    leg.inMessage = fin ? NOT_IN_MESSAGE : total;
  }
  leg.data = opcode < 8;
  leg.lastOfMessage = fin && opcode < 8;
  leg.remaining = length;
  return size;
}

// Shared by every session: `this` is the socket, which carries its leg.
function onData(this: Duplex, data: Buffer): void {
  const leg = (this as Sock)[LEG];
  leg.heard = true;
  if (leg.stopped) return;
  const to = leg.peer;
  let c = data;
  if (leg.partial !== null) {
    c = Buffer.concat([leg.partial, data]);
    leg.partial = null;
  }
  // c[from, at) has been read and allowed and is not yet written to the peer; from is -1 once nothing more goes to it
  // in this read (keygate closed it, or a close frame is being held).
  let from = to.closeSent || leg.closing !== null ? -1 : 0;
  let at = 0;
  const flush = () => {
    if (from >= 0 && at > from) {
      write(to, c.subarray(from, at));
      if (to.pendingPing) to.waited = true;
    }
    from = -1;
  };
  while (at < c.length) {
    if (leg.remaining === 0) {
      const size = header(leg, c, at);
      if (size < 0) {
        // What came before it is relayed; it and everything after are not, and both sides are closed.
        flush();
        leg.stopped = true;
        keygateClose(leg.session, -size, -size, size === TOO_LARGE ? 'message_too_large' : 'protocol_error');
        settle(leg);
        return;
      }
      if (size === 0) {
        leg.partial = Buffer.from(c.subarray(at));
        break;
      }
      if (leg.closing !== null) flush(); // what came before it goes; the close frame is held until it is whole
      at += size;
      if (leg.remaining > 0) continue;
    } else {
      const n = Math.min(leg.remaining, c.length - at);
      if (leg.data) leg.carried.bytes += n;
      else leg.closing?.push(c.subarray(at, at + n));
      leg.remaining -= n;
      at += n;
      if (leg.remaining > 0) continue;
    }
    // A frame from this side has ended at `at`.
    if (leg.lastOfMessage) leg.carried.messages++;
    if (leg.closing !== null) {
      // Its close frame, the last thing it sends: written to the peer as it was sent (code and reason, masked
      // afresh toward the upstream), unless keygate has closed the peer already; one no endpoint may send is not.
      const close = parseClose(leg);
      leg.closeReceived = leg.stopped = true;
      if (close === null) keygateClose(leg.session, 1002, 1002, 'protocol_error');
      else {
        leg.session.first ??= { ...close, closedBy: leg.side };
        if (!to.closeSent) writeClose(to, closeFrame(close.code, close.reason, to.side === 'upstream'));
      }
      settle(leg);
      // The peer has the grace to answer, as after keygate's own close: an unanswered close holds nothing for ever.
      startGrace(leg.session);
      return;
    }
    if (to.pendingClose !== null) {
      flush();
      writeClose(to, to.pendingClose);
    } else if (to.pendingPing) {
      flush();
      to.pendingPing = false;
      write(to, controlFrame(0x9, PING_PAYLOAD, to.side === 'upstream'));
      from = at; // the frames after it in this read go on
    }
  }
  flush();
}

// The peer `this` relays to has room again (so it is there, taking what is sent): read it.
function onDrain(this: Duplex): void {
  const leg = (this as Sock)[LEG];
  leg.heard = true;
  leg.peer.socket.resume();
}

// The side half-closed: keygate has nothing more to send it either.
function onEnd(this: Duplex): void {
  this.end();
}

function onError(this: Duplex): void {
  this.destroy();
}

/** A connection is gone: the session has ended; the other side gets a close frame (unless one went) and is ended. */
function onClose(this: Duplex): void {
  const leg = (this as Sock)[LEG];
  const s = leg.session;
  clearInterval(s.liveness!);
  leg.stopped = leg.closeSent = true;
  // Nothing more is written to a connection that is gone: a frame of keygate's held for it is dropped (writing it
  // would fail, and the failed write would stop the other side being read to its end).
  leg.pendingClose = null;
  leg.pendingPing = false;
  const peer = leg.peer;
  const end = s.first ?? { code: 1006, reason: '', closedBy: leg.side };
  // A frame cut off half-way cannot be followed by a close frame: then the peer's connection just ends.
  if (!peer.closeSent && atBoundary(leg)) writeClose(peer, closeFrame(sendable(end.code, leg.side), end.reason, peer.side === 'upstream'));
  peer.closeSent = true;
  if (!peer.socket.destroyed) peer.socket.end();
  peer.socket.resume(); // its close frame and end are read whatever it had queued
  startGrace(s);
  const ended = s.ended;
  s.ended = null;
  ended?.(end);
}

/**
 * Splices the client's connection to the upstream's, both past their handshakes. `ended` is called once, when the
 * first of the two connections closes.
 */
export function splice(client: Taken, upstream: Taken, opts: SpliceOptions, ended: (end: SpliceEnd) => void): Splice {
  const s = { ...opts, liveness: null, first: null, closedByKeygate: false, ended, grace: null } as Omit<Session, 'client' | 'upstream'> as Session;
  const leg = (side: Leg['side'], taken: Taken): Leg => ({
    side,
    socket: taken.socket,
    peer: null as unknown as Leg, // set below, once both exist
    session: s,
    masked: side === 'client',
    carried: { messages: 0, bytes: 0 },
    partial: null,
    remaining: 0,
    inMessage: NOT_IN_MESSAGE,
    data: false,
    lastOfMessage: false,
    closing: null,
    closeMask: null,
    stopped: false,
    closeReceived: false,
    closeSent: false,
    pendingClose: null,
    pendingPing: false,
    heard: true,
    silentMs: 0,
    waited: false,
  });
  s.client = leg('client', client);
  s.upstream = leg('upstream', upstream);
  s.client.peer = s.upstream;
  s.upstream.peer = s.client;
  for (const l of [s.client, s.upstream]) {
    const socket = l.socket as Sock & { setNoDelay?: (on: boolean) => void; setTimeout?: (ms: number) => void };
    socket[LEG] = l;
    socket.setTimeout?.(0);
    socket.setNoDelay?.(true);
    socket.on('data', onData).on('drain', onDrain).on('end', onEnd).on('error', onError).once('close', onClose);
  }
  // What arrived with each handshake is the start of its side's stream.
  if (client.head.length > 0) onData.call(client.socket, client.head);
  if (upstream.head.length > 0) onData.call(upstream.socket, upstream.head);
  client.socket.resume();
  upstream.socket.resume();
  s.liveness = setInterval(checkLiveness, s.pingIntervalMs, s).unref();
  return {
    fromClient: s.client.carried,
    fromUpstream: s.upstream.carried,
    close: (clientCode, upstreamCode, reason) => keygateClose(s, clientCode, upstreamCode, reason),
  };
}
