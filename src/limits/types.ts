import type { AuthKey, Tenant } from '../keys/types.ts';

/** The tightest window's state, for the RateLimit-* headers. */
/**
 * What limits charge a request to: the key and its tenant. auth's verified identity carries both, so it is
 * passed as is; limits sit below auth and never need the rest of it.
 */
export interface Charged {
  key: AuthKey;
  tenant: Tenant;
}

export interface WindowState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

export type RateVerdict =
  | ({ ok: true } & WindowState)
  | ({
      ok: false;
      /** A rate-limit window, or a monthly quota. */
      code: 'rate_limited' | 'quota_exceeded';
      /** Whose window refused: the `scope` label of keygate_rate_limited_total. */
      scope: 'key' | 'tenant' | 'key_quota' | 'tenant_quota';
      retryAfterSeconds: number;
    } & WindowState);

/** Per-key and per-plan request limits and monthly request quotas; null when no window applies to this key. */
export interface RateLimits {
  /**
   * Synchronous when no Redis call is needed (a live lease, or no window applies). `quotas` false: the monthly
   * quotas are neither checked nor charged (management requests).
   */
  consume(identity: Charged, quotas?: boolean): RateVerdict | null | Promise<RateVerdict | null>;
}

/** Per-client-IP failed-authentication blocking. */
export interface FailureBlock {
  /** Seconds the IP stays blocked, or 0. Never touches the key store. */
  blockedFor(ip: string): number;
  /** Counts a failed authentication; resolves to the block length in seconds when this failure blocks the IP. */
  fail(ip: string): Promise<number>;
}
