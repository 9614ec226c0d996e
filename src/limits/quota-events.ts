// The hook for quota notifications: `quota.threshold` when 80% and when 100% of a monthly quota is
// used. The event is emitted by the one replica whose Redis increment crossed the threshold (the increments are
// atomic, so exactly one call's range contains it): once per subject, quota, threshold and month across the
// fleet, at most once (a replica that dies right after its increment takes the event with it). Delivery
// (webhooks) subscribes with `on`; keygate itself logs every event.

export type QuotaName = 'requestsPerMonth' | 'sessionMinutesPerMonth';

export interface QuotaThreshold {
  type: 'quota.threshold';
  tenantId: string;
  /** The key whose own quota it is; null for the tenant's plan-wide quota (all its keys together). */
  keyId: string | null;
  quota: QuotaName;
  threshold: 80 | 100;
  /** In the quota's unit: requests, or minutes. */
  limit: number;
  /** Used (for session minutes: handed out to live sessions) when the threshold was crossed, same unit. */
  used: number;
  /** The calendar month (UTC), YYYY-MM. */
  period: string;
  at: string;
}

export type QuotaListener = (event: QuotaThreshold) => void;

export class QuotaEvents {
  readonly #listeners: QuotaListener[] = [];

  on(listener: QuotaListener): void {
    this.#listeners.push(listener);
  }

  emit(event: QuotaThreshold): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own: the request that crossed the threshold is answered regardless.
      }
    }
  }
}

const THRESHOLDS = [80, 100] as const;

/** The thresholds (percent of `limit`) that a count going from `before` to `after` crossed. */
export function crossed(before: number, after: number, limit: number): Array<80 | 100> {
  return THRESHOLDS.filter((p) => {
    const at = (limit * p) / 100;
    return before < at && after >= at;
  });
}
