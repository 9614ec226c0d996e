import type { Overview, UsageQuery, UsageReader, UsageRow } from '../api/usage.ts';
import { ApiError, codeToStatus, type ErrorCode } from '../http/errors.ts';
import type { Logger } from '../ops/logger.ts';
import type { KeyStore, UsageCounts, UsageDelta, UsageOutcome } from '../store/types.ts';

const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const MAX_MONTHS = 60;

/** How a refusal of a known key is counted: limits as rate-limited, everything else as denied. */
export const refusalOutcome = (code: ErrorCode): UsageOutcome => (codeToStatus[code] === 429 ? 'rateLimited' : 'denied');

const zero = (): UsageCounts => ({ allowed: 0, denied: 0, rateLimited: 0 });
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

// The UTC day of "now", recomputed only when a day boundary passes (record() runs on every request).
let today = { day: '', until: 0 };
function currentDay(now: number): string {
  if (now >= today.until || now < today.until - DAY_MS) {
    const start = now - (now % DAY_MS);
    today = { day: dayOf(now), until: start + DAY_MS };
  }
  return today.day;
}

export interface UsageOptions {
  flushIntervalMs: number;
  lastUsedIntervalMs: number;
}

/**
 * Usage counters and lastUsedAt, batched in memory and written behind (SPEC §6): a request costs a map
 * update, and the store sees one batch every `flushIntervalMs` and at shutdown. A failed flush is merged
 * back, so counts are delayed by an outage, not lost.
 */
export class Usage implements UsageReader {
  readonly #store: KeyStore;
  readonly #logger: Logger;
  #pending = new Map<string, { tenantId: string; keyId: string; day: string; counts: UsageCounts }>();
  #touched = new Map<string, { tenantId: string; keyId: string; at: number }>();
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(store: KeyStore, logger: Logger, opts: UsageOptions) {
    this.#store = store;
    this.#logger = logger;
    this.#timers.push(
      setInterval(() => void this.flushCounts(), opts.flushIntervalMs).unref(),
      setInterval(() => void this.flushLastUsed(), opts.lastUsedIntervalMs).unref(),
    );
  }

  record(tenantId: string, keyId: string, outcome: UsageOutcome, now = Date.now()): void {
    const day = currentDay(now);
    const id = `${keyId}|${day}`;
    let row = this.#pending.get(id);
    if (!row) this.#pending.set(id, (row = { tenantId, keyId, day, counts: zero() }));
    row.counts[outcome]++;
    if (outcome === 'allowed') this.#touched.set(keyId, { tenantId, keyId, at: now });
  }

  async flushCounts(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const deltas: UsageDelta[] = [];
    for (const r of batch.values()) {
      deltas.push({ tenantId: r.tenantId, keyId: r.keyId, period: r.day, counts: r.counts });
      deltas.push({ tenantId: r.tenantId, keyId: r.keyId, period: r.day.slice(0, 7), counts: r.counts });
    }
    try {
      await this.#store.addUsage(deltas);
    } catch (err) {
      this.#logger.warn({ err }, 'usage flush failed; will retry');
      for (const [id, r] of batch) {
        const now = this.#pending.get(id);
        if (!now) this.#pending.set(id, r);
        else for (const k of Object.keys(r.counts) as UsageOutcome[]) now.counts[k] += r.counts[k];
      }
    }
  }

  async flushLastUsed(): Promise<void> {
    if (this.#touched.size === 0) return;
    const batch = this.#touched;
    this.#touched = new Map();
    try {
      await this.#store.touchKeys([...batch.values()].map((t) => ({ tenantId: t.tenantId, keyId: t.keyId, at: new Date(t.at).toISOString() })));
    } catch (err) {
      this.#logger.warn({ err }, 'lastUsedAt flush failed; will retry');
      for (const [id, t] of batch) if (!this.#touched.has(id)) this.#touched.set(id, t);
    }
  }

  async flush(): Promise<void> {
    await Promise.all([this.flushCounts(), this.flushLastUsed()]);
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.flush();
  }

  /** lastUsedAt per key: this replica's unflushed value when newer, else the store's. */
  async lastUsedOf(tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    const stored = await this.#store.lastUsed(tenantId, keyIds);
    for (const id of keyIds) {
      const local = this.#touched.get(id);
      if (local && (!stored.has(id) || Date.parse(stored.get(id)!) < local.at)) stored.set(id, new Date(local.at).toISOString());
    }
    return stored;
  }

  async read(tenantId: string, q: UsageQuery): Promise<UsageRow[]> {
    await this.flushCounts();
    const periods = q.granularity === 'day' ? daysBetween(q.from, q.to) : monthsBetween(q.from, q.to);
    const counts = await this.#store.readUsage(tenantId, periods, q.keyId ?? null);
    return periods.map((period) => {
      const c = counts.get(period) ?? zero();
      return { period, requests: c.allowed + c.denied + c.rateLimited, ...c };
    });
  }

  async overview(): Promise<Overview> {
    await this.flushCounts();
    let tenants = 0;
    let keys = 0;
    let cursor: string | null = null;
    do {
      const page = await this.#store.listTenants({ limit: 100, cursor });
      tenants += page.data.length;
      const counts = await Promise.all(page.data.map((t) => this.#store.countKeys(t.id)));
      keys += counts.reduce((a, b) => a + b, 0);
      cursor = page.nextCursor;
    } while (cursor);
    const today = await this.#store.readTotals(dayOf(Date.now()));
    return { tenants, keys, requestsToday: today.allowed + today.denied + today.rateLimited };
  }
}

function rangeError(message: string): ApiError {
  return new ApiError('validation_error', message, { details: [{ path: 'query.from', message }] });
}

/** Days from `from` to `to` inclusive (default: the last 30 days, ending today, UTC). */
function daysBetween(from?: string, to?: string): string[] {
  const end = to ? Date.parse(`${to}T00:00:00Z`) : Date.parse(`${dayOf(Date.now())}T00:00:00Z`);
  const start = from ? Date.parse(`${from}T00:00:00Z`) : end - 29 * DAY_MS;
  if (start > end) throw rangeError('from must not be after to');
  if ((end - start) / DAY_MS + 1 > MAX_DAYS) throw rangeError(`at most ${MAX_DAYS} days per request`);
  const out: string[] = [];
  for (let t = start; t <= end; t += DAY_MS) out.push(dayOf(t));
  return out;
}

/** Months from `from` to `to` inclusive (default: the last 12 months, ending this month). */
function monthsBetween(from?: string, to?: string): string[] {
  const endMonth = (to ?? dayOf(Date.now())).slice(0, 7);
  const [ey, em] = endMonth.split('-').map(Number) as [number, number];
  const startMonth = from ? from.slice(0, 7) : new Date(Date.UTC(ey, em - 12, 1)).toISOString().slice(0, 7);
  if (startMonth > endMonth) throw rangeError('from must not be after to');
  const out: string[] = [];
  let [y, m] = startMonth.split('-').map(Number) as [number, number];
  while (`${y}-${String(m).padStart(2, '0')}` <= endMonth) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    if (out.length > MAX_MONTHS) throw rangeError(`at most ${MAX_MONTHS} months per request`);
    m++;
    if (m > 12) [y, m] = [y + 1, 1];
  }
  return out;
}
