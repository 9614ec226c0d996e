import type { Logger } from '../ops/logger.ts';
import { DROP_REASONS, type DropReason, type JobDrop } from './types.ts';

/** How often a tenant's audit log hears of its dropped jobs, at most (one entry with the counts). */
const AUDIT_EVERY_MS = 60_000;

export interface DropSinks {
  /** The metric, by reason (a closed set). */
  count(reason: DropReason, n: number): void;
  /** One entry in a tenant's audit log: how many of its jobs were dropped since the last, by reason. */
  audit(tenantId: string, counts: Partial<Record<DropReason, number>>): Promise<void>;
}

/**
 * Where dropped webhook jobs are reported (never silently): each drop is counted at once; a tenant's are
 * written to its audit log as one entry with the counts — the first drops after a quiet minute at once, later ones
 * collected until the minute ends (at most about one entry a minute per tenant) — so a tenant
 * whose receivers are down cannot flood its own audit log with them; a platform endpoint's are logged. Expired
 * dead letters are their documented end (counted, not audited). What waits for the next entry is one small
 * record per tenant that had drops in the last minute.
 */
export class DropReporter {
  readonly #sinks: DropSinks;
  readonly #logger: Logger;
  readonly #waiting = new Map<string, Partial<Record<DropReason, number>>>();
  #timer: NodeJS.Timeout | null = null;

  constructor(sinks: DropSinks, logger: Logger) {
    this.#sinks = sinks;
    this.#logger = logger;
    for (const reason of DROP_REASONS) sinks.count(reason, 0);
  }

  report(drops: JobDrop[]): void {
    for (const d of drops) {
      if (d.count <= 0) continue;
      this.#sinks.count(d.reason, d.count);
      if (d.reason === 'dead_expired') continue;
      const counts = this.#waiting.get(d.group) ?? this.#waiting.set(d.group, {}).get(d.group)!;
      counts[d.reason] = (counts[d.reason] ?? 0) + d.count;
    }
    // The first drops after a quiet minute are written at once; those that follow wait for the minute's end.
    if (this.#waiting.size && !this.#timer) void this.#write();
  }

  #write(): Promise<void> {
    if (!this.#waiting.size) {
      this.#timer = null;
      return Promise.resolve();
    }
    this.#timer = setTimeout(() => void this.#write(), AUDIT_EVERY_MS);
    this.#timer.unref();
    return this.#drain();
  }

  /** Writes what is waiting now (at shutdown). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#drain();
  }

  async #drain(): Promise<void> {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    await Promise.all(waiting.map(async ([group, counts]) => {
      // A group is a tenant id, or a platform endpoint's id (its own group).
      if (!group.startsWith('ten_')) return this.#logger.warn({ endpointId: group, dropped: counts }, 'webhook jobs of a platform endpoint dropped at a cap');
      try {
        await this.#sinks.audit(group, counts);
      } catch (err) {
        this.#logger.warn({ err, tenantId: group, dropped: counts }, 'webhook jobs dropped at a cap; the audit entry could not be written');
      }
    }));
  }
}
