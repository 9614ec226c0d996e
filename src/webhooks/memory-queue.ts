import type { AuditInput } from '../store/types.ts';
import type { MemoryOutboxPort } from '../store/outbox.ts';
import { eventOfAudit, type OutboxMessage, type WebhookEvent } from './events.ts';
import { endpointOfJob, groupOf, groupOfJob, type CreateEndpointResult, type DeadLetter, type DeliveryLogEntry, type DropReason, type Endpoint, type EndpointHealth, type Fairness, type Job, type WebhookCaps, type JobDrop, type WebhookQueue } from './types.ts';

/** Counts per name, a name removed at zero (a group or endpoint with nothing waiting costs nothing). */
class Tally {
  readonly #n = new Map<string, number>();
  get(name: string): number {
    return this.#n.get(name) ?? 0;
  }
  add(name: string, by: number): void {
    const v = this.get(name) + by;
    if (v > 0) this.#n.set(name, v);
    else this.#n.delete(name);
  }
}

const drop = (drops: JobDrop[], group: string, reason: DropReason): void => {
  const d = drops.find((x) => x.group === group && x.reason === reason);
  if (d) d.count++;
  else drops.push({ group, reason, count: 1 });
};

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
  readonly #caps: WebhookCaps;
  get caps(): WebhookCaps {
    return this.#caps;
  }
  /** Jobs waiting per `g:<group>` and `e:<endpoint>`; dead letters per group and per endpoint (RedisWebhookQueue's keys). */
  readonly #pending = new Tally();
  readonly #deadOf = new Map<string, Set<string>>();
  /** Tenants being deleted: no endpoint of theirs can be created until (ms). */
  readonly #closed = new Map<string, number>();
  readonly #logs = new Map<string, DeliveryLogEntry[]>();
  /** Markers of events sent once, and leases: name → until (ms). */
  readonly #until = new Map<string, number>();

  constructor(outbox: MemoryOutbox, caps: WebhookCaps) {
    this.#outbox = outbox;
    this.#caps = caps;
  }

  async putEndpoint(endpoint: Endpoint): Promise<void> {
    if (this.#endpoints.has(endpoint.id)) this.#endpoints.set(endpoint.id, structuredClone(endpoint));
  }

  // No await between the count and the insert: one step, as the Redis script is.
  async createEndpoint(endpoint: Endpoint): Promise<CreateEndpointResult> {
    const maxPerTenant = this.#caps.maxEndpointsPerTenant;
    const t = endpoint.tenantId;
    if (t !== null) {
      const now = Date.now();
      for (const [id, until] of this.#closed) if (until <= now) this.#closed.delete(id);
      if (this.#closed.has(t)) return 'closed';
      let n = 0;
      for (const e of this.#endpoints.values()) if (e.tenantId === t) n++;
      if (n >= maxPerTenant) return 'limit';
    }
    this.#endpoints.set(endpoint.id, structuredClone(endpoint));
    return 'created';
  }

  async closeTenant(tenantId: string, ms: number): Promise<void> {
    this.#closed.set(tenantId, Date.now() + ms);
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
    for (const key of [...(this.#deadOf.get(`e:${id}`) ?? [])]) this.#undead(key);
    this.#logs.delete(id);
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

  /** One outbox for every tenant: nothing kept per tenant to forget. */
  async retireOutbox(): Promise<void> {}

  async addJobs(jobs: Job[], now: number): Promise<JobDrop[]> {
    const drops: JobDrop[] = [];
    for (const job of jobs) {
      if (this.#jobs.has(job.key)) continue;
      const g = groupOfJob(job);
      if (this.#pending.get(`e:${job.endpointId}`) >= this.#caps.maxPendingJobsPerEndpoint) drop(drops, g, 'pending_endpoint_cap');
      else if (this.#pending.get(`g:${g}`) >= this.#caps.maxPendingJobsPerTenant) drop(drops, g, 'pending_tenant_cap');
      else {
        this.#jobs.set(job.key, { job: structuredClone(job), due: now, dead: null });
        this.#unpend(job, 1);
      }
    }
    return drops;
  }

  #unpend(job: Job, by = -1): void {
    this.#pending.add(`g:${groupOfJob(job)}`, by);
    this.#pending.add(`e:${job.endpointId}`, by);
  }

  #deadSet(name: string): Set<string> {
    return this.#deadOf.get(name) ?? this.#deadOf.set(name, new Set()).get(name)!;
  }

  /** Removes a dead letter everywhere. */
  #undead(key: string): void {
    const j = this.#jobs.get(key);
    if (!j || j.dead === null) return;
    this.#jobs.delete(key);
    for (const name of [`g:${groupOfJob(j.job)}`, `e:${j.job.endpointId}`]) {
      const set = this.#deadOf.get(name);
      set?.delete(key);
      if (set?.size === 0) this.#deadOf.delete(name);
    }
  }

  /** The oldest dead letter of a set. */
  #oldest(set: Set<string>): string {
    let oldest = '';
    let at = Infinity;
    for (const key of set) {
      const dead = this.#jobs.get(key)?.dead ?? Infinity;
      if (dead < at || oldest === '') [oldest, at] = [key, dead];
    }
    return oldest;
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
    if (max <= 0) return;
    const log = this.#logs.get(endpointId) ?? [];
    log.unshift(entry);
    log.splice(max);
    this.#logs.set(endpointId, log);
  }

  async finish(job: Job, log: DeliveryLogEntry, logMax: number): Promise<void> {
    this.#log(job.endpointId, log, logMax);
    const j = this.#jobs.get(job.key);
    if (!j) return;
    if (j.dead !== null) return this.#undead(job.key);
    this.#jobs.delete(job.key);
    this.#unpend(j.job);
  }

  async retry(job: Job, dueAt: number, log: DeliveryLogEntry, logMax: number): Promise<void> {
    this.#log(job.endpointId, log, logMax);
    const j = this.#jobs.get(job.key);
    if (j && j.dead === null) this.#jobs.set(job.key, { job: structuredClone({ ...job, group: j.job.group }), due: dueAt, dead: null });
  }

  async bury(job: Job, log: DeliveryLogEntry, logMax: number, now: number): Promise<JobDrop[]> {
    this.#log(job.endpointId, log, logMax);
    const j = this.#jobs.get(job.key);
    if (!j || j.dead !== null) return [];
    this.#unpend(j.job);
    const next = { ...job, group: j.job.group };
    this.#jobs.set(job.key, { job: structuredClone(next), due: Infinity, dead: now });
    const g = groupOfJob(next);
    const drops: JobDrop[] = [];
    for (const [name, max, reason] of [[`e:${job.endpointId}`, this.#caps.maxDeadLettersPerEndpoint, 'dead_endpoint_cap'], [`g:${g}`, this.#caps.maxDeadLettersPerTenant, 'dead_tenant_cap']] as const) {
      const set = this.#deadSet(name).add(job.key);
      while (set.size > max) {
        this.#undead(this.#oldest(set));
        drop(drops, g, reason);
      }
    }
    return drops;
  }

  async deadLetterCount(): Promise<number> {
    let n = 0;
    for (const j of this.#jobs.values()) if (j.dead !== null) n++;
    return n;
  }

  async expireDead(now: number, limit: number): Promise<number> {
    const before = now - this.#caps.deadLetterHours * 3_600_000;
    let n = 0;
    for (const [key, j] of this.#jobs) {
      if (n >= limit) break;
      if (j.dead !== null && j.dead <= before) {
        this.#undead(key);
        n++;
      }
    }
    return n;
  }

  async deliveries(endpointId: string, limit: number): Promise<DeliveryLogEntry[]> {
    return structuredClone((this.#logs.get(endpointId) ?? []).slice(0, limit));
  }

  async deadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    return [...(this.#deadOf.get(`g:${group}`) ?? [])]
      .map((key) => this.#jobs.get(key)!)
      .sort((a, b) => b.dead! - a.dead!)
      .slice(0, limit)
      .map(({ job, dead }) => ({ key: job.key, deadAt: new Date(dead!).toISOString(), endpointId: job.endpointId, event: structuredClone(job.event), attempts: job.attempts }));
  }

  async redeliver(key: string, now: number): Promise<'redelivered' | 'missing' | 'full'> {
    const j = this.#jobs.get(key);
    if (!j || j.dead === null) return 'missing';
    if (this.#pending.get(`g:${groupOfJob(j.job)}`) >= this.#caps.maxPendingJobsPerTenant || this.#pending.get(`e:${j.job.endpointId}`) >= this.#caps.maxPendingJobsPerEndpoint) return 'full';
    this.#undead(key);
    const job = { ...j.job, since: now };
    this.#jobs.set(key, { job, due: now, dead: null });
    this.#unpend(job, 1);
    return 'redelivered';
  }
}
