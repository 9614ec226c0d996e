import type { AuditInput } from '../store/types.ts';
import type { MemoryOutboxPort } from '../store/outbox.ts';
import { eventOfAudit, type OutboxMessage, type WebhookEvent } from './events.ts';
import { endpointOfJob, groupOf, type DeadLetter, type DeliveryLogEntry, type Endpoint, type EndpointHealth, type Fairness, type Job, type WebhookQueue } from './types.ts';

/** Where the embedded store (store/memory) writes webhook events, in the same synchronous step as the mutation. */
export class MemoryOutbox implements MemoryOutboxPort {
  readonly #entries: OutboxMessage[] = [];
  #seq = 0;

  eventOf(tenantId: string, audit: AuditInput): WebhookEvent | null {
    return eventOfAudit(tenantId, audit);
  }

  append(tenantId: string, event: object): void {
    this.push(tenantId, event as WebhookEvent);
  }

  push(tenantId: string | null, event: WebhookEvent): void {
    this.#entries.push({ ref: String(++this.#seq), tenantId, event: structuredClone(event) });
  }

  drain(count: number): OutboxMessage[] {
    return this.#entries.splice(0, count);
  }
}

/**
 * The single-process equivalent of RedisWebhookQueue, for the embedded mode: the same jobs, leases, retries,
 * dead letters and delivery log, held in memory (lost when the process stops, like everything embedded).
 */
export class MemoryWebhookQueue implements WebhookQueue {
  readonly #outbox: MemoryOutbox;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #jobs = new Map<string, { job: Job; due: number; dead: number | null }>();
  readonly #logs = new Map<string, DeliveryLogEntry[]>();
  /** Markers of events sent once, and leases: name → until (ms). */
  readonly #until = new Map<string, number>();

  constructor(outbox: MemoryOutbox) {
    this.#outbox = outbox;
  }

  async putEndpoint(endpoint: Endpoint): Promise<void> {
    this.#endpoints.set(endpoint.id, structuredClone(endpoint));
  }

  async getEndpoint(id: string): Promise<Endpoint | null> {
    const e = this.#endpoints.get(id);
    return e ? structuredClone(e) : null;
  }

  async listEndpoints(): Promise<Endpoint[]> {
    return [...this.#endpoints.values()].map((e) => structuredClone(e)).sort((a, b) => a.id.localeCompare(b.id));
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    this.#health.delete(id);
    return this.#endpoints.delete(id);
  }

  readonly #health = new Map<string, EndpointHealth>();

  async health(): Promise<Map<string, EndpointHealth>> {
    return structuredClone(this.#health);
  }

  async setHealth(id: string, health: EndpointHealth | null): Promise<void> {
    if (health === null) this.#health.delete(id);
    else this.#health.set(id, structuredClone(health));
  }

  async startFailing(id: string, since: number): Promise<EndpointHealth> {
    const cur = this.#health.get(id) ?? { failingSince: since, disabledAt: null };
    this.#health.set(id, cur);
    return structuredClone(cur);
  }

  async disable(id: string, health: EndpointHealth): Promise<boolean> {
    const cur = this.#health.get(id);
    if (!cur || cur.disabledAt) return false;
    this.#health.set(id, structuredClone(health));
    return true;
  }

  async enqueue(tenantId: string | null, event: WebhookEvent): Promise<void> {
    this.#outbox.push(tenantId, event);
  }

  #take(name: string, ms: number): boolean {
    const now = Date.now();
    if ((this.#until.get(name) ?? 0) > now) return false;
    this.#until.set(name, now + ms);
    return true;
  }

  async enqueueOnce(tenantId: string, marker: string, ttlMs: number, event: WebhookEvent): Promise<boolean> {
    if (!this.#take(`once:${tenantId}:${marker}`, ttlMs)) return false;
    this.#outbox.push(tenantId, event);
    return true;
  }

  async lease(name: string, ms: number): Promise<boolean> {
    return this.#take(`lease:${name}`, ms);
  }

  // One process: an entry handed out is fanned out before the next await, so nothing is ever left to claim.
  async readOutbox(_consumer: string, count: number): Promise<OutboxMessage[]> {
    return this.#outbox.drain(count);
  }

  async ackOutbox(): Promise<void> {}

  async addJobs(jobs: Job[], now: number): Promise<void> {
    for (const job of jobs) if (!this.#jobs.has(job.key)) this.#jobs.set(job.key, { job: structuredClone(job), due: now, dead: null });
  }

  async takeDue(now: number, leaseUntil: number, count: number, fairness: Fairness): Promise<Job[]> {
    const busy = new Map(fairness.busy);
    const taken: Job[] = [];
    for (const j of [...this.#jobs.values()].filter((x) => x.dead === null && x.due <= now).sort((a, b) => a.due - b.due)) {
      if (taken.length >= count) break;
      const ep = endpointOfJob(j.job.key);
      const e = this.#endpoints.get(ep);
      const group = e ? groupOf(e) : ep;
      const running = busy.get(group) ?? 0;
      if (running >= fairness.perGroup) {
        j.due = now + (fairness.postponeMs.get(group) ?? 50);
        continue;
      }
      busy.set(group, running + 1);
      j.due = leaseUntil;
      taken.push(structuredClone(j.job));
    }
    return taken;
  }

  #log(endpointId: string, entry: DeliveryLogEntry, max: number): void {
    const log = this.#logs.get(endpointId) ?? [];
    log.unshift(entry);
    log.splice(max);
    this.#logs.set(endpointId, log);
  }

  async finish(job: Job, log: DeliveryLogEntry, logMax: number): Promise<void> {
    this.#jobs.delete(job.key);
    this.#log(job.endpointId, log, logMax);
  }

  async retry(job: Job, dueAt: number, log: DeliveryLogEntry, logMax: number): Promise<void> {
    this.#log(job.endpointId, log, logMax);
    if (this.#jobs.has(job.key)) this.#jobs.set(job.key, { job: structuredClone(job), due: dueAt, dead: null });
  }

  async bury(job: Job, log: DeliveryLogEntry, logMax: number, now: number): Promise<void> {
    this.#log(job.endpointId, log, logMax);
    if (this.#jobs.has(job.key)) this.#jobs.set(job.key, { job: structuredClone(job), due: Infinity, dead: now });
  }

  async deliveries(endpointId: string, limit: number): Promise<DeliveryLogEntry[]> {
    return structuredClone((this.#logs.get(endpointId) ?? []).slice(0, limit));
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    return [...this.#jobs.values()]
      .filter((j) => j.dead !== null)
      .sort((a, b) => b.dead! - a.dead!)
      .slice(0, limit)
      .map(({ job }) => ({ key: job.key, endpointId: job.endpointId, event: structuredClone(job.event), attempts: job.attempts }));
  }

  async redeliver(key: string, now: number): Promise<boolean> {
    const j = this.#jobs.get(key);
    if (!j || j.dead === null) return false;
    this.#jobs.set(key, { job: { ...j.job, since: now }, due: now, dead: null });
    return true;
  }
}
