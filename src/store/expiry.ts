import type { StoredKey } from '../keys/types.ts';

// The expiry index: per tenant, each key with an expiry scored by when its next expiry event is due, so the
// expiry scan (webhooks/expiry.ts) reads what is due, not every key. A key enters at the first event's time (its
// expiry less EXPIRY_NOTICE_MS) when it is created or its expiry changes; the scan moves it on to the next event's
// time, and takes it out after the last. The index may be early for a key (an expiry moved later: the scan finds
// nothing due and moves it on), never late: a write only ever lowers a key's time, and the scan's move applies
// only while the key's expiry is still the one it read.

/** The first expiry event (key.expiring, 7 days) is due this long before the expiry. */
export const EXPIRY_NOTICE_MS = 7 * 86_400_000;

/** When a key's first expiry event is due, or null for a key that never expires. */
export const firstExpiryDue = (key: Pick<StoredKey, 'expiresAt'>): number | null => (key.expiresAt === null ? null : Date.parse(key.expiresAt) - EXPIRY_NOTICE_MS);

export interface DueExpiry {
  tenantId: string;
  keyId: string;
}

/** The index's side of the KeyStore (both stores implement it). */
export interface ExpiryIndex {
  /** Keys of these tenants whose next expiry event is due by `now`, at most `limit` per tenant. */
  dueExpiries(tenantIds: string[], now: number, limit: number): Promise<DueExpiry[]>;
  /**
   * Moves a key to `dueAt` (null: out of the index) if its expiry is still `expiresAt` (the scan read it so); a
   * key that no longer exists leaves the index.
   */
  rescheduleExpiry(tenantId: string, keyId: string, expiresAt: string | null, dueAt: number | null): Promise<void>;
  /** Puts a key in the index at its first event's time (unless it is in it earlier): for building the index. */
  indexExpiry(key: StoredKey): Promise<void>;
  /** Whether every key is in the index (keys made before it existed are put in by one full scan, once). */
  expiryIndexBuilt(): Promise<boolean>;
  markExpiryIndexBuilt(): Promise<void>;
}
