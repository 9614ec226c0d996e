import { randomBytes } from 'node:crypto';
import type { Operator } from '../api/operators.ts';
import { ApiError } from '../http/errors.ts';

interface Session {
  operator: Operator;
  expiresAt: number;
}

/**
 * The console's sign-in sessions, in this process's memory: a random 256-bit id (the cookie's value) → the
 * operator and an absolute expiry (`console.sessionTtlSeconds`; using the console does not extend it).
 *
 * Two bounds, so that holding a valid token never lets one operator end another's session:
 * - each operator has at most `perOperator` live sessions (`console.maxSessionsPerOperator`): signing in beyond
 *   that ends that operator's own oldest session;
 * - at most `max` live sessions in all (`console.maxSessions`): at that bound a sign-in of an operator holding
 *   fewer than `perOperator` is refused (429 `concurrency_limit_reached`, Retry-After until the oldest session
 *   ends) rather than ending someone else's.
 * A restart ends every session; on several replicas a session is known only to the one that created it
 * (docs/console.md).
 */
export class ConsoleSessions {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #perOperator: number;
  readonly #now: () => number;
  /** Insertion order is creation order: the first entry is the oldest. */
  readonly #byId = new Map<string, Session>();
  /** Each operator's live session ids, oldest first (sessions are at most `perOperator` per operator). */
  readonly #byOperator = new Map<string, string[]>();

  constructor(opts: { ttlSeconds: number; max: number; perOperator: number; now?: () => number }) {
    this.#ttlMs = opts.ttlSeconds * 1000;
    this.#max = opts.max;
    this.#perOperator = opts.perOperator;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** A new session for `operator`; throws 429 `concurrency_limit_reached` at the global bound (see above). */
  create(operator: Operator): { id: string; maxAgeSeconds: number } {
    this.#sweep();
    const own = this.#byOperator.get(operator.name) ?? [];
    if (own.length >= this.#perOperator) this.end(own[0]);
    else if (this.#byId.size >= this.#max) {
      const oldest = this.#byId.values().next().value!;
      const retryAfter = Math.max(1, Math.ceil((oldest.expiresAt - this.#now()) / 1000));
      throw new ApiError('concurrency_limit_reached', `The console has its most sessions (console.maxSessions ${this.#max}); try again once one ends.`, { headers: { 'Retry-After': retryAfter } });
    }
    const id = randomBytes(32).toString('base64url');
    this.#byId.set(id, { operator, expiresAt: this.#now() + this.#ttlMs });
    this.#byOperator.set(operator.name, [...(this.#byOperator.get(operator.name) ?? []), id]);
    return { id, maxAgeSeconds: this.#ttlMs / 1000 };
  }

  get(id: string | undefined): Operator | null {
    if (!id) return null;
    const s = this.#byId.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.#now()) {
      this.end(id);
      return null;
    }
    return s.operator;
  }

  end(id: string | undefined): void {
    const s = id ? this.#byId.get(id) : undefined;
    if (!s) return;
    this.#byId.delete(id!);
    const rest = (this.#byOperator.get(s.operator.name) ?? []).filter((x) => x !== id);
    if (rest.length) this.#byOperator.set(s.operator.name, rest);
    else this.#byOperator.delete(s.operator.name);
  }

  /** Expired sessions are the oldest ones (one fixed lifetime), so the sweep stops at the first live one. */
  #sweep(): void {
    const now = this.#now();
    for (const [id, s] of this.#byId) {
      if (s.expiresAt > now) break;
      this.end(id);
    }
  }
}
