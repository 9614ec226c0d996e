import type { RedisClient } from '../store/redis/connect.ts';

// How often a session token has been used, for the tokens that limit it (`maxUses` HTTP requests, `maxSessions`
// WebSocket sessions; a session token opens one session by default, so a replayed token opens nothing). One
// atomic increment per counted use, across replicas; the counter lives until the token expires and no longer.

export type TokenUse = 'request' | 'session';

export interface TokenUses {
  /** Counts one use and returns the count including it. */
  use(tenantId: string, tokenId: string, kind: TokenUse, expiresAtSeconds: number): Promise<number>;
}

// KEYS: the counter. ARGV: expiry (unix seconds). The expiry is set with the first use, in the same script, so
// a counter never outlives its token.
const useLua = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
return n`;

type Scripted = RedisClient & { kgTokenUse(key: string, expiresAt: number): Promise<number> };

export class RedisTokenUses implements TokenUses {
  readonly #r: Scripted;
  readonly #p: string;

  constructor(redis: RedisClient, prefix: string) {
    redis.defineCommand('kgTokenUse', { numberOfKeys: 1, lua: useLua });
    this.#r = redis as Scripted;
    this.#p = prefix;
  }

  // Under the tenant's hash tag, beside its other per-key state.
  use(tenantId: string, tokenId: string, kind: TokenUse, expiresAtSeconds: number): Promise<number> {
    return this.#r.kgTokenUse(`${this.#p}{${tenantId}}:tok:${tokenId}:${kind === 'request' ? 'u' : 's'}`, expiresAtSeconds + 1);
  }
}

/** Counted tokens the embedded store keeps at once; at the bound a new token cannot be counted (see below). */
export const MEMORY_TOKEN_COUNTERS = 100_000;

/** Thrown when the embedded store holds as many live counters as it may: the request is answered 503. */
export class TokenCountersFullError extends Error {
  constructor() {
    super('too many live session-token counters in the embedded store');
    this.name = 'TokenCountersFullError';
  }
}

/**
 * The embedded store's counters. Bounded: expired counters are dropped when the map is full, and if it is still
 * full the use is refused rather than an older counter evicted — evicting one would let its token be replayed.
 */
export class MemoryTokenUses implements TokenUses {
  readonly #counts = new Map<string, { n: number; expiresAt: number }>();
  readonly #max: number;

  constructor(max = MEMORY_TOKEN_COUNTERS) {
    this.#max = max;
  }

  async use(_tenantId: string, tokenId: string, kind: TokenUse, expiresAtSeconds: number): Promise<number> {
    const id = `${tokenId}:${kind}`;
    const have = this.#counts.get(id);
    if (have) return ++have.n;
    if (this.#counts.size >= this.#max) {
      const now = Date.now() / 1000;
      for (const [k, v] of this.#counts) if (v.expiresAt <= now) this.#counts.delete(k);
      if (this.#counts.size >= this.#max) throw new TokenCountersFullError();
    }
    this.#counts.set(id, { n: 1, expiresAt: expiresAtSeconds + 1 });
    return 1;
  }
}
