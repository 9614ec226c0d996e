import { write, writeSync } from 'node:fs';

// Every log line keygate prints goes through one LineWriter: pino's lines (it is pino's destination) and the
// access log's. Lines are gathered and written with one `write(2)` per batch from libuv's thread pool, so a
// request costs a string push, not a system call.
//
// Why not pino.destination (sonic-boom): its UTF-8 mode measures the whole pending batch again on every line
// (Buffer.byteLength of the growing string) and converts each batch to bytes twice; with one access line per
// proxied request that measured ~5 µs per request at 10k req/s, a sixth of keygate's whole overhead budget
// (bench/README.md). Here a line costs an array push; a batch is joined and converted once.

export interface LineWriterOptions {
  /** Batches are written once this many characters are pending... */
  batchChars?: number;
  /** ...or this long after the first pending line. */
  flushIntervalMs?: number;
  /** While the output cannot keep up, lines beyond this many pending characters are dropped (and counted). */
  maxPendingChars?: number;
}

export class LineWriter {
  readonly #fd: number;
  readonly #batchChars: number;
  readonly #maxPendingChars: number;
  #lines: string[] = [];
  #chars = 0;
  #writing = false;
  #dropped = 0;
  #drained: Array<() => void> = [];
  readonly #timer: NodeJS.Timeout;

  constructor(fd: number, opts: LineWriterOptions = {}) {
    this.#fd = fd;
    this.#batchChars = opts.batchChars ?? 64 * 1024;
    this.#maxPendingChars = opts.maxPendingChars ?? 16 * 1024 * 1024;
    this.#timer = setInterval(() => this.#flush(), opts.flushIntervalMs ?? 100).unref();
  }

  /** Lines dropped because the output could not keep up. */
  get dropped(): number {
    return this.#dropped;
  }

  /** One or more whole lines, each ending in "\n" (the pino destination contract). */
  write(lines: string): boolean {
    if (this.#chars > this.#maxPendingChars) {
      this.#dropped++;
      return false;
    }
    this.#lines.push(lines);
    this.#chars += lines.length;
    if (this.#chars >= this.#batchChars) this.#flush();
    return true;
  }

  #take(): Buffer | null {
    if (this.#chars === 0) return null;
    const data = Buffer.from(this.#lines.join(''));
    this.#lines = [];
    this.#chars = 0;
    return data;
  }

  #flush(): void {
    if (this.#writing) return;
    const data = this.#take();
    if (data) this.#send(data, 0);
  }

  #send(data: Buffer, offset: number): void {
    this.#writing = true;
    write(this.#fd, data, offset, data.length - offset, null, (err, n) => {
      if (err && (err.code === 'EAGAIN' || err.code === 'EBUSY')) {
        setTimeout(() => this.#send(data, offset), 10).unref(); // a non-blocking pipe that is full
        return;
      }
      // Any other error (the reader went away): the batch is lost, as output to a closed pipe would be.
      if (!err && offset + n < data.length) return this.#send(data, offset + n);
      this.#writing = false;
      if (this.#chars > 0 && (this.#chars >= this.#batchChars || this.#drained.length)) this.#flush();
      else if (this.#chars === 0) for (const done of this.#drained.splice(0)) done();
    });
  }

  /** Resolves once every line written so far has reached the file descriptor (graceful shutdown). */
  drain(): Promise<void> {
    if (!this.#writing && this.#chars === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained.push(resolve);
      this.#flush();
    });
  }

  /** Writes everything pending now: the last resort at exit (a batch in flight on the pool may land after it). */
  flushSync(): void {
    const data = this.#take();
    if (!data) return;
    let offset = 0;
    while (offset < data.length) {
      try {
        offset += writeSync(this.#fd, data, offset);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      }
    }
  }

  /** pino's `logger.flush(cb)`: the callback runs once everything pending is written. */
  flush(cb?: (err?: Error) => void): void {
    void this.drain().then(() => cb?.());
  }

  close(): void {
    clearInterval(this.#timer);
    this.flushSync();
  }
}

// The current time as an ISO string, made at most once per millisecond, and with `toISOString` at most once per
// second (the milliseconds are appended to the second's text): at thousands of log lines per second
// `toISOString` was a measurable share of each line.
let lastMs = 0;
let lastIso = '';
let lastSecond = -1;
/** `YYYY-MM-DDTHH:MM:SS.` of lastSecond. */
let secondPrefix = '';
export function isoNow(): string {
  const now = Date.now();
  if (now === lastMs) return lastIso;
  lastMs = now;
  const second = Math.floor(now / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const ms = now - second * 1000;
  lastIso = `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  return lastIso;
}
