import { WebSocket, type RawData } from 'ws';

// One proxied WebSocket session's two directions, with backpressure: each direction is paused while the other
// side's buffer is full. Without it a fast sender and a slow receiver grow keygate's memory by whatever the
// receiver has not yet taken; with it the sender's TCP window closes instead, and keygate holds at most about
// `highWater` plus one message per direction.
//
// The handlers are shared by every session (each socket carries its peer, its mark and its count): a session
// costs three properties per socket rather than a closure and its context per direction and event.

const PEER = Symbol('relay peer');
const HIGH_WATER = Symbol('relay high-water mark');
const CARRIED = Symbol('relay count');

/** What one direction of a session carried: messages and their payload bytes (the session's line and span). */
export interface Carried {
  messages: number;
  bytes: number;
}

interface Relayed extends WebSocket {
  [PEER]: Relayed;
  [HIGH_WATER]: number;
  /** What this side sent, relayed to its peer. */
  [CARRIED]: Carried;
}

// `ws` copies a send's options into its own object: these are never changed, so one of each serves every send.
const BINARY = { binary: true };
const TEXT = { binary: false };

const sizeOf = (data: RawData): number => (Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength);

function resumeIfPaused(from: WebSocket): void {
  if (from.isPaused) from.resume();
}

// `ws` calls its listeners with the socket as `this` (typed as a plain WebSocket).
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const from = this as Relayed;
  const to = from[PEER];
  const size = sizeOf(data);
  const carried = from[CARRIED];
  carried.messages++;
  carried.bytes += size;
  if (to.readyState !== WebSocket.OPEN) return;
  // The common case, a voice frame every 20 ms into an empty queue, is a send without a completion callback:
  // a callback per send costs a deferred call per frame on the relay's hot path (bench/README.md, "Voice
  // relay"). Only a send that may take the queue past the mark asks for one, and pauses this side until it
  // fires (everything queued before it has then reached the socket).
  if (to.bufferedAmount + size <= from[HIGH_WATER]) {
    to.send(data, isBinary ? BINARY : TEXT);
    return;
  }
  from.pause();
  to.send(data, isBinary ? BINARY : TEXT, () => resumeIfPaused(from));
}

// Once a side is gone nothing will drain its peer's sends; the peer must still read its own peer's close frame.
function onClose(this: WebSocket): void {
  (this as Relayed)[PEER].resume();
}

/**
 * Relays each side's messages to the other, and stops reading a side while the other has more than `highWater`
 * bytes queued; counts what each side sent in its `Carried`.
 */
export function relaySession(a: WebSocket, b: WebSocket, highWater: number, fromA: Carried, fromB: Carried): void {
  const [x, y] = [a as Relayed, b as Relayed];
  x[PEER] = y;
  y[PEER] = x;
  x[HIGH_WATER] = y[HIGH_WATER] = highWater;
  x[CARRIED] = fromA;
  y[CARRIED] = fromB;
  for (const side of [x, y]) side.on('message', onMessage).once('close', onClose);
}
