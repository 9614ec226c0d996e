import type { Cluster, Redis } from 'ioredis';
import { newAuditId } from '../../keys/ids.ts';
import type { AuditEntry, StoredKey, Tenant } from '../../keys/types.ts';
import { droppedHashes, hashExpiry, keyEvent, rotatedHashes } from '../records.ts';
import type { AuditInput, CreateKeyResult, KeyStore, NewSecret, Page, PageRequest, StoreEvent, Updater, UsageCounts, UsageDelta, Verification } from '../types.ts';
import { USAGE_FIELDS, zeroCounts } from '../types.ts';
import { scriptKeyCounts, scripts, type ScriptName } from './scripts.ts';

export type RedisClient = Redis | Cluster;

export interface RedisStoreOptions {
  client: RedisClient;
  /** A second connection for SUBSCRIBE (a subscribed connection can run nothing else). */
  subscriber: RedisClient;
  prefix: string;
  channel: string;
  auditMaxEntries: number;
}

const CAS_ATTEMPTS = 8;
// Usage counters are kept for about 13 months, enough for a year of monthly reports.
const USAGE_TTL_SECONDS = 400 * 86_400;

/** Counts from HMGET replies in USAGE_FIELDS order. */
function countsOf(values: Array<string | null>): UsageCounts {
  const counts = zeroCounts();
  USAGE_FIELDS.forEach((f, i) => (counts[f] = Number(values[i] ?? 0)));
  return counts;
}

/** Thrown when a record kept changing under a compare-and-set loop; surfaces as 503. */
export class StoreContentionError extends Error {}

/**
 * Key layout (`p` = configured prefix; `{ten_…}` is a Cluster hash tag, so one tenant's records share a slot):
 *   p vr:<hash>            → {"t":tenantId,"k":keyId}   verification record, one per live hash
 *   p {ten}:t              → Tenant JSON
 *   p {ten}:keys           → ZSET of key ids (lex order = creation order, ids are ULIDs)
 *   p {ten}:k:<keyId>      → StoredKey JSON
 *   p {ten}:audit          → capped STREAM of audit entries
 *   p tenants              → ZSET of tenant ids
 *   p {ten}:u:<period>     → HASH "<keyId|*>:<field>" → count (usage per day YYYY-MM-DD and month YYYY-MM; fields:
 *                            the request outcomes, `sessions` opened and `sessionMs` of session time)
 *   p u:<period>           → HASH "<field>" → count (fleet totals)
 *   p {ten}:q:<YYYY-MM>:r:<keyId|*> → requests admitted this calendar month (monthly quotas, limits/calendar.ts)
 *   p {ten}:q:<YYYY-MM>:s:<keyId|*> → session ms reserved this calendar month (limits/session-quota.ts)
 *   p {ten}:lu             → HASH keyId → lastUsedAt
 */
export class RedisStore implements KeyStore {
  readonly kind = 'redis' as const;
  readonly #r: RedisClient;
  readonly #sub: RedisClient;
  readonly #p: string;
  readonly #channel: string;
  readonly #auditMax: string;

  constructor(opts: RedisStoreOptions) {
    this.#r = opts.client;
    this.#sub = opts.subscriber;
    this.#p = opts.prefix;
    this.#channel = opts.channel;
    this.#auditMax = String(opts.auditMaxEntries);
    for (const [name, lua] of Object.entries(scripts)) {
      this.#r.defineCommand(`kg_${name}`, { numberOfKeys: scriptKeyCounts[name as ScriptName], lua });
    }
  }

