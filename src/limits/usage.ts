import { randomBytes } from 'node:crypto';
import type { Overview, UsageQuery, UsageReader, UsageRow } from './usage-report.ts';
import { ApiError, codeToStatus, type ErrorCode } from '../http/errors.ts';
import type { Logger } from '../ops/logger.ts';
import { USAGE_FIELDS, zeroCounts, type KeyStore, type RefusalCounts, type UsageBatch, type UsageCounts, type UsageDelta, type UsageOutcome } from '../store/types.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Hourly counts are kept this long (the stores expire them); a query may span at most this many hours. */
export const HOURLY_DAYS = 14;
const MAX_HOURS = HOURLY_DAYS * 24;
const MAX_DAYS = 366;
const MAX_MONTHS = 60;

/** The codes a tenant's refusals are counted by: keygate's documented error codes, a fixed set. */
export const REFUSAL_CODES: readonly ErrorCode[] = (Object.keys(codeToStatus) as ErrorCode[]).filter((c) => codeToStatus[c] >= 400);

/** How a refusal of a known key is counted: limits as rate-limited, everything else as denied. */
export const refusalOutcome = (code: ErrorCode): UsageOutcome => (codeToStatus[code] === 429 ? 'rateLimited' : 'denied');

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** `YYYY-MM-DDTHH` (UTC): the period of the hourly series; its first 10 characters are its day, 7 its month. */
const hourOf = (ms: number): string => new Date(ms).toISOString().slice(0, 13);
/** The periods one hour's counts are added to: the hour, its day and its month. */
const periodsOf = (hour: string): string[] => [hour, hour.slice(0, 10), hour.slice(0, 7)];

export interface UsageOptions {
  flushIntervalMs: number;
  lastUsedIntervalMs: number;
  /** The clock (ms since epoch); a test moves it across midnight. */
  now?: () => number;
  /** Called with the session seconds each metering step adds (keygate_session_seconds_total). */
  onSessionSeconds?: (seconds: number) => void;
}

/** One key's counts since the last flush, and when it was last used. */
interface Row extends UsageCounts {
  tenantId: string;
  keyId: string;
  /** The hour counted (`YYYY-MM-DDTHH`); its counts go to the hour, its day and its month. */
  hour: string;
  /** Set by every request; a row that sees none for a whole flush interval is dropped. */
  active: boolean;
  lastUsedAt: number;
  lastUsedWritten: number;
  /** Refusals by code since the last flush; null (most rows) when there were none. */
  refused: RefusalCounts | null;
}

/** A live WebSocket session's time not yet counted: [since, now). */
interface OpenSession {
  tenantId: string;
  keyId: string;
  since: number;
}

/** What a proxied session holds: its time is counted until `close()` (once, however often called). */
export interface MeteredSession {
  close(): void;
}

const countsOf = (r: UsageCounts): UsageCounts => {
  const c = zeroCounts();
  for (const f of USAGE_FIELDS) c[f] = r[f];
  return c;
};
const isEmpty = (r: UsageCounts): boolean => USAGE_FIELDS.every((f) => r[f] === 0);

/**
 * Usage counters and lastUsedAt, batched in memory and written behind: a request costs a map lookup
 * and an increment on its key's row, and the store sees one batch every `flushIntervalMs` and at shutdown.
 * A failed flush is sent again, as it was, before anything newer, so counts are delayed by an outage, not lost;
 * and the store counts a batch once however often it arrives, so a flush that failed half-way (a Cluster
 * failover takes some slots' masters, not all) or timed out after Redis applied it is not counted twice.
 *
 * WebSocket sessions ride the same rows: a session opened counts in `sessions` on its first day, and
 * its time is moved into `sessionMs` at every flush (and when it ends), split at each UTC hour (and so each midnight) it spans, so
 * a crash loses at most the time and requests of one flush interval.
 */
