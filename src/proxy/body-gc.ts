import type { IncomingMessage } from 'node:http';

// Streaming a large body allocates one socket read buffer (up to 64 KiB, outside the V8 heap) per chunk.
// Each dies as soon as it is written upstream, but V8 only collects once ~64 MB of such external memory has
// piled up, so a single 50 MB upload would raise RSS by about its own size without anything being buffered.
// A minor GC (a scavenge: well under a millisecond for keygate's young generation) after every few MiB of
// streamed body returns them promptly, keeping RSS flat under uploads (test: proxy.streaming).

const GC_EVERY_BYTES = 4 << 20;
/** Bodies smaller than this never trigger anything (most API calls). */
const TRACK_ABOVE_BYTES = 256 << 10;

type Gc = (options: { type: 'minor' | 'major' }) => void;

/**
 * V8's gc(), taken from a new context on the first large body rather than at start: the context it comes from
 * holds about 270 KB of heap (1.1 MB of RSS in a bare process) for as long as the process lives, and a keygate
 * that never streams a large body never needs it. Making it takes under 2 ms, once.
 */
let gc: Gc | null = null;
function collectYoung(): void {
  if (!gc) {
    process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    gc = process.getBuiltinModule('node:vm').runInNewContext('gc') as Gc;
  }
  gc({ type: 'minor' });
}

let sinceGc = 0;

/** Whether a body is large enough (or of unknown length) to be counted as it streams. */
export function isLargeBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return length === undefined ? req.headers['transfer-encoding'] !== undefined : Number(length) > TRACK_ABOVE_BYTES;
}

/**
 * Counts streamed body bytes as they are sent on (the forwarder reports them; a 'data' listener on the
 * request would start its flow before the upstream connection reads it, and lose what came first).
 */
export function countStreamed(bytes: number): void {
  sinceGc += bytes;
  if (sinceGc >= GC_EVERY_BYTES) {
    sinceGc = 0;
    collectYoung();
  }
}
