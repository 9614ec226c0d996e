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
  /**
   * Whose caps the job counts against: its endpoint's fairness group (groupOf), fixed when the job is made. A job
   * written before this field existed counts against its endpoint (`groupOfJob`).
   */
  group?: string;
}

/** The cap group of a job (types.ts Job.group). */
export const groupOfJob = (job: Job): string => job.group ?? job.endpointId;

/**
 * How many delivery jobs may wait (pending: due or being retried) and how many dead letters are kept, per group
 * (a tenant's endpoints together, or one platform endpoint) and per endpoint, and how long a dead letter is kept.
 * At a pending cap a new job is not written (dropped); at a dead-letter cap the oldest dead letter of that
 * group or endpoint is removed to make room. Both are reported (JobDrops), never silent.
 */
export interface WebhookCaps {
  /** Endpoints one tenant may have (the platform's are not counted). */
  maxEndpointsPerTenant: number;
  maxPendingJobsPerTenant: number;
  maxPendingJobsPerEndpoint: number;
  maxDeadLettersPerTenant: number;
  maxDeadLettersPerEndpoint: number;
  deadLetterHours: number;
}

/** Why jobs were dropped: a closed set (a metric label). */
export const DROP_REASONS = ['pending_tenant_cap', 'pending_endpoint_cap', 'dead_tenant_cap', 'dead_endpoint_cap', 'dead_expired'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Jobs dropped by one queue call: how many, per group and reason. */
export interface JobDrop {
  group: string;
  reason: DropReason;
  count: number;
}

/** Creating a tenant's endpoint: made, refused at the tenant's cap, or refused because the tenant is being deleted. */
export type CreateEndpointResult = 'created' | 'limit' | 'closed';

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
  /** When it was dead-lettered (ISO); it is removed `deadLetterHours` after. */
  deadAt?: string;
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
  readonly caps: WebhookCaps;
  /** Replaces an existing endpoint (a secret rotation). */
  putEndpoint(endpoint: Endpoint): Promise<void>;
  /**
   * Adds a new endpoint. A tenant's is counted and written in one step: refused at `maxEndpointsPerTenant` of its
   * endpoints, or once the tenant is closed (closeTenant). The platform's (tenantId null) are not counted.
   */
  createEndpoint(endpoint: Endpoint): Promise<CreateEndpointResult>;
  /** From now on (for `ms`) no endpoint of the tenant can be created: the first step of deleting a tenant. */
  closeTenant(tenantId: string, ms: number): Promise<void>;
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
  /**
   * Outbox entries for this consumer: new ones, and those another consumer held longer than `claimIdleMs`. The
   * work of one call is bounded by constants, not by the number of tenants (RedisWebhookQueue).
   */
  readOutbox(consumer: string, count: number, claimIdleMs: number): Promise<OutboxMessage[]>;
  /**
   * The tenant is deleted (after its deletion has written its last events): its outbox is forgotten once every
   * entry in it has been fanned out.
   */
  retireOutbox(tenantId: string): Promise<void>;
  ackOutbox(messages: OutboxMessage[]): Promise<void>;

  /**
   * Adds deliveries due now; a job already waiting (the same event fanned out again) is left as it is, and one
   * over a pending cap (WebhookCaps) is dropped and reported.
   */
  addJobs(jobs: Job[], now: number): Promise<JobDrop[]>;
  /** Jobs due by `now`, leased until `leaseUntil` (a replica that dies holding one leaves it to another). */
  takeDue(now: number, leaseUntil: number, count: number, fairness: Fairness): Promise<Job[]>;
  finish(job: Job, log: DeliveryLogEntry, logMax: number): Promise<void>;
  retry(job: Job, dueAt: number, log: DeliveryLogEntry, logMax: number): Promise<void>;
  /** Dead-letters the job; older dead letters over a dead-letter cap are removed and reported. */
  bury(job: Job, log: DeliveryLogEntry, logMax: number, now: number): Promise<JobDrop[]>;
  deliveries(endpointId: string, limit: number): Promise<DeliveryLogEntry[]>;
  /** The newest dead letters of one group (a tenant, or a platform endpoint), newest first. */
  deadLetters(group: string, limit: number): Promise<DeadLetter[]>;
  /**
   * Back to due now with a fresh retry window: `missing` when no such dead letter, `full` when its group or
   * endpoint has its cap of pending jobs.
   */
  redeliver(key: string, now: number): Promise<'redelivered' | 'missing' | 'full'>;
  /** Dead letters kept, fleet-wide (every owner's). */
  deadLetterCount(): Promise<number>;
  /** Removes up to `limit` dead letters older than `deadLetterHours`; returns how many. */
  expireDead(now: number, limit: number): Promise<number>;
}
