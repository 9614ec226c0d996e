import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from './limiter-classes.ts';
import type { Config } from '../config/schema.ts';
import type { ErrorCode } from '../http/errors.ts';
import type { RedisClient } from '../store/redis/connect.ts';
import type { FailureBlock } from './types.ts';

/** Refusals that count as a failed authentication attempt for the per-IP block. */
export const isFailedAttempt = (code: ErrorCode): boolean => code === 'missing_api_key' || code === 'invalid_api_key';

const noop = (): void => {};

/** The eight hextets of an IPv6 address (a trailing dotted IPv4 part and a zone allowed), or null. */
function hextets(ip: string): string[] | null {
  let s = ip.split('%')[0]!;
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const all = halves.length === 2 ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  if (all.length !== 8 || !all.every((h) => /^[0-9a-f]{1,4}$/i.test(h))) return null;
  return all.map((h) => parseInt(h, 16).toString(16));
}

/**
 * What failed attempts are counted against: an IPv4 address, or the /64 of an IPv6 address — a single
 * IPv6 client holds at least a /64 (2^64 addresses), so counting each address would let it try forever and have
 * every address blocked (and announced) on its own. An IPv4-mapped address counts as its IPv4 address.
 */
export function failureSubject(ip: string): string {
  if (!ip.includes(':')) return ip;
  // What a dual-stack listener reports for an IPv4 client: the common case, without parsing.
  if (ip.startsWith('::ffff:') && /^::ffff:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip)) return ip.slice(7);
  const h = hextets(ip);
  if (!h) return ip;
  if (h.slice(0, 5).every((x) => x === '0') && h[5] === 'ffff') {
    const [hi, lo] = [parseInt(h[6]!, 16), parseInt(h[7]!, 16)];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${h.slice(0, 4).join(':')}::/64`;
}

/** After a Redis failure, failures are counted in this process for this long before Redis is asked again. */
export const LOCAL_AFTER_ERROR_MS = 1_000;

/** Failures from one IP that arrived while its previous count was in flight: sent as one count when it returns. */
interface Batch {
  points: number;
  /** The block length in seconds this batch's count started (or met), or 0. */
  readonly counted: Promise<number>;
}

/**
 * Failed-authentication blocking per client IP. Failures are counted in Redis (shared by every
 * replica); once an IP is over the threshold, each replica that sees it remembers the block locally, so a
 * blocked client costs no store lookup and no Redis call at all.
 *
 * One count per IP is in flight at a time: failures that arrive meanwhile wait for it and are counted
 * together in the next call (bench: a burst of invalid keys from one address cost four Redis commands per
 * attempt, and their p99 was three times the straightforward stack's). Each failure is still counted before it
 * is answered, so the threshold holds exactly.
 *
 * A 401 never waits for a Redis node that is gone (on Cluster every 401 waited out the failover of the
 * master holding its counter): when a count fails, it is made in this process instead (as rate limits fall back
 * to their insurance limiter), and so are all counts for the next LOCAL_AFTER_ERROR_MS, so that only the first
 * failure after an outage begins waits, at most `redis.commandTimeoutMs`. Counted locally, each replica blocks
 * an address on its own count: up to N times the threshold across N replicas while Redis is away.
 */
export class FailureBlockImpl implements FailureBlock {
  /** The shared counter in Redis; null for the embedded store. */
  readonly #shared: RateLimiterAbstract | null;
  readonly #local: RateLimiterAbstract;
  /** Until then counts are made locally (a Redis call failed just now). */
  #localUntil = 0;
  readonly #blocked: LRUCache<string, number>;
  readonly #max: number;
  readonly #blockSeconds: number;
  /** By IP: the count in flight (a promise that never rejects). */
  readonly #inFlight = new Map<string, Promise<unknown>>();
  /** By IP: the batch waiting for that count to return. */
  readonly #waiting = new Map<string, Batch>();
  readonly #onBlocked: (ip: string, blockSeconds: number) => void;

  /**
   * `onBlocked` hears of each block once: from the count that crossed the threshold (one across the fleet while
   * Redis counts; each replica's own while it counts locally), with what was blocked (failureSubject).
   */
  constructor(opts: { redis: RedisClient | null; prefix: string; cfg: Config['limits']['failedAttempts']; onBlocked?: (ip: string, blockSeconds: number) => void }) {
    this.#onBlocked = opts.onBlocked ?? noop;
    this.#max = opts.cfg.maxFailures;
    this.#blockSeconds = opts.cfg.blockSeconds;
    const base = { points: opts.cfg.maxFailures, duration: opts.cfg.windowSeconds, blockDuration: opts.cfg.blockSeconds, keyPrefix: `${opts.prefix}fail` };
    this.#local = new RateLimiterMemory(base);
    this.#shared = opts.redis ? new RateLimiterRedis({ ...base, storeClient: opts.redis, rejectIfRedisNotReady: true }) : null;
    // At most 100,000 blocked addresses; bounded by size because lru-cache preallocates for `max`.
    this.#blocked = new LRUCache<string, number>({ maxSize: 100_000, sizeCalculation: () => 1, ttl: opts.cfg.blockSeconds * 1000, ttlAutopurge: false });
  }

  /** Addresses held in process: blocked, and with a count in flight (keygate_state_entries). */
  get size(): { blocked: number; counting: number } {
    return { blocked: this.#blocked.size, counting: this.#inFlight.size + this.#waiting.size };
  }

  blockedFor(ip: string): number {
    const until = this.#blocked.get(failureSubject(ip));
    if (until === undefined) return 0;
    const left = until - Date.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  #remember(ip: string, ms: number): number {
    this.#blocked.set(ip, Date.now() + ms, { ttl: Math.max(1, ms) });
    return Math.ceil(ms / 1000);
  }

  fail(address: string): Promise<number> {
    const ip = failureSubject(address);
    const waiting = this.#waiting.get(ip);
    if (waiting) {
      waiting.points++;
      return waiting.counted;
    }
    const ahead = this.#inFlight.get(ip);
    let counted: Promise<number>;
    if (ahead) {
      const batch: Batch = {
        points: 1,
        counted: ahead.then(() => {
          this.#waiting.delete(ip); // sent now: later failures wait behind this batch
          return this.#count(ip, batch.points);
        }),
      };
      this.#waiting.set(ip, batch);
      counted = batch.counted;
    } else {
      counted = this.#count(ip, 1);
    }
    const settled = counted.then(noop, noop);
    this.#inFlight.set(ip, settled);
    void settled.then(() => {
      if (this.#inFlight.get(ip) === settled) this.#inFlight.delete(ip);
    });
    return counted;
  }

  #limiter(): RateLimiterAbstract {
    return this.#shared && Date.now() >= this.#localUntil ? this.#shared : this.#local;
  }

  #storeFailed(): void {
    this.#localUntil = Date.now() + LOCAL_AFTER_ERROR_MS;
  }

  /** The count that took the address from below the threshold to it (counts are atomic: one such count). */
  #crossed(ip: string, res: RateLimiterRes, points: number): void {
    if (res.consumedPoints - points < this.#max) this.#onBlocked(ip, this.#blockSeconds);
  }

  async #count(ip: string, points: number): Promise<number> {
    const limiter = this.#limiter();
    try {
      const res = await limiter.consume(ip, points);
      if (res.consumedPoints < this.#max) return 0;
      // The failure that reaches the threshold starts the block, so the next attempt is refused (here at once;
      // elsewhere once Redis has it).
      await limiter.block(ip, this.#blockSeconds).catch(() => this.#storeFailed());
      this.#crossed(ip, res, points);
      return this.#remember(ip, this.#blockSeconds * 1000);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        // A batch that went past the threshold at once is refused by the limiter, which starts the block itself.
        this.#crossed(ip, err, points);
        return this.#remember(ip, err.msBeforeNext);
      }
      if (limiter === this.#local) throw err;
      this.#storeFailed();
      return this.#count(ip, points);
    }
  }
}
