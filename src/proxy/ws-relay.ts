import { WebSocket, type RawData } from 'ws';

// One direction of a proxied WebSocket session, with backpressure: each direction is paused while the other
// side's buffer is full. Without it a fast sender and a slow receiver grow keygate's memory by whatever the
// receiver has not yet taken; with it the sender's TCP window closes instead, and keygate holds at most about
// `highWater` plus one message per direction.

const sizeOf = (data: RawData): number => (Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength);

/** What one direction of a session carried: messages and their payload bytes (the session's line and span). */
export interface Carried {
  messages: number;
  bytes: number;
}

/**
 * Relays `from`'s messages to `to`, and stops reading `from` while `to` has more than `highWater` bytes queued;
 * counts what it relays in `carried`.
 */
export function relayMessages(from: WebSocket, to: WebSocket, highWater: number, carried: Carried): void {
  // Called once the send that filled `to`'s queue has reached the socket: everything queued before it has too.
  const drained = () => {
    if (from.isPaused) from.resume();
  };
  from.on('message', (data: RawData, isBinary: boolean) => {
    const size = sizeOf(data);
    carried.messages++;
    carried.bytes += size;
    if (to.readyState !== WebSocket.OPEN) return;
    // The common case, a voice frame every 20 ms into an empty queue, is a send without a completion callback:
    // a callback per send costs a deferred call per frame on the relay's hot path (bench/README.md, "Voice
    // relay"). Only a send that may take the queue past the mark asks for one, and pauses `from` until it fires.
    if (to.bufferedAmount + size <= highWater) {
      to.send(data, { binary: isBinary });
      return;
    }
    from.pause();
    to.send(data, { binary: isBinary }, drained);
  });
  // Once `to` is gone nothing will drain; `from` must still read its peer's close frame.
  to.once('close', () => from.resume());
}
