import { write, writeSync } from 'node:fs';

// Every log line keygate prints goes through one LineWriter: pino's lines (it is pino's destination) and the
// access log's. Lines are encoded into a batch buffer as they come and written with one `write(2)` per batch from
// libuv's thread pool, so a request costs one UTF-8 copy into memory, not a system call.
//
// Why not pino.destination (sonic-boom): its UTF-8 mode measures the whole pending batch again on every line
// (Buffer.byteLength of the growing string) and converts each batch to bytes twice; with one access line per
// proxied request that measured ~5 µs per request at 10k req/s, a sixth of keygate's whole overhead budget
// (bench/README.md). Why not an array of strings joined per batch (what this did before): the join and
// the conversion copy every line twice more (0.73 against 0.46 µs per access line, measured in-process).

export interface LineWriterOptions {
  /** Batches are written once this many bytes are pending... */
  batchChars?: number;
  /** ...or this long after the first pending line. */
  flushIntervalMs?: number;
  /** While the output cannot keep up, lines beyond this many pending bytes are dropped (and counted). */
  maxPendingChars?: number;
}

export class LineWriter {
  readonly #fd: number;
  readonly #batchBytes: number;
  readonly #maxPending: number;
  /** The batch being filled, and how much of it is. */
  #buf: Buffer;
  #used = 0;
  /** Filled batches waiting for the write in flight (the output is slower than the lines, for now). */
  #full: Buffer[] = [];
  #fullBytes = 0;
  #writing = false;
  #dropped = 0;
  #drained: Array<() => void> = [];
  readonly #timer: NodeJS.Timeout;

  constructor(fd: number, opts: LineWriterOptions = {}) {
    this.#fd = fd;
    this.#batchBytes = opts.batchChars ?? 64 * 1024;
    this.#maxPending = opts.maxPendingChars ?? 16 * 1024 * 1024;
    this.#buf = this.#newBuffer(0);
    this.#timer = setInterval(() => this.#flush(), opts.flushIntervalMs ?? 100).unref();
  }

  /** Room for a batch and the line that ends it (a batch is written once it holds batchBytes). */
  #newBuffer(atLeast: number): Buffer {
    return Buffer.allocUnsafe(Math.max(Math.min(this.#batchBytes * 2, 1 << 20), atLeast, 4096));
  }

  /** Lines dropped because the output could not keep up. */
  get dropped(): number {
    return this.#dropped;
  }

  get #pending(): number {
    return this.#fullBytes + this.#used;
  }

  /** One or more whole lines, each ending in "\n" (the pino destination contract). */
  write(lines: string): boolean {
    if (this.#pending > this.#maxPending) {
      this.#dropped++;
      return false;
    }
    // UTF-8 takes at most three bytes per UTF-16 unit.
    const worst = lines.length * 3;
    if (this.#used + worst > this.#buf.length) {
      this.#seal();
      if (worst > this.#buf.length) this.#buf = this.#newBuffer(worst);
    }
    this.#used += this.#buf.write(lines, this.#used);
    if (this.#used >= this.#batchBytes) this.#flush();
    return true;
  }

  /** The batch being filled joins the ones waiting; a fresh one is started. */
  #seal(): void {
    if (this.#used === 0) return;
    this.#full.push(this.#buf.subarray(0, this.#used));
    this.#fullBytes += this.#used;
    this.#buf = this.#newBuffer(0);
    this.#used = 0;
  }

  #take(): Buffer | null {
    this.#seal();
    if (this.#fullBytes === 0) return null;
    const data = this.#full.length === 1 ? this.#full[0]! : Buffer.concat(this.#full, this.#fullBytes);
    this.#full = [];
    this.#fullBytes = 0;
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
      const pending = this.#pending;
      if (pending > 0 && (pending >= this.#batchBytes || this.#drained.length)) this.#flush();
      else if (pending === 0) for (const done of this.#drained.splice(0)) done();
    });
  }

  /** Resolves once every line written so far has reached the file descriptor (graceful shutdown). */
  drain(): Promise<void> {
    if (!this.#writing && this.#pending === 0) return Promise.resolve();
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
