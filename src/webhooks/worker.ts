import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../ops/logger.ts';
import { Deliverer, signatures } from './deliver.ts';
import { newEvent, type OutboxMessage } from './events.ts';
import { groupOf, type DeliveryLogEntry, type Endpoint, type EndpointHealth, type Job, type JobDrop, type WebhookQueue } from './types.ts';

const BATCH = 50;
/** Attempts in flight per replica. */
const PARALLEL = 32;
/**
 * Attempts in flight per replica for one tenant's endpoints together, or one of the platform's (types.ts
 * Fairness): a tenant's hanging receivers hold a quarter of the slots, never all of them.
 */
const PER_GROUP = 8;
/** The least a capped group's due job is put back (types.ts Fairness). */
const MIN_POSTPONE_MS = 50;
/** How often a replica removes expired dead letters, and the most per round (more wait for the next poll). */
const EXPIRE_EVERY_MS = 60_000;
const EXPIRE_BATCH = 1_000;

/** Exponential backoff with jitter: attempt n waits base·2^(n-1), capped, times a random factor in [0.5, 1). */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempts - 1, 40));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** The platform's endpoints hear of every tenant; a tenant's, of its own events only. */
const wants = (endpoint: Endpoint, m: OutboxMessage): boolean =>
  (endpoint.tenantId === null || endpoint.tenantId === m.tenantId) && (endpoint.events.includes('*') || endpoint.events.includes(m.event.type));

/**
 * Delivers webhook events, at least once, on every replica: each poll it fans new outbox entries out into one
 * job per interested endpoint (then acknowledges them) and starts the jobs that are due, up to PARALLEL attempts
 * at a time and PER_GROUP per tenant or platform endpoint (a slot that frees starts the next due job at once). A failed attempt
 * is retried with backoff until `retryForHours` after the first, then dead-lettered. Every attempt goes to the
 * endpoint's delivery log.
 */
export class WebhookWorker {
  readonly #queue: WebhookQueue;
  readonly #cfg: Config['webhooks'];
  readonly #logger: Logger;
  readonly #deliverer: Deliverer;
  readonly #consumer = `c-${randomBytes(6).toString('hex')}`;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  /** Due jobs are being taken (at most one takeDue at a time); `#refill` asks for another round after it. */
  #filling: Promise<void> | null = null;
  #refill = false;
  #stopped = false;
  /** Attempts in flight, and how many per endpoint. */
  readonly #attempts = new Set<Promise<void>>();
  readonly #busy = new Map<string, number>();
  /** Per group, when each of its running attempts started. */
  readonly #startedAt = new Map<string, number[]>();
  /** Endpoint health as of the last poll, kept up to date by this replica's own attempts. */
  #health = new Map<string, EndpointHealth>();
  #endpoints = new Map<string, Endpoint>();
  /** Also tells a tenant that its endpoint was disabled (its audit log). */
  readonly #onDisabled: (endpoint: Endpoint) => Promise<void>;
  /** Where jobs dropped at a cap, and expired dead letters, are reported (drops.ts). */
  readonly #onDropped: (drops: JobDrop[]) => void;
  #nextExpiry = 0;

  constructor(queue: WebhookQueue, cfg: Config['webhooks'], logger: Logger, onDisabled: (endpoint: Endpoint) => Promise<void> = async () => {}, onDropped: (drops: JobDrop[]) => void = () => {}) {
    this.#queue = queue;
    this.#onDisabled = onDisabled;
    this.#onDropped = onDropped;
    this.#cfg = cfg;
    this.#logger = logger;
    this.#deliverer = new Deliverer({ timeoutMs: cfg.timeoutMs, maxResponseBytes: cfg.maxResponseBytes, allowPrivateTargets: cfg.allowPrivateTargets });
  }

  /** A delivery is leased for longer than an attempt can take, so only a dead replica's lease runs out. */
  get #leaseMs(): number {
    return Math.max(this.#cfg.claimIdleMs, this.#cfg.timeoutMs * 2);
  }

