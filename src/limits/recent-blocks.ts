/** One address blocked for failed authentication attempts. */
export interface BlockedAddress {
  ip: string;
  blockedAt: string;
  blockedUntil: string;
}

/**
 * The addresses this process blocked most recently and whose block has not ended, for the console's fleet view.
 * At most `max` are kept (the oldest is dropped first); a client with many addresses only replaces entries. The
 * blocks themselves live in the limiter (Redis or memory); this list is what this process saw, not a scan.
 */
export class RecentBlocks {
  readonly #max: number;
  readonly #now: () => number;
  readonly #byIp = new Map<string, { at: number; until: number }>();

  constructor(max: number, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  add(ip: string, blockSeconds: number): void {
    const at = this.#now();
    this.#byIp.delete(ip);
    this.#byIp.set(ip, { at, until: at + blockSeconds * 1000 });
    if (this.#byIp.size > this.#max) this.#byIp.delete(this.#byIp.keys().next().value!);
  }

  /** Newest first; ended blocks are dropped as they are read. */
  read(): BlockedAddress[] {
    const now = this.#now();
    const out: BlockedAddress[] = [];
    for (const [ip, b] of this.#byIp) {
      if (b.until <= now) this.#byIp.delete(ip);
      else out.push({ ip, blockedAt: new Date(b.at).toISOString(), blockedUntil: new Date(b.until).toISOString() });
    }
    return out.reverse();
  }
}
