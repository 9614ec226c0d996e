import { randomBytes } from 'node:crypto';
import type { Operator } from '../api/operators.ts';
import { ApiError } from '../http/errors.ts';

/**
 * The console's sign-in sessions: a random 256-bit id (the cookie's value) → the operator and an absolute expiry
 * (`console.sessionTtlSeconds`; using the console does not extend it).
 *
 * Two bounds, so that holding a valid token never lets one operator end another's session:
 * - each operator has at most `perOperator` live sessions (`console.maxSessionsPerOperator`): signing in beyond
 *   that ends that operator's own oldest session;
 * - at most `max` live sessions in all (`console.maxSessions`): at that bound a sign-in of an operator holding
 *   fewer than `perOperator` is refused (429 `concurrency_limit_reached`, Retry-After until the oldest session
 *   ends) rather than ending someone else's.
 *
 * On Redis (console/redis-sessions.ts) they are shared by every worker and replica; on the embedded store (one
 * process) they live in its memory (below) and a restart ends them.
 */
export interface ConsoleSessions {
  /** A new session for `operator`; throws 429 `concurrency_limit_reached` at the global bound (see above). */
  create(operator: Operator): Promise<{ id: string; maxAgeSeconds: number }>;
  get(id: string | undefined): Promise<Operator | null>;
  end(id: string | undefined): Promise<void>;
}

export interface ConsoleSessionBounds {
  ttlSeconds: number;
  max: number;
  perOperator: number;
}

export const newSessionId = (): string => randomBytes(32).toString('base64url');

export const sessionsFull = (max: number, retryAfterSeconds: number): ApiError =>
  new ApiError('concurrency_limit_reached', `The console has its most sessions (console.maxSessions ${max}); try again once one ends.`, { headers: { 'Retry-After': Math.max(1, retryAfterSeconds) } });

interface Session {
  operator: Operator;
  expiresAt: number;
}

/** The embedded store's sessions, in this process's memory. */
export class MemoryConsoleSessions implements ConsoleSessions {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #perOperator: number;
  readonly #now: () => number;
  /** Insertion order is creation order: the first entry is the oldest. */
  readonly #byId = new Map<string, Session>();
  /** Each operator's live session ids, oldest first (sessions are at most `perOperator` per operator). */
  readonly #byOperator = new Map<string, string[]>();

  constructor(opts: ConsoleSessionBounds & { now?: () => number }) {
    this.#ttlMs = opts.ttlSeconds * 1000;
    this.#max = opts.max;
    this.#perOperator = opts.perOperator;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#byId.size;
  }

  async create(operator: Operator): Promise<{ id: string; maxAgeSeconds: number }> {
    this.#sweep();
    const own = this.#byOperator.get(operator.name) ?? [];
    if (own.length >= this.#perOperator) this.#end(own[0]);
    else if (this.#byId.size >= this.#max) {
      const oldest = this.#byId.values().next().value!;
      throw sessionsFull(this.#max, Math.ceil((oldest.expiresAt - this.#now()) / 1000));
    }
    const id = newSessionId();
    this.#byId.set(id, { operator, expiresAt: this.#now() + this.#ttlMs });
    this.#byOperator.set(operator.name, [...(this.#byOperator.get(operator.name) ?? []), id]);
    return { id, maxAgeSeconds: this.#ttlMs / 1000 };
  }

  async get(id: string | undefined): Promise<Operator | null> {
    if (!id) return null;
    const s = this.#byId.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.#now()) {
      this.#end(id);
      return null;
    }
    return s.operator;
  }

  async end(id: string | undefined): Promise<void> {
    this.#end(id);
  }

  #end(id: string | undefined): void {
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
      this.#end(id);
    }
  }
}