  #run(name: ScriptName, keys: string[], args: Array<string | number>): Promise<number> {
    const cmd = (this.#r as unknown as Record<string, (...a: Array<string | number>) => Promise<number>>)[`kg_${name}`]!;
    return cmd.call(this.#r, ...keys, ...args);
  }

  #vr = (hash: string) => `${this.#p}vr:${hash}`;
  #t = (tenantId: string) => `${this.#p}{${tenantId}}:t`;
  #keys = (tenantId: string) => `${this.#p}{${tenantId}}:keys`;
  #k = (tenantId: string, keyId: string) => `${this.#p}{${tenantId}}:k:${keyId}`;
  #audit = (tenantId: string) => `${this.#p}{${tenantId}}:audit`;
  #tenants = () => `${this.#p}tenants`;
  #usage = (tenantId: string, period: string) => `${this.#p}{${tenantId}}:u:${period}`;
  #totals = (period: string) => `${this.#p}u:${period}`;
  #lastUsed = (tenantId: string) => `${this.#p}{${tenantId}}:lu`;

  #auditJson(input: AuditInput): string {
    return JSON.stringify({ id: newAuditId(), at: new Date().toISOString(), ...input });
  }

  async createTenant(tenant: Tenant, audit: AuditInput): Promise<void> {
    await this.#run('createTenant', [this.#t(tenant.id), this.#audit(tenant.id)], [JSON.stringify(tenant), this.#auditJson(audit), this.#auditMax]);
    await this.#r.zadd(this.#tenants(), 0, tenant.id);
  }

  async getTenant(id: string): Promise<Tenant | null> {
    const raw = await this.#r.get(this.#t(id));
    return raw ? (JSON.parse(raw) as Tenant) : null;
  }

  async listTenants(page: PageRequest): Promise<Page<Tenant>> {
    const { ids, nextCursor } = await this.#lexPage(this.#tenants(), page);
    // Tenants live in different slots; one GET each (pipelined automatically).
    const rows = await Promise.all(ids.map((id) => this.getTenant(id)));
    return { data: rows.filter((t): t is Tenant => t !== null), nextCursor };
  }

