import type { RefusalCounts, UsageBatch, UsageCounts } from '../types.ts';
import { USAGE_RETENTION_DAYS, USAGE_FIELDS, zeroCounts } from '../types.ts';
import { named, type RunScript } from './command.ts';
import type { RedisClient } from './connect.ts';
import type { Keyspace } from './keyspace.ts';

// Usage counters (per tenant and key, by hour, day and month; fleet totals by day and month) and the
// write-behind lastUsedAt of keys.

// Usage counters are kept for about 13 months, enough for a year of monthly reports.
const USAGE_TTL_SECONDS = USAGE_RETENTION_DAYS * 86_400;
/**
 * Hourly hashes (`u:<YYYY-MM-DDTHH>`) live 15 days: the 14 days the console charts, and a day's margin so the
 * oldest charted hour is never half-expired. The hourly series is per tenant and key only (no fleet totals).
 */
const HOURLY_USAGE_TTL_SECONDS = 15 * 86_400;
const isHour = (period: string): boolean => period.length === 13;

/** Counts from HMGET replies in USAGE_FIELDS order. */
function countsOf(values: Array<string | null>): UsageCounts {
  const counts = zeroCounts();
  USAGE_FIELDS.forEach((f, i) => (counts[f] = Number(values[i] ?? 0)));
  return counts;
}

export class RedisUsage {
  readonly #r: RedisClient;
  readonly #ks: Keyspace;
  readonly #run: RunScript;

  constructor(client: RedisClient, keyspace: Keyspace, run: RunScript) {
    this.#r = client;
    this.#ks = keyspace;
    this.#run = run;
  }

  addUsage(batch: UsageBatch): Promise<void> {
    return named('addUsage', this.#addUsage(batch));
  }

  async #addUsage({ writer, seq, deltas }: UsageBatch): Promise<void> {
    // One HINCRBY script call per tenant and period (fields in chunks), plus one per fleet total: a flush of
    // 100,000 keys is a few hundred commands, not half a million queued at once. Each call is counted once per
    // writer, batch and chunk (the hash keeps the last one), so a retried batch adds only what was not added.
    // The tenant's own total (`*:<field>`) is summed here and sent once per hash, in its first call, rather than
    // incremented beside every key's field (that was half of a flush's HINCRBYs inside Redis).
    const writerField = `~w:${writer}`;
    const perHash = new Map<string, { tenant: UsageCounts; refused: RefusalCounts; fields: Array<string | number>; ttl: number }>();
    const totals = new Map<string, UsageCounts>();
    for (const d of deltas) {
      const key = this.#ks.usage(d.tenantId, d.period);
      let hash = perHash.get(key);
      if (!hash) perHash.set(key, (hash = { tenant: zeroCounts(), refused: {}, fields: [], ttl: isHour(d.period) ? HOURLY_USAGE_TTL_SECONDS : USAGE_TTL_SECONDS }));
      // Refusals by code: the tenant's own fields (`*:r:<code>`), sent with its totals.
      for (const [code, n] of Object.entries(d.refused ?? {})) hash.refused[code] = (hash.refused[code] ?? 0) + n;
      let total = isHour(d.period) ? null : totals.get(d.period);
      if (total === undefined) totals.set(d.period, (total = zeroCounts()));
      for (const field of USAGE_FIELDS) {
        const n = d.counts[field];
        if (n === 0) continue;
        hash.fields.push(`${d.keyId}:${field}`, n);
        hash.tenant[field] += n;
        if (total) total[field] += n;
      }
    }
    const CHUNK = 2_000; // arguments (1,000 field/increment pairs) per call
    // Chunk c of batch n is counted as n·10⁶ + c (exact in a Lua number for 9·10⁹ batches). A retried batch has
    // the same deltas, so the same chunks.
    const chunkSeq = (c: number) => seq * 1_000_000 + c;
    for (const [key, { tenant, refused, fields: keyFields, ttl }] of perHash) {
      const fields = [...USAGE_FIELDS.flatMap((f) => (tenant[f] === 0 ? [] : [`*:${f}`, tenant[f]])), ...Object.entries(refused).flatMap(([code, n]) => [`*:r:${code}`, n]), ...keyFields];
      for (let i = 0; i < fields.length; i += CHUNK) {
        await this.#run('incrementFields', [key], [ttl, writerField, chunkSeq(i / CHUNK), ...fields.slice(i, i + CHUNK)]);
      }
    }
    for (const [period, t] of totals) {
      await this.#run('incrementFields', [this.#ks.totals(period)], [USAGE_TTL_SECONDS, writerField, chunkSeq(0), ...USAGE_FIELDS.flatMap((f) => [f, t[f]])]);
    }
  }

  readUsage(tenantId: string, periods: string[], keyId: string | null): Promise<Map<string, UsageCounts>> {
    const who = keyId ?? '*';
    return named('readUsage', (async () => {
      const rows = await Promise.all(periods.map((p) => this.#r.hmget(this.#ks.usage(tenantId, p), ...USAGE_FIELDS.map((f) => `${who}:${f}`))));
      return new Map(periods.map((p, i) => [p, countsOf(rows[i]!)]));
    })());
  }

  readRefusals(tenantId: string, periods: string[], codes: readonly string[]): Promise<Map<string, RefusalCounts>> {
    return named('readRefusals', (async () => {
      const rows = await Promise.all(periods.map((p) => this.#r.hmget(this.#ks.usage(tenantId, p), ...codes.map((c) => `*:r:${c}`))));
      return new Map(periods.map((p, i) => [p, Object.fromEntries(codes.flatMap((c, j) => (rows[i]![j] ? [[c, Number(rows[i]![j])]] : [])))]));
    })());
  }

  readKeysUsage(tenantId: string, period: string, keyIds: string[]): Promise<Map<string, UsageCounts>> {
    return named('readKeysUsage', (async () => {
      if (keyIds.length === 0) return new Map<string, UsageCounts>();
      const values = await this.#r.hmget(this.#ks.usage(tenantId, period), ...keyIds.flatMap((k) => USAGE_FIELDS.map((f) => `${k}:${f}`)));
      const width = USAGE_FIELDS.length;
      return new Map(keyIds.map((k, i) => [k, countsOf(values.slice(i * width, (i + 1) * width))]));
    })());
  }

  async readTotals(period: string): Promise<UsageCounts> {
    return countsOf(await named('readTotals', this.#r.hmget(this.#ks.totals(period), ...USAGE_FIELDS)));
  }

  touchKeys(lastUsed: Array<{ tenantId: string; keyId: string; at: string }>): Promise<void> {
    const perTenant = new Map<string, string[]>();
    for (const u of lastUsed) {
      let pairs = perTenant.get(u.tenantId);
      if (!pairs) perTenant.set(u.tenantId, (pairs = []));
      pairs.push(u.keyId, u.at);
    }
    return named('touchKeys', (async () => {
      for (const [tenantId, pairs] of perTenant) {
        // Only keys that still exist are written, and revoked keys' fields are dropped (scripts.ts, touchKeys).
        for (let i = 0; i < pairs.length; i += 2_000) await this.#run('touchKeys', [this.#ks.lastUsed(tenantId), this.#ks.keys(tenantId)], pairs.slice(i, i + 2_000));
      }
    })());
  }

  async lastUsed(tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    if (!keyIds.length) return new Map();
    const values = await named('lastUsed', this.#r.hmget(this.#ks.lastUsed(tenantId), ...keyIds));
    return new Map(keyIds.flatMap((id, i) => (values[i] ? [[id, values[i]!] as [string, string]] : [])));
  }
}