  start(): void {
    const tick = () => {
      if (this.#stopped) return;
      this.#polling = this.#poll()
        .catch((err: unknown) => this.#logger.warn({ err }, 'webhook delivery poll failed'))
        .finally(() => {
          this.#polling = null;
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#cfg.pollIntervalMs);
        });
    };
    this.#timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#polling;
    await this.#filling;
    await Promise.all(this.#attempts);
    await this.#deliverer.close();
  }

  async #poll(): Promise<void> {
    const now = Date.now();
    const [health, endpoints] = await Promise.all([this.#queue.health(), this.#queue.listEndpoints()]);
    this.#health = health;
    this.#endpoints = new Map(endpoints.map((e) => [e.id, e]));
    const messages = await this.#queue.readOutbox(this.#consumer, BATCH, this.#cfg.claimIdleMs);
    if (messages.length) await this.#fanOut(messages, now);
    await this.#fill();
    if (now >= this.#nextExpiry) {
      const expired = await this.#queue.expireDead(now, EXPIRE_BATCH);
      if (expired) this.#onDropped([{ group: '', reason: 'dead_expired', count: expired }]);
      // A full batch: more are waiting, taken on the next poll.
      this.#nextExpiry = expired >= EXPIRE_BATCH ? now : now + EXPIRE_EVERY_MS;
    }
  }

  /** Starts due jobs in the free slots; one round at a time (a slot freed meanwhile asks for another). */
  #fill(): Promise<void> {
    if (this.#filling) {
      this.#refill = true;
      return this.#filling;
    }
    this.#filling = (async () => {
      do {
        this.#refill = false;
        const free = PARALLEL - this.#attempts.size;
        if (this.#stopped || free <= 0) return;
        const now = Date.now();
        const postponeMs = new Map([...this.#startedAt].map(([g, starts]) => [g, Math.max(MIN_POSTPONE_MS, now - Math.min(...starts))]));
        const fairness = { perGroup: PER_GROUP, busy: this.#busy, postponeMs };
        const jobs = await this.#queue.takeDue(Date.now(), Date.now() + this.#leaseMs, free, fairness);
        if (!jobs.length) continue;
        for (const job of jobs) this.#launch(job);
      } while (this.#refill);
    })()
      .catch((err: unknown) => this.#logger.warn({ err }, 'webhook delivery: taking due jobs failed'))
      .finally(() => {
        this.#filling = null;
      });
    return this.#filling;
  }

  #launch(job: Job): void {
    const endpoint = this.#endpoints.get(job.endpointId) ?? null;
    const group = endpoint ? groupOf(endpoint) : job.endpointId;
    this.#busy.set(group, (this.#busy.get(group) ?? 0) + 1);
    const started = Date.now();
    const starts = this.#startedAt.get(group) ?? this.#startedAt.set(group, []).get(group)!;
    starts.push(started);
    const attempt: Promise<void> = this.#attempt(job, endpoint)
      .catch((err: unknown) => this.#logger.warn({ err, endpointId: job.endpointId, eventId: job.event.id }, 'webhook delivery attempt failed to record'))
      .finally(() => {
        this.#attempts.delete(attempt);
        const left = (this.#busy.get(group) ?? 1) - 1;
        starts.splice(starts.indexOf(started), 1);
        if (left > 0) this.#busy.set(group, left);
        else {
          this.#busy.delete(group);
          this.#startedAt.delete(group);
        }
        if (!this.#stopped) void this.#fill();
      });
    this.#attempts.add(attempt);
  }

  async #fanOut(messages: OutboxMessage[], now: number): Promise<void> {
    // A disabled endpoint gets no new events until it is enabled again.
    const endpoints = [...this.#endpoints.values()].filter((e) => !this.#health.get(e.id)?.disabledAt);
    const jobs: Job[] = [];
    for (const m of messages) {
      for (const e of endpoints) {
        if (wants(e, m)) jobs.push({ key: `${m.event.id}:${e.id}`, endpointId: e.id, tenantId: m.tenantId, event: m.event, attempts: 0, since: now, group: groupOf(e) });
      }
    }
    // Jobs first, then the acknowledgement: a crash between the two fans the entry out again (a duplicate with
    // the same webhook-id, never a loss).
    const dropped = await this.#queue.addJobs(jobs, now);
    if (dropped.length) this.#onDropped(dropped);
    await this.#queue.ackOutbox(messages);
  }

  async #attempt(job: Job, endpoint: Endpoint | null): Promise<void> {
    const health = this.#health;
    const attempt = job.attempts + 1;
    const next: Job = { ...job, attempts: attempt };
    const entry = (r: { status: number | null; ok: boolean; latencyMs: number; error: string | null }, outcome: DeliveryLogEntry['outcome'], nextAt: number | null): DeliveryLogEntry => ({
      eventId: job.event.id,
      eventType: job.event.type,
      attempt,
      ...r,
      at: new Date().toISOString(),
      outcome,
      nextAttemptAt: nextAt === null ? null : new Date(nextAt).toISOString(),
    });
    const max = this.#cfg.deliveryLogEntries;
    if (!endpoint) {
      // The endpoint was deleted: nothing to deliver to, and no log to write to (it went with the endpoint).
      await this.#queue.finish(next, entry({ status: null, ok: false, latencyMs: 0, error: 'endpoint deleted' }, 'dead', null), 0);
      return;
    }
    if (health.get(endpoint.id)?.disabledAt) {
      // Queued before it was disabled: dead-lettered at once (redeliverable once it is enabled again).
      this.#onDropped(await this.#queue.bury(next, entry({ status: null, ok: false, latencyMs: 0, error: 'endpoint disabled' }, 'dead', null), max, Date.now()));
      return;
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: job.event.type, timestamp: job.event.timestamp, data: job.event.data });
    const result = await this.#deliverer.post(endpoint.url, {
      'webhook-id': job.event.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatures(endpoint.secrets, job.event.id, timestamp, body),
    }, body);
    if (result.ok) {
      await this.#queue.finish(next, entry(result, 'delivered', null), max);
      if (this.#health.has(endpoint.id)) {
        this.#health.delete(endpoint.id);
        await this.#queue.setHealth(endpoint.id, null);
      }
      return;
    }
    const now = Date.now();
    const dueAt = now + backoffMs(attempt, this.#cfg.retryBaseMs, this.#cfg.retryMaxMs);
    await this.#failing(endpoint, job.since, dueAt);
    if (dueAt - job.since > this.#cfg.retryForHours * 3_600_000) {
      this.#onDropped(await this.#queue.bury(next, entry(result, 'dead', null), max, now));
      this.#logger.warn({ endpointId: endpoint.id, eventId: job.event.id, attempts: attempt }, 'webhook dead-lettered after its retry window');
      return;
    }
    await this.#queue.retry(next, dueAt, entry(result, 'retry', dueAt), max);
  }

  /**
   * An endpoint failing, without a success, for `retryForHours` is disabled and its owner told. It fails since
   * the first undelivered event of the run of failures was due (`since`), so it is disabled at the latest
   * when that event is dead-lettered (the same test against the next attempt's due time). Both steps are
   * conditional in the store, so replicas failing the same endpoint at once agree on one run of failures and
   * one disabling (one webhook.disabled).
   */
  async #failing(endpoint: Endpoint, since: number, dueAt: number): Promise<void> {
    const now = Date.now();
    let h = this.#health.get(endpoint.id);
    if (!h) {
      h = await this.#queue.startFailing(endpoint.id, Math.min(since, now));
      this.#health.set(endpoint.id, h);
    }
    if (h.disabledAt || h.failingSince === null || dueAt - h.failingSince <= this.#cfg.retryForHours * 3_600_000) return;
    const disabled = { ...h, disabledAt: new Date(now).toISOString() };
    this.#health.set(endpoint.id, disabled);
    // Another replica disabled it first (and told the owner), or a success cleared it meanwhile.
    if (!(await this.#queue.disable(endpoint.id, disabled))) return;
    const failingSince = new Date(h.failingSince).toISOString();
    this.#logger.warn({ endpointId: endpoint.id, tenantId: endpoint.tenantId, failingSince }, 'webhook endpoint disabled: failing for retryForHours');
    // Its owner hears of it on the channels that still work: the owner's other endpoints (and, for a tenant's,
    // the platform's) through a webhook.disabled event, and a tenant's audit log.
    const data = { ...(endpoint.tenantId ? { tenantId: endpoint.tenantId } : {}), endpointId: endpoint.id, url: endpoint.url, failingSince, disabledAt: disabled.disabledAt };
    const told = await Promise.allSettled([this.#queue.enqueue(endpoint.tenantId, newEvent('webhook.disabled', data, new Date(now))), this.#onDisabled(endpoint)]);
    for (const t of told) if (t.status === 'rejected') this.#logger.warn({ err: t.reason as unknown, endpointId: endpoint.id }, 'could not tell the owner of a disabled webhook endpoint');
  }
}