  async #lexPage(zset: string, page: PageRequest): Promise<{ ids: string[]; nextCursor: string | null }> {
    const from = page.cursor === null ? '-' : `(${page.cursor}`;
    const ids = await this.#r.zrangebylex(zset, from, '+', 'LIMIT', 0, page.limit + 1);
    const more = ids.length > page.limit;
    const pageIds = ids.slice(0, page.limit);
    return { ids: pageIds, nextCursor: more ? (pageIds.at(-1) ?? null) : null };
  }

  /** Read-modify-write with a Lua compare-and-set, retried while another writer got there first. */
  async #casUpdate<T>(recordKey: string, auditKey: string, update: Updater<T>, audit: AuditInput, event: (current: T) => StoreEvent, before?: (current: T, next: T) => Promise<void>): Promise<T | null> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const raw = await this.#r.get(recordKey);
      if (raw === null) return null;
      const current = JSON.parse(raw) as T;
      const next = update(JSON.parse(raw) as T);
      if (next === null) return current;
      if (before) await before(current, next);
      const ok = await this.#run('compareAndSet', [recordKey, auditKey], [raw, JSON.stringify(next), this.#auditJson(audit), this.#auditMax, this.#channel, JSON.stringify(event(current))]);
      if (ok === 1) return next;
    }
    throw new StoreContentionError(`record ${recordKey} kept changing`);
  }

  updateTenant(id: string, update: Updater<Tenant>, audit: AuditInput): Promise<Tenant | null> {
    return this.#casUpdate(this.#t(id), this.#audit(id), update, audit, () => ({ kind: 'tenant', tenantId: id }));
  }

  async deleteTenant(id: string): Promise<boolean> {
    if (!(await this.getTenant(id))) return false;
    const keyIds = await this.#r.zrange(this.#keys(id), '0', '-1');
    for (const keyId of keyIds) await this.revokeKey(id, keyId, null);
    await this.#r.del(this.#t(id), this.#keys(id), this.#audit(id), this.#lastUsed(id));
    await this.#r.zrem(this.#tenants(), id);
    await this.#r.publish(this.#channel, JSON.stringify({ kind: 'tenant', tenantId: id } satisfies StoreEvent));
    return true;
  }

  async createKey(key: StoredKey, audit: AuditInput): Promise<CreateKeyResult> {
    const t = key.tenantId;
    const res = await this.#run('createKey', [this.#t(t), this.#keys(t), this.#k(t, key.id), this.#audit(t)], [key.id, JSON.stringify(key), this.#auditJson(audit), this.#auditMax]);
    if (res === -1) return 'no_tenant';
    if (res === 0) return 'limit';
    // The verification record is written last: until then the key exists but cannot be used.
    for (const h of key.hashes) await this.#r.set(this.#vr(h.hash), JSON.stringify({ t, k: key.id }));
    return 'created';
  }

  async getKey(tenantId: string, keyId: string): Promise<StoredKey | null> {
    const raw = await this.#r.get(this.#k(tenantId, keyId));
    return raw ? (JSON.parse(raw) as StoredKey) : null;
  }

  async listKeys(tenantId: string, page: PageRequest): Promise<Page<StoredKey>> {
    const { ids, nextCursor } = await this.#lexPage(this.#keys(tenantId), page);
    const raws = ids.length ? await this.#r.mget(ids.map((id) => this.#k(tenantId, id))) : [];
    return { data: raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as StoredKey), nextCursor };
  }

  countKeys(tenantId: string): Promise<number> {
    return this.#r.zcard(this.#keys(tenantId));
  }

  updateKey(tenantId: string, keyId: string, update: Updater<StoredKey>, audit: AuditInput): Promise<StoredKey | null> {
    return this.#casUpdate(this.#k(tenantId, keyId), this.#audit(tenantId), update, audit, keyEvent);
  }

  async revokeKey(tenantId: string, keyId: string, audit: AuditInput | null): Promise<boolean> {
    const key = await this.getKey(tenantId, keyId);
    if (!key) return false;
    // Verification records first: whatever happens after this line, the key no longer verifies.
    await this.#r.del(...key.hashes.map((h) => this.#vr(h.hash)));
    const res = await this.#run('removeKey', [this.#k(tenantId, keyId), this.#keys(tenantId), this.#audit(tenantId)], [keyId, audit ? this.#auditJson(audit) : '', this.#auditMax, this.#channel, JSON.stringify(keyEvent(key))]);
    return res === 1;
  }

  async rotateKey(tenantId: string, keyId: string, secret: NewSecret, graceSeconds: number, audit: AuditInput): Promise<StoredKey | null> {
    const next = await this.#casUpdate<StoredKey>(
      this.#k(tenantId, keyId),
      this.#audit(tenantId),
      (key) => ({ ...key, prefix: secret.prefix, hashes: rotatedHashes(key, secret.hash, graceSeconds), updatedAt: new Date().toISOString() }),
      audit,
      keyEvent,
      // Before the record changes: values that stop now lose their verification record; values in a grace
      // period get one that expires with it.
      async (current, updated) => {
        const dropped = droppedHashes(current.hashes, updated.hashes);
        if (dropped.length) await this.#r.del(...dropped.map((h) => this.#vr(h)));
        for (const h of updated.hashes) if (h.expiresAt) await this.#r.pexpireat(this.#vr(h.hash), Date.parse(h.expiresAt));
      },
    );
    if (next) await this.#r.set(this.#vr(secret.hash), JSON.stringify({ t: tenantId, k: keyId }));
    return next;
  }

  async lookup(hash: string): Promise<Verification | null> {
    const ref = await this.#r.get(this.#vr(hash));
    if (!ref) return null;
    const { t, k } = JSON.parse(ref) as { t: string; k: string };
    const [rawKey, rawTenant] = await this.#r.mget(this.#k(t, k), this.#t(t));
    if (!rawKey || !rawTenant) return null;
    const key = JSON.parse(rawKey) as StoredKey;
    // A verification record left behind by an interrupted write never outlives its key record.
    const hashExpiresAt = hashExpiry(key, hash);
    if (hashExpiresAt === undefined) return null;
    return { key, tenant: JSON.parse(rawTenant) as Tenant, hashExpiresAt };
  }

  async appendAudit(tenantId: string, audit: AuditInput): Promise<boolean> {
    return (await this.#run('appendAudit', [this.#t(tenantId), this.#audit(tenantId)], [this.#auditJson(audit), this.#auditMax])) === 1;
  }

  async listAudit(tenantId: string, page: PageRequest): Promise<Page<AuditEntry>> {
    const end = page.cursor === null ? '+' : `(${page.cursor}`;
    const rows = await this.#r.xrevrange(this.#audit(tenantId), end, '-', 'COUNT', page.limit + 1);
    const more = rows.length > page.limit;
    const pageRows = rows.slice(0, page.limit);
    const data = pageRows.map(([, fields]) => JSON.parse(fields[1]!) as AuditEntry);
    return { data, nextCursor: more ? (pageRows.at(-1)?.[0] ?? null) : null };
  }

  async addUsage(batch: UsageDelta[]): Promise<void> {
    // One HINCRBY script call per tenant and period (fields in chunks), plus one per fleet total: a flush of
    // 100,000 keys is a few hundred commands, not half a million queued at once.
    const perHash = new Map<string, Array<string | number>>();
    const totals = new Map<string, UsageCounts>();
    for (const d of batch) {
      const key = this.#usage(d.tenantId, d.period);
      let fields = perHash.get(key);
      if (!fields) perHash.set(key, (fields = []));
      let total = totals.get(d.period);
      if (!total) totals.set(d.period, (total = zeroCounts()));
      for (const field of USAGE_FIELDS) {
        const n = d.counts[field];
        if (n === 0) continue;
        fields.push(`${d.keyId}:${field}`, n, `*:${field}`, n);
        total[field] += n;
      }
    }
    const CHUNK = 2_000; // field/increment pairs per call
    for (const [key, fields] of perHash) {
      for (let i = 0; i < fields.length; i += CHUNK) {
        await this.#run('incrementFields', [key], [USAGE_TTL_SECONDS, ...fields.slice(i, i + CHUNK)]);
      }
    }
    for (const [period, t] of totals) {
      await this.#run('incrementFields', [this.#totals(period)], [USAGE_TTL_SECONDS, ...USAGE_FIELDS.flatMap((f) => [f, t[f]])]);
    }
  }

  async readUsage(tenantId: string, periods: string[], keyId: string | null): Promise<Map<string, UsageCounts>> {
    const who = keyId ?? '*';
    const rows = await Promise.all(periods.map((p) => this.#r.hmget(this.#usage(tenantId, p), ...USAGE_FIELDS.map((f) => `${who}:${f}`))));
    return new Map(periods.map((p, i) => [p, countsOf(rows[i]!)]));
  }

  async readTotals(period: string): Promise<UsageCounts> {
    return countsOf(await this.#r.hmget(this.#totals(period), ...USAGE_FIELDS));
  }

  async touchKeys(lastUsed: Array<{ tenantId: string; keyId: string; at: string }>): Promise<void> {
    const perTenant = new Map<string, string[]>();
    for (const u of lastUsed) {
      let pairs = perTenant.get(u.tenantId);
      if (!pairs) perTenant.set(u.tenantId, (pairs = []));
      pairs.push(u.keyId, u.at);
    }
    for (const [tenantId, pairs] of perTenant) {
      for (let i = 0; i < pairs.length; i += 2_000) await this.#r.hset(this.#lastUsed(tenantId), ...pairs.slice(i, i + 2_000));
    }
  }

  async lastUsed(tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    if (!keyIds.length) return new Map();
    const values = await this.#r.hmget(this.#lastUsed(tenantId), ...keyIds);
    return new Map(keyIds.flatMap((id, i) => (values[i] ? [[id, values[i]!] as [string, string]] : [])));
  }

  async subscribe(onEvent: (event: StoreEvent) => void, onReset: () => void): Promise<void> {
    let connectedBefore = false;
    // ioredis re-subscribes after a reconnect; whatever was published meanwhile is lost, so the cache is
    // cleared (SPEC §8: the TTL bounds a lost message's cost, the reset removes even that).
    this.#sub.on('ready', () => {
      if (connectedBefore) onReset();
      connectedBefore = true;
    });
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      try {
        onEvent(JSON.parse(message) as StoreEvent);
      } catch {
        onReset();
      }
    });
    await this.#sub.subscribe(this.#channel);
    connectedBefore = true;
  }

  async ping(): Promise<number> {
    const start = performance.now();
    await this.#r.ping();
    return performance.now() - start;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#r.quit(), this.#sub.quit()]);
  }
}
