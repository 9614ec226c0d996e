import { codeToStatus, type ErrorCode } from '../http/errors.ts';

/** The columns of the console's fleet chart: allowed, the refusals operators ask about, and the rest. */
export const DECISION_BUCKETS = ['allowed', '401', '403', '429', '503', 'other'] as const;
export type DecisionBucket = (typeof DECISION_BUCKETS)[number];

const MINUTE_MS = 60_000;

const bucketOf = (decision: string): number => {
  if (decision === 'allowed') return 0;
  const status = codeToStatus[decision as ErrorCode] as number | undefined;
  const i = DECISION_BUCKETS.indexOf(String(status) as DecisionBucket);
  return i > 0 ? i : DECISION_BUCKETS.length - 1;
};

export interface MinuteCounts {
  /** The minute's start (ISO). */
  at: string;
  counts: Record<DecisionBucket, number>;
}

/**
 * Decisions of this process per minute, for the last `minutes` minutes: a fixed ring of counters (minutes × 6
 * numbers, 180 minutes ≈ 8 KiB), so its size never depends on traffic. A minute older than the ring is
 * overwritten by the newest. Per process: with several replicas (or workers) each shows its own traffic; the
 * fleet-wide figures are the stored usage counters and `keygate_auth_decisions_total`.
 */
export class DecisionRing {
  readonly #minutes: number;
  readonly #counts: Float64Array;
  /** The minute number (ms / 60,000) each slot holds; -1 = empty. */
  readonly #slotMinute: Float64Array;
  readonly #now: () => number;

  constructor(minutes: number, now: () => number = Date.now) {
    this.#minutes = minutes;
    this.#counts = new Float64Array(minutes * DECISION_BUCKETS.length);
    this.#slotMinute = new Float64Array(minutes).fill(-1);
    this.#now = now;
  }

  record(decision: string): void {
    const minute = Math.floor(this.#now() / MINUTE_MS);
    const slot = minute % this.#minutes;
    if (this.#slotMinute[slot] !== minute) {
      this.#slotMinute[slot] = minute;
      this.#counts.fill(0, slot * DECISION_BUCKETS.length, (slot + 1) * DECISION_BUCKETS.length);
    }
    this.#counts[slot * DECISION_BUCKETS.length + bucketOf(decision)]!++;
  }

  /** Every minute of the ring, oldest first, ending with the current one (zeros where nothing was decided). */
  read(): MinuteCounts[] {
    const current = Math.floor(this.#now() / MINUTE_MS);
    const out: MinuteCounts[] = [];
    for (let minute = current - this.#minutes + 1; minute <= current; minute++) {
      const slot = minute % this.#minutes;
      const held = this.#slotMinute[slot] === minute;
      const counts = {} as Record<DecisionBucket, number>;
      DECISION_BUCKETS.forEach((b, i) => (counts[b] = held ? this.#counts[slot * DECISION_BUCKETS.length + i]! : 0));
      out.push({ at: new Date(minute * MINUTE_MS).toISOString(), counts });
    }
    return out;
  }
}
