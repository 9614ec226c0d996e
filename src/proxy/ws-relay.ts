import { WebSocket, type RawData } from 'ws';

// One direction of a proxied WebSocket session, with backpressure (each direction is paused while the
// other side's buffer is full). Without it a fast sender and a slow receiver grow keygate's memory by whatever
// the receiver has not yet taken; with it the sender's TCP window closes instead, and keygate holds at most
// about `highWater` plus one message per direction.

/** Relays `from`'s messages to `to`, and stops reading `from` while `to` has more than `highWater` bytes queued. */
export function relayMessages(from: WebSocket, to: WebSocket, highWater: number): void {
  // Called as each send reaches the socket: the last one to do so finds the queue short again.
  const drained = () => {
    if (from.isPaused && to.bufferedAmount <= highWater) from.resume();
  };
  from.on('message', (data: RawData, isBinary: boolean) => {
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(data, { binary: isBinary }, drained);
    if (to.bufferedAmount > highWater) from.pause();
  });
  // Once `to` is gone nothing will drain; `from` must still read its peer's close frame.
  to.once('close', () => from.resume());
}