export class Usage implements UsageReader {
  readonly #store: KeyStore;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #onSessionSeconds: (seconds: number) => void;
  /** By key id: the keys used in the last flush interval or two. */
  readonly #rows = new Map<string, Row>();
  /** Counts not yet sent: of a day that ended before its flush, or collected while a batch was pending. */
  #carried = new Map<string, UsageDelta>();
  /** Live sessions whose time is counted at each flush. */
  readonly #open = new Set<OpenSession>();
  /** The batch sent and not yet stored: sent again, alone, until it is. */
  #pending: UsageBatch | null = null;
  /** Names this process's batches; `#seq` orders them. */
  readonly #writer = randomBytes(9).toString('base64url');
  #seq = 0;
  /** Flushes run one at a time, so batches reach the store in order. */
  #flushing: Promise<void> = Promise.resolve();
  readonly #timers: NodeJS.Timeout[] = [];
  // The UTC hour of "now", recomputed only when an hour boundary passes (record() runs on every request).
  #thisHour = { hour: '', until: 0 };

  /** Rows and deltas held in process until stored, and live sessions counted (keygate_state_entries). */
  get size(): { rows: number; carried: number; sessions: number } {
    return { rows: this.#rows.size, carried: this.#carried.size + (this.#pending?.deltas.length ?? 0), sessions: this.#open.size };
  }

  constructor(store: KeyStore, logger: Logger, opts: UsageOptions) {
    this.#store = store;
    this.#logger = logger;
    this.#now = opts.now ?? Date.now;
    this.#onSessionSeconds = opts.onSessionSeconds ?? (() => {});
    this.#timers.push(
      setInterval(() => void this.flushCounts(), opts.flushIntervalMs).unref(),
      setInterval(() => void this.flushLastUsed(), opts.lastUsedIntervalMs).unref(),
    );
  }

