import { randomBytes } from 'node:crypto';
import type { Operator } from '../api/operators.ts';

interface Session {
  operator: Operator;
  expiresAt: number;
}

/**
 * The console's sign-in sessions, in this process's memory: a random 256-bit id (the cookie's value) → the
 * operator and an absolute expiry (`console.sessionTtlSeconds`; using the console does not extend it). At most
 * `max` live sessions (`console.maxSessions`): signing in beyond that ends the oldest session, whose operator
 * must sign in again. A restart ends every session; on several replicas a session is known only to the one that
 * created it (docs/console.md).
 */
export class ConsoleSessions {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;
  /** Insertion order is creation order: the first entry is the oldest. */
  readonly #byId = new Map<string, Session>();

  constructor(opts: { ttlSeconds: number; max: number; now?: () => number }) {
    this.#ttlMs = opts.ttlSeconds * 1000;
    this.#max = opts.max;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#byId.size;
  }

  create(operator: Operator): { id: string; maxAgeSeconds: number } {
    this.#sweep();
    while (this.#byId.size >= this.#max) this.#byId.delete(this.#byId.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.#byId.set(id, { operator, expiresAt: this.#now() + this.#ttlMs });
    return { id, maxAgeSeconds: this.#ttlMs / 1000 };
  }

  get(id: string | undefined): Operator | null {
    if (!id) return null;
    const s = this.#byId.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.#now()) {
      this.#byId.delete(id);
      return null;
    }
    return s.operator;
  }

  end(id: string | undefined): void {
    if (id) this.#byId.delete(id);
  }

  /** Expired sessions are the oldest ones (one fixed lifetime), so the sweep stops at the first live one. */
  #sweep(): void {
    const now = this.#now();
    for (const [id, s] of this.#byId) {
      if (s.expiresAt > now) break;
      this.#byId.delete(id);
    }
  }
}
