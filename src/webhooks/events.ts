import { monotonicFactory } from 'ulid';
import type { Outbox } from '../store/outbox.ts';
import type { AuditInput } from '../store/types.ts';

// Webhook events: the payload of the Standard Webhooks format (`type`, `timestamp`, `data`) plus the
// message id that is sent as `webhook-id`. The id is chosen when the event is written to the outbox, so every
// attempt and every duplicate of one event carries the same `webhook-id` (receivers dedupe on it).

export const WEBHOOK_EVENT_TYPES = ['key.created', 'key.updated', 'key.rotated', 'key.revoked', 'key.expiring', 'key.expired', 'quota.threshold', 'limits.blocked', 'webhook.disabled'] as const;
/** Events about no tenant: written to the platform's outbox, delivered to the platform's endpoints only. */
export const PLATFORM_EVENT_TYPES: ReadonlySet<string> = new Set(['limits.blocked']);
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  timestamp: string;
  data: Record<string, unknown>;
}

/** An outbox entry: the event and the tenant it is about. */
export interface OutboxMessage {
  /** Where the entry sits in its outbox (stream entry id), to acknowledge it. */
  ref: string;
  /** null: the platform's outbox (an event about no tenant). */
  tenantId: string | null;
  event: WebhookEvent;
}

const ulid = monotonicFactory();
export const newMessageId = (): string => `msg_${ulid()}`;

/**
 * At most `perMinute` calls of `send` per minute (a fixed window); the calls over it are dropped and counted, and
 * the next call sent is told how many (`suppressed`). For events a client can cause at will (limits.blocked).
 */
export function perMinute<A extends unknown[]>(limit: number, send: (suppressed: number, ...args: A) => void): (...args: A) => void {
  let windowStart = 0;
  let sent = 0;
  let suppressed = 0;
  return (...args) => {
    const now = Date.now();
    if (now - windowStart >= 60_000) {
      windowStart = now;
      sent = 0;
    }
    if (sent >= limit) {
      suppressed++;
      return;
    }
    sent++;
    const dropped = suppressed;
    suppressed = 0;
    send(dropped, ...args);
  };
}

export const newEvent = (type: WebhookEventType, data: Record<string, unknown>, at = new Date()): WebhookEvent => ({ id: newMessageId(), type, timestamp: at.toISOString(), data });

const KEY_EVENTS = new Set<string>(['key.created', 'key.updated', 'key.rotated', 'key.revoked']);

/** The event a key mutation's audit line stands for, or null (tenant changes and refusals send none). */
export function eventOfAudit(tenantId: string, audit: AuditInput): WebhookEvent | null {
  if (!KEY_EVENTS.has(audit.action) || audit.keyId === null) return null;
  return {
    id: newMessageId(),
    type: audit.action as WebhookEventType,
    timestamp: new Date().toISOString(),
    data: { tenantId, keyId: audit.keyId, actor: audit.actor, ...audit.details },
  };
}

/** The outbox port the stores write through (store/outbox.ts): key mutations become webhook events. */
export const webhookOutbox: Outbox = { eventOf: eventOfAudit };