  #currentHour(now: number): string {
    const h = this.#thisHour;
    if (now >= h.until || now < h.until - HOUR_MS) this.#thisHour = { hour: hourOf(now), until: now - (now % HOUR_MS) + HOUR_MS };
    return this.#thisHour.hour;
  }

  /** The key's row, moved on to `hour` (what it held for an earlier hour carried first). */
  #row(tenantId: string, keyId: string, hour: string): Row {
    let row = this.#rows.get(keyId);
    if (!row) {
      row = { tenantId, keyId, hour, ...zeroCounts(), active: true, lastUsedAt: 0, lastUsedWritten: 0, refused: null };
      this.#rows.set(keyId, row);
    } else if (row.hour !== hour) {
      this.#carry(row);
      row.hour = hour;
    }
    return row;
  }

  /** Counts a request of a known key; a refusal also by its code (the tenant's charts show refusals by code). */
  record(tenantId: string, keyId: string, outcome: UsageOutcome, code?: ErrorCode): void {
    const now = this.#now();
    const row = this.#row(tenantId, keyId, this.#currentHour(now));
    row[outcome]++;
    if (code) (row.refused ??= {})[code] = (row.refused[code] ?? 0) + 1;
    row.active = true;
    if (outcome === 'allowed') row.lastUsedAt = now;
  }

  /** Starts counting a proxied WebSocket session: one session now, and its time until `close()`. */
  openSession(tenantId: string, keyId: string): MeteredSession {
    const since = this.#now();
    const row = this.#row(tenantId, keyId, this.#currentHour(since));
    row.sessions++;
    row.active = true;
    const session: OpenSession = { tenantId, keyId, since };
    this.#open.add(session);
    return {
      close: () => {
        if (!this.#open.delete(session)) return;
        this.#accrue(session, this.#now());
      },
    };
  }

  /** Counts a live session's time since it was last counted, split at every UTC hour (so every midnight) in between. */
  #accrue(s: OpenSession, now: number): void {
    let t = s.since;
    if (now <= t) return;
    this.#onSessionSeconds((now - t) / 1000);
    while (t < now) {
      const to = Math.min(now, t - (t % HOUR_MS) + HOUR_MS);
      this.#addTime(s, hourOf(t), to - t);
      t = to;
    }
    s.since = now;
  }

  #addTime(s: OpenSession, hour: string, ms: number): void {
    const row = this.#rows.get(s.keyId);
    // Time of an hour the key's row has already left behind (a later request moved it on) is carried as is.
    if (row && hour < row.hour) return this.#carryTime(s, hour, ms);
    const current = this.#row(s.tenantId, s.keyId, hour);
    current.sessionMs += ms;
    current.active = true;
  }

  #carryTime(s: OpenSession, hour: string, ms: number): void {
    for (const period of periodsOf(hour)) this.#merge({ tenantId: s.tenantId, keyId: s.keyId, period, counts: { ...zeroCounts(), sessionMs: ms } });
  }

  /** Moves a row's counts (hour, day and month) into the carried deltas and zeroes it. */
  #carry(row: Row): void {
    if (isEmpty(row)) return;
    for (const period of periodsOf(row.hour)) this.#merge({ tenantId: row.tenantId, keyId: row.keyId, period, counts: countsOf(row), ...(row.refused ? { refused: { ...row.refused } } : {}) });
    for (const f of USAGE_FIELDS) row[f] = 0;
    row.refused = null;
  }

  #merge(d: UsageDelta): void {
    const id = `${d.keyId}|${d.period}`;
    const have = this.#carried.get(id);
    if (!have) this.#carried.set(id, d);
    else {
      for (const f of USAGE_FIELDS) have.counts[f] += d.counts[f];
      for (const [code, n] of Object.entries(d.refused ?? {})) (have.refused ??= {})[code] = (have.refused[code] ?? 0) + n;
    }
  }

  flushCounts(): Promise<void> {
    const run = this.#flushing.then(() => this.#flushCounts());
    this.#flushing = run.catch(() => {});
    return run;
  }

  async #flushCounts(): Promise<void> {
    const now = this.#now();
    for (const s of this.#open) this.#accrue(s, now);
    for (const [id, row] of this.#rows) {
      this.#carry(row);
      // Idle for a whole interval, and lastUsedAt written: the row is not needed any more.
      if (!row.active && row.lastUsedWritten === row.lastUsedAt) this.#rows.delete(id);
      row.active = false;
    }
    // The pending batch first; once it is stored, what was carried meanwhile.
    for (let round = 0; round < 2; round++) {
      if (!this.#pending) {
        if (this.#carried.size === 0) return;
        this.#pending = { writer: this.#writer, seq: ++this.#seq, deltas: [...this.#carried.values()] };
        this.#carried = new Map();
      }
      try {
        await this.#store.addUsage(this.#pending);
        this.#pending = null;
      } catch (err) {
        this.#logger.warn({ err }, 'usage flush failed; will retry');
        return;
      }
    }
  }

  async flushLastUsed(): Promise<void> {
    const rows = [...this.#rows.values()].filter((r) => r.lastUsedAt > r.lastUsedWritten);
    if (rows.length === 0) return;
    const written = rows.map((r) => r.lastUsedAt);
    try {
      await this.#store.touchKeys(rows.map((r, i) => ({ tenantId: r.tenantId, keyId: r.keyId, at: new Date(written[i]!).toISOString() })));
      rows.forEach((r, i) => (r.lastUsedWritten = written[i]!));
    } catch (err) {
      this.#logger.warn({ err }, 'lastUsedAt flush failed; will retry');
    }
  }

  async flush(): Promise<void> {
    await Promise.all([this.flushCounts(), this.flushLastUsed()]);
  }

  /** Shutdown: sessions still open are counted up to now (and no further), then everything is flushed. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    const now = this.#now();
    for (const s of this.#open) this.#accrue(s, now);
    this.#open.clear();
    await this.flush();
  }

  /** lastUsedAt per key: this replica's unflushed value when newer, else the store's. */
  async lastUsedOf(tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    const stored = await this.#store.lastUsed(tenantId, keyIds);
    for (const id of keyIds) {
      const at = this.#rows.get(id)?.lastUsedAt;
      if (at && (!stored.has(id) || Date.parse(stored.get(id)!) < at)) stored.set(id, new Date(at).toISOString());
    }
    return stored;
  }

  async read(tenantId: string, q: UsageQuery): Promise<UsageRow[]> {
    await this.flushCounts();
    const now = this.#now();
    const today = dayOf(now);
    const periods = q.granularity === 'hour' ? hoursBetween(now, q.from, q.to) : q.granularity === 'day' ? daysBetween(today, q.from, q.to) : monthsBetween(today, q.from, q.to);
    // Refusals by code are counted per tenant: a tenant's rows carry them, a key's do not.
    const [counts, refused] = await Promise.all([this.#store.readUsage(tenantId, periods, q.keyId ?? null), q.keyId ? null : this.#store.readRefusals(tenantId, periods, REFUSAL_CODES)]);
    return periods.map((period) => ({ ...rowOf(period, counts.get(period) ?? zeroCounts()), ...(refused ? { refusals: refused.get(period) ?? {} } : {}) }));
  }

  /** Each key's counts in one period (a day or a month), for a page of keys. */
  async readKeys(tenantId: string, period: string, keyIds: string[]): Promise<Array<UsageRow & { keyId: string }>> {
    await this.flushCounts();
    const counts = await this.#store.readKeysUsage(tenantId, period, keyIds);
    return keyIds.map((keyId) => ({ keyId, ...rowOf(period, counts.get(keyId) ?? zeroCounts()) }));
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
    const today = rowOf('', await this.#store.readTotals(dayOf(this.#now())));
    return { tenants, keys, requestsToday: today.requests, sessionsToday: today.sessions, sessionSecondsToday: today.sessionSeconds };
  }
}

/** A report row: session time in seconds (millisecond precision). */
function rowOf(period: string, c: UsageCounts): UsageRow {
  return {
    period,
    requests: c.allowed + c.denied + c.rateLimited,
    allowed: c.allowed,
    denied: c.denied,
    rateLimited: c.rateLimited,
    sessions: c.sessions,
    sessionSeconds: c.sessionMs / 1000,
  };
}

function rangeError(message: string): ApiError {
  return new ApiError('validation_error', message, { details: [{ path: 'query.from', message }] });
}

/** Days from `from` to `to` inclusive (default: the last 30 days, ending today, UTC). */
function daysBetween(today: string, from?: string, to?: string): string[] {
  const end = Date.parse(`${to ?? today}T00:00:00Z`);
  const start = from ? Date.parse(`${from}T00:00:00Z`) : end - 29 * DAY_MS;
  if (start > end) throw rangeError('from must not be after to');
  if ((end - start) / DAY_MS + 1 > MAX_DAYS) throw rangeError(`at most ${MAX_DAYS} days per request`);
  const out: string[] = [];
  for (let t = start; t <= end; t += DAY_MS) out.push(dayOf(t));
  return out;
}

/**
 * Hours (`YYYY-MM-DDTHH`) from `from`'s first hour to `to`'s last (default: the last 7 days, ending with the
 * current hour). At most HOURLY_DAYS days: the stores keep no older hours.
 */
function hoursBetween(now: number, from?: string, to?: string): string[] {
  const current = now - (now % HOUR_MS);
  const end = to ? Math.min(Date.parse(`${to}T23:00:00Z`), current) : current;
  const start = from ? Date.parse(`${from}T00:00:00Z`) : end - (7 * 24 - 1) * HOUR_MS;
  if (start > end) throw rangeError('from must not be after to');
  if ((end - start) / HOUR_MS + 1 > MAX_HOURS) throw rangeError(`at most ${MAX_HOURS} hours (${HOURLY_DAYS} days) per request`);
  const out: string[] = [];
  for (let t = start; t <= end; t += HOUR_MS) out.push(hourOf(t));
  return out;
}

/** Months from `from` to `to` inclusive (default: the last 12 months, ending this month). */
function monthsBetween(today: string, from?: string, to?: string): string[] {
  const endMonth = (to ?? today).slice(0, 7);
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
