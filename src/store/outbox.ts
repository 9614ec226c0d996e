import type { AuditInput } from './types.ts';

// The outbox port: the stores write the events of key mutations to an outbox in the same step as the
// mutation (so an event is never lost or sent for a change that did not happen), but what an event is and
// who delivers it belongs to webhooks/, above the store. The store defines what it needs here; webhooks/
// implements it and the server hands the implementation to the store it opens.

/** An event as the store writes it: built by the port, written as JSON. */
export interface OutboxEvent {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

export interface Outbox {
  /** The event an audited mutation stands for, or null (nothing is written). */
  eventOf(tenantId: string, audit: AuditInput): OutboxEvent | null;
}

/** The embedded store's outbox: the event is handed over in the same synchronous step as the mutation. */
export interface MemoryOutboxPort extends Outbox {
  push(tenantId: string | null, event: OutboxEvent): void;
}

/** The Redis store's outbox: the mutation's script appends to the tenant's stream, capped at maxEntries. */
export interface RedisOutboxPort extends Outbox {
  maxEntries: number;
}

// The outbox streams are part of the store's keyspace (docs/redis-keys.md): the key mutation's script writes
// them, in the tenant's slot.

/** SET of tenant ids whose outbox the workers read (and PLATFORM_OUTBOX, the platform's). */
export const outboxSetKey = (p: string): string => `${p}{webhooks}:outboxes`;
/** The member of the outbox set that stands for the platform's outbox (a tenant id starts `ten_`). */
export const PLATFORM_OUTBOX = 'platform';
/** A tenant's outbox, or the platform's (null: events about no tenant, in the `{webhooks}` slot). */
export const outboxKey = (p: string, tenantId: string | null): string => (tenantId === null ? `${p}{webhooks}:outbox` : `${p}{${tenantId}}:outbox`);
