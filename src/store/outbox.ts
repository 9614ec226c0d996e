import type { RedisClient } from './redis/connect.ts';
import type { AuditInput } from './types.ts';

// The outbox: where a key mutation's event is written, in the same step as the mutation and its audit line, so
// a mutation is never without its event. A port the stores write through: what an event looks like, where it is
// kept for delivery and who reads it belong to the side that delivers (src/webhooks/outbox.ts implements it);
// the store only knows that a mutation may carry one, and writes it where the mutation already is.

/** What every outbox says: the event a mutation stands for (by its audit line), or null when it sends none. */
export interface Outbox {
  eventOf(tenantId: string, audit: AuditInput): object | null;
}

/** The embedded store's outbox: appended to in the same synchronous turn as the mutation. */
export interface MemoryOutboxPort extends Outbox {
  append(tenantId: string, event: object): void;
}

/**
 * The Redis store's outbox: a capped stream per tenant, in the tenant's hash tag, appended to by the mutation's
 * own script. Nothing outside the tenant's slot is on a mutation's path, so on Redis Cluster a shard's failover
 * stops the writes of the tenants it holds and no other.
 */
export interface RedisOutboxPort extends Outbox {
  /** The tenant's outbox stream; it must hash to the tenant's slot (`{<tenantId>}` in its name). */
  streamKey(tenantId: string): string;
  /** The stream's cap (XADD MAXLEN ~). */
  readonly maxEntries: number;
  /**
   * Makes the tenant's outbox known to whoever reads it. Called once, when the tenant is created (before its
   * record is written, so no mutation of it can come first), never on a key mutation's path.
   */
  register(tenantId: string): Promise<void>;
  /**
   * Says that the tenant's outbox has a new entry, once the mutation's script has written it, so the readers
   * need not look at every outbox to find it. It returns at once and never fails: the mutation does not wait on
   * anything outside the tenant's slot, and a signal that is lost only delays the entry (the readers also go
   * through every outbox, a slice at a time).
   */
  notify(tenantId: string): void;
}

/** Builds the outbox for whichever store is opened; null: no events are written (webhooks off). */
export interface OutboxProvider {
  memory(): MemoryOutboxPort;
  redis(client: RedisClient): RedisOutboxPort;
}
