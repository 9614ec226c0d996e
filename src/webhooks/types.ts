import type { OutboxMessage, WebhookEvent } from './events.ts';

/** A secret as stored: `whsec_` + base64; an old secret keeps signing until `expiresAt` after a rotation. */
export interface EndpointSecret {
  secret: string;
  expiresAt: string | null;
}

/** A platform webhook endpoint. */
export interface Endpoint {
  id: string;
  /** The tenant whose endpoint it is (its events only); null: the platform's (every tenant's events). */
  tenantId: string | null;
  url: string;
  description: string | null;
  /** Event types delivered; `*` for all. */
  events: string[];
  secrets: EndpointSecret[];
  createdAt: string;
  updatedAt: string;
}

/** How an endpoint fares: failing since its first failure after a success; disabled after a day of failing. */
export interface EndpointHealth {
  failingSince: number | null;
  disabledAt: string | null;
}

/** One delivery of one event to one endpoint; `key` is `<event id>:<endpoint id>`. */
export interface Job {
  key: string;
  endpointId: string;
  /** The event's tenant; null for a platform event. */
  tenantId: string | null;
  event: WebhookEvent;
  /** Attempts made so far. */
  attempts: number;
  /** When the first attempt was due: retries stop `retryForHours` after it. */
  since: number;
}

export interface DeliveryLogEntry {
  eventId: string;
  eventType: string;
  attempt: number;
  /** HTTP status, or null when no answer came (refused, timed out, blocked). */
  status: number | null;
  ok: boolean;
  latencyMs: number;
  error: string | null;
  at: string;
  /** What happens next: delivered, retry (at `nextAttemptAt`), or dead (dead-lettered). */
  outcome: 'delivered' | 'retry' | 'dead';
  nextAttemptAt: string | null;
}

export interface DeadLetter {
  key: string;
  endpointId: string;
  event: WebhookEvent;
  attempts: number;
}

/**
 * How due jobs are shared (a slow or hanging receiver must not hold back anyone else's deliveries): endpoints
 * are grouped by owner — a tenant's endpoints form one group, each of the platform's is a group of its own — and
 * a group has at most `perGroup` attempts in flight on this replica (`busy` counts those already running). A due
 * job of a group at its cap is put back by `postponeMs` of its group (how long its oldest running attempt has
 * taken: a few milliseconds for a healthy receiver, up to the attempt timeout for a hanging one), so that the
 * jobs behind it are reached and a hanging group's jobs drift behind everyone else's.
 */
export interface Fairness {
  perGroup: number;
  busy: ReadonlyMap<string, number>;
  postponeMs: ReadonlyMap<string, number>;
}

/**
 * The fairness group of an endpoint: its tenant, or (the platform's) the endpoint itself. The queues read it from
 * the stored endpoints; a deleted endpoint is a group of its own.
 */
export const groupOf = (e: Endpoint): string => e.tenantId ?? e.id;

/** The endpoint of a job key `<event id>:<endpoint id>`. */
export const endpointOfJob = (key: string): string => key.slice(key.lastIndexOf(':') + 1);

/**
 * Where webhook endpoints, the outboxes and the delivery state live: Redis (fleet-wide) or memory (embedded,
 * one process). The delivery worker (worker.ts) is the same for both.
 */
export interface WebhookQueue {
  putEndpoint(endpoint: Endpoint): Promise<void>;
  getEndpoint(id: string): Promise<Endpoint | null>;
  listEndpoints(): Promise<Endpoint[]>;
  deleteEndpoint(id: string): Promise<boolean>;
  /** Health of the endpoints that have failed since their last success (absent: healthy). */
  health(): Promise<Map<string, EndpointHealth>>;
  /** null: healthy again (a success, or re-enabled). */
  setHealth(id: string, health: EndpointHealth | null): Promise<void>;
  /** Records the start of a run of failures unless one is recorded already; returns the record that holds. */
  startFailing(id: string, since: number): Promise<EndpointHealth>;
  /** Disables the endpoint if it is failing and not disabled yet; true for the one caller that did it. */
  disable(id: string, health: EndpointHealth): Promise<boolean>;

  /**
   * An event without a store mutation beside it (quota.threshold, limits.blocked, webhook.disabled): written to
   * the tenant's outbox, or the platform's (tenantId null).
   */
  enqueue(tenantId: string | null, event: WebhookEvent): Promise<void>;
  /**
   * Writes the event unless `marker` (per tenant) was written before, atomically: the event is sent once across
   * the fleet however many replicas find it. The marker is kept `ttlMs`. True when written now.
   */
  enqueueOnce(tenantId: string, marker: string, ttlMs: number, event: WebhookEvent): Promise<boolean>;
  /** True for the one caller (fleet-wide) that takes `name` for `ms`. */
  lease(name: string, ms: number): Promise<boolean>;
  /** Outbox entries for this consumer: new ones, and those another consumer held longer than `claimIdleMs`. */
  readOutbox(consumer: string, count: number, claimIdleMs: number): Promise<OutboxMessage[]>;
  ackOutbox(messages: OutboxMessage[]): Promise<void>;

  /** Adds deliveries due now; a job already waiting (the same event fanned out again) is left as it is. */
  addJobs(jobs: Job[], now: number): Promise<void>;
  /** Jobs due by `now`, leased until `leaseUntil` (a replica that dies holding one leaves it to another). */
  takeDue(now: number, leaseUntil: number, count: number, fairness: Fairness): Promise<Job[]>;
  finish(job: Job, log: DeliveryLogEntry, logMax: number): Promise<void>;
  retry(job: Job, dueAt: number, log: DeliveryLogEntry, logMax: number): Promise<void>;
  bury(job: Job, log: DeliveryLogEntry, logMax: number, now: number): Promise<void>;
  deliveries(endpointId: string, limit: number): Promise<DeliveryLogEntry[]>;
  deadLetters(limit: number): Promise<DeadLetter[]>;
  /** Back to due now with a fresh retry window; false when no such dead letter. */
  redeliver(key: string, now: number): Promise<boolean>;
}
