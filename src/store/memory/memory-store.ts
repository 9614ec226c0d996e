import { EventEmitter } from 'node:events';
import { newAuditId } from '../../keys/ids.ts';
import type { AuditEntry, StoredKey, Tenant } from '../../keys/types.ts';
import { droppedHashes, hashExpiry, keyEvent, pageOf, rotated } from '../records.ts';
import type { AuditInput, CreateKeyResult, KeyStore, NewSecret, Page, PageRequest, RefreshRef, StoreEvent, Updater, RefusalCounts, UsageBatch, UsageCounts, Verification } from '../types.ts';
import { DEFAULT_REFUSAL_WINDOW_SECONDS, USAGE_RETENTION_DAYS, tenantDeletedRevocation, USAGE_FIELDS, zeroCounts } from '../types.ts';
import type { MemoryOutboxPort } from '../outbox.ts';
import { firstExpiryDue, type DueExpiry } from '../expiry.ts';

/** Hourly usage is kept 15 days, as on Redis (the console charts 14). */
const HOURLY_KEEP_MS = 15 * 86_400_000;

interface TenantState {
  tenant: Tenant;
  keys: Map<string, StoredKey>;
  audit: AuditEntry[];
  /** The expiry index (store/expiry.ts): key id → when its next expiry event is due. */
  exp: Map<string, number>;
  /** The refusal window's collapsed refusals by group (appendRefusal); emptied when a new window begins. */
  refusals: { window: number; byGroup: Map<string, { id: string; count: number; firstAt: string }> };
}

/**
 * Single-process store for trying keygate out. Every method body runs synchronously up to its return, so
 * each mutation is atomic exactly as the Redis Lua scripts are. Records are cloned in and out so callers
 * can never mutate stored state by accident.
 */
export class MemoryStore implements KeyStore {
  readonly kind = 'memory' as const;
  readonly #tenants = new Map<string, TenantState>();
  readonly #byHash = new Map<string, { tenantId: string; keyId: string }>();
  readonly #events = new EventEmitter();
  readonly #auditMax: number;
  /** The platform's own audit log (store/types.ts), at most `auditMax` entries. */
  readonly #platformAudit: AuditEntry[] = [];
  /** "<tenantId>|<period>|<keyId or *>" → counts; "|<period>|" → fleet totals. */
  readonly #usage = new Map<string, UsageCounts>();
  /** Hourly entries by hour (`tenantId|keyId` and `tenantId|*`), so hours older than HOURLY_KEEP_MS are removed. */
  readonly #hours = new Map<string, Set<string>>();
  readonly #lastUsed = new Map<string, string>();
  /** Refusals by code per `tenantId|period`, kept and forgotten like the tenant's own counts. */
  readonly #refused = new Map<string, RefusalCounts>();
  /** The last usage batch counted, by writer. */
  readonly #usageSeq = new Map<string, number>();

  /** Where a mutation's event goes (store/outbox.ts), in the same synchronous step as its audit line. */
  readonly #outbox: MemoryOutboxPort | null;

  readonly #refusalWindowMs: number;

  constructor(opts: { auditMaxEntries: number; refusalWindowSeconds?: number; outbox?: MemoryOutboxPort | null }) {
    this.#auditMax = opts.auditMaxEntries;
    this.#refusalWindowMs = (opts.refusalWindowSeconds ?? DEFAULT_REFUSAL_WINDOW_SECONDS) * 1000;
    this.#outbox = opts.outbox ?? null;
  }

  #audit(state: TenantState, input: AuditInput): void {
    const event = this.#outbox?.eventOf(state.tenant.id, input) ?? null;
    if (event) this.#outbox!.append(state.tenant.id, event);
    state.audit.push({ id: newAuditId(), at: new Date().toISOString(), ...structuredClone(input) });
    if (state.audit.length > this.#auditMax) state.audit.splice(0, state.audit.length - this.#auditMax);
  }

  #publish(event: StoreEvent): void {
    queueMicrotask(() => this.#events.emit('event', event));
  }

  async createTenant(tenant: Tenant, audit: AuditInput): Promise<void> {
    const state: TenantState = { tenant: structuredClone(tenant), keys: new Map(), audit: [], refusals: { window: 0, byGroup: new Map() }, exp: new Map() };
    this.#tenants.set(tenant.id, state);
    this.#audit(state, audit);
  }

  async getTenant(id: string): Promise<Tenant | null> {
    const state = this.#tenants.get(id);
    return state ? structuredClone(state.tenant) : null;
  }

  async listTenants(page: PageRequest): Promise<Page<Tenant>> {
    const ids = [...this.#tenants.keys()].sort();
    return pageOf(ids, page, (id) => structuredClone(this.#tenants.get(id)?.tenant));
  }

  async updateTenant(id: string, update: Updater<Tenant>, audit: AuditInput): Promise<Tenant | null> {
    const state = this.#tenants.get(id);
    if (!state) return null;
    const next = update(structuredClone(state.tenant));
    if (!next) return structuredClone(state.tenant);
    state.tenant = structuredClone(next);
    this.#audit(state, audit);
    this.#publish({ kind: 'tenant', tenantId: id });
    return structuredClone(next);
  }

  async deleteTenant(id: string, actor: string): Promise<boolean> {
    const state = this.#tenants.get(id);
    if (!state) return false;
    for (const key of state.keys.values()) {
      for (const h of key.hashes) this.#byHash.delete(h.hash);
      this.#lastUsed.delete(key.id);
      this.#audit(state, tenantDeletedRevocation(key.id, actor));
    }
    this.#tenants.delete(id);
    this.#publish({ kind: 'tenant', tenantId: id });
    return true;
  }

  async createKey(key: StoredKey, audit: AuditInput): Promise<CreateKeyResult> {
    const state = this.#tenants.get(key.tenantId);
    if (!state) return 'no_tenant';
    if (state.keys.size >= state.tenant.maxKeys) return 'limit';
    state.keys.set(key.id, structuredClone(key));
    for (const h of key.hashes) this.#byHash.set(h.hash, { tenantId: key.tenantId, keyId: key.id });
    this.#audit(state, audit);
    this.#noteExpiry(state, key);
    return 'created';
  }

  /** A key's first expiry event's time, unless it is in the index earlier (as ZADD LT). */
  #noteExpiry(state: TenantState, key: StoredKey): void {
    const due = firstExpiryDue(key);
    if (due !== null && !(due >= (state.exp.get(key.id) ?? Infinity))) state.exp.set(key.id, due);
  }

  // The index is scanned in memory: a read of each tenant's indexed keys, no I/O.
  async dueExpiries(tenantIds: string[], now: number, limit: number): Promise<DueExpiry[]> {
    const out: DueExpiry[] = [];
    for (const tenantId of tenantIds) {
      const due = [...(this.#tenants.get(tenantId)?.exp ?? [])].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]).slice(0, limit);
      for (const [keyId] of due) out.push({ tenantId, keyId });
    }
    return out;
  }

  async rescheduleExpiry(tenantId: string, keyId: string, expiresAt: string | null, dueAt: number | null): Promise<void> {
    const state = this.#tenants.get(tenantId);
    const key = state?.keys.get(keyId);
    if (!state) return;
    if (!key) return void state.exp.delete(keyId);
    if (key.expiresAt !== expiresAt) return;
    if (dueAt === null) state.exp.delete(keyId);
    else state.exp.set(keyId, dueAt);
  }

  async indexExpiry(key: StoredKey): Promise<void> {
    const state = this.#tenants.get(key.tenantId);
    if (state?.keys.has(key.id)) this.#noteExpiry(state, key);
  }

  // Every key of the embedded store is indexed as it is written (it starts empty).
  async expiryIndexBuilt(): Promise<boolean> {
    return true;
  }

  async markExpiryIndexBuilt(): Promise<void> {}

  async getKey(tenantId: string, keyId: string): Promise<StoredKey | null> {
    const key = this.#tenants.get(tenantId)?.keys.get(keyId);
    return key ? structuredClone(key) : null;
  }

  async listKeys(tenantId: string, page: PageRequest): Promise<Page<StoredKey>> {
    const keys = this.#tenants.get(tenantId)?.keys ?? new Map<string, StoredKey>();
    return pageOf([...keys.keys()].sort(), page, (id) => structuredClone(keys.get(id)));
  }

  async countKeys(tenantId: string): Promise<number> {
    return this.#tenants.get(tenantId)?.keys.size ?? 0;
  }

  async updateKey(tenantId: string, keyId: string, update: Updater<StoredKey>, audit: AuditInput): Promise<StoredKey | null> {
    const state = this.#tenants.get(tenantId);
    const current = state?.keys.get(keyId);
    if (!state || !current) return null;
    const next = update(structuredClone(current));
    if (!next) return structuredClone(current);
    state.keys.set(keyId, structuredClone(next));
    this.#audit(state, audit);
    this.#noteExpiry(state, next);
    this.#publish(keyEvent(current));
    return structuredClone(next);
  }

  async revokeKey(tenantId: string, keyId: string, audit: AuditInput): Promise<boolean> {
    const state = this.#tenants.get(tenantId);
    const key = state?.keys.get(keyId);
    if (!state || !key) return false;
    for (const h of key.hashes) this.#byHash.delete(h.hash);
    state.keys.delete(keyId);
    this.#lastUsed.delete(keyId);
    state.exp.delete(keyId);
    this.#audit(state, audit);
    this.#publish(keyEvent(key));
    return true;
  }

  async rotateKey(tenantId: string, keyId: string, secret: NewSecret, graceSeconds: number, audit: AuditInput): Promise<StoredKey | null> {
    const state = this.#tenants.get(tenantId);
    const key = state?.keys.get(keyId);
    if (!state || !key) return null;
    const next = rotated(structuredClone(key), secret, graceSeconds);
    for (const h of droppedHashes(key.hashes, next.hashes)) this.#byHash.delete(h);
    state.keys.set(keyId, next);
    this.#byHash.set(secret.hash, { tenantId, keyId });
    this.#audit(state, audit);
    this.#publish(keyEvent(key));
    return structuredClone(next);
  }

  async lookup(hash: string): Promise<Verification | null> {
    const ref = this.#byHash.get(hash);
    const state = ref && this.#tenants.get(ref.tenantId);
    const key = state?.keys.get(ref!.keyId);
    if (!state || !key) return null;
    const hashExpiresAt = hashExpiry(key, hash);
    if (hashExpiresAt === undefined) return null;
    return { key: structuredClone(key), tenant: structuredClone(state.tenant), hashExpiresAt };
  }

  async refresh(refs: RefreshRef[]): Promise<Array<Verification | null>> {
    return Promise.all(
      refs.map(async (r) => {
        const ref = this.#byHash.get(r.hash);
        return ref && ref.tenantId === r.tenantId && ref.keyId === r.keyId ? this.lookup(r.hash) : null;
      }),
    );
  }

  async appendAudit(tenantId: string, audit: AuditInput): Promise<boolean> {
    const state = this.#tenants.get(tenantId);
    if (!state) return false;
    this.#audit(state, audit);
    return true;
  }

  async appendRefusal(tenantId: string, audit: AuditInput, group: string): Promise<boolean> {
    const state = this.#tenants.get(tenantId);
    if (!state) return false;
    // As the Redis script: one entry per group and window, appended again with its count at each repeat.
    const now = Date.now();
    const window = Math.floor(now / this.#refusalWindowMs);
    const refusals = state.refusals;
    if (refusals.window !== window) refusals.byGroup.clear();
    refusals.window = window;
    const prev = refusals.byGroup.get(group);
    if (prev) {
      const at = state.audit.findIndex((e) => e.id === prev.id);
      if (at >= 0) state.audit.splice(at, 1);
    }
    const count = (prev?.count ?? 0) + 1;
    const firstAt = prev?.firstAt ?? new Date(now).toISOString();
    const entry = { id: newAuditId(), at: new Date(now).toISOString(), ...structuredClone(audit), details: { ...structuredClone(audit.details), count, firstAt } };
    state.audit.push(entry);
    if (state.audit.length > this.#auditMax) state.audit.splice(0, state.audit.length - this.#auditMax);
    refusals.byGroup.set(group, { id: entry.id, count, firstAt });
    return true;
  }

  async appendPlatformAudit(audit: AuditInput): Promise<void> {
    this.#platformAudit.push({ id: newAuditId(), at: new Date().toISOString(), ...structuredClone(audit) });
    if (this.#platformAudit.length > this.#auditMax) this.#platformAudit.splice(0, this.#platformAudit.length - this.#auditMax);
  }

  listPlatformAudit(page: PageRequest): Promise<Page<AuditEntry>> {
    return Promise.resolve(listNewestFirst(this.#platformAudit, page));
  }

  async listAudit(tenantId: string, page: PageRequest): Promise<Page<AuditEntry>> {
    return listNewestFirst(this.#tenants.get(tenantId)?.audit ?? [], page);
  }


  #bump(id: string, counts: UsageCounts): void {
    const row = this.#usage.get(id) ?? zeroCounts();
    for (const f of USAGE_FIELDS) row[f] += counts[f];
    this.#usage.set(id, row);
  }

  /**
   * Usage rows live as long as Redis keeps its usage hashes (USAGE_RETENTION_DAYS); older periods are dropped once
   * a day, so the rows are bounded by the keys used per day over that time, not by uptime.
   */
  #prunedOn = '';

  #pruneUsage(now: number): void {
    const today = new Date(now).toISOString().slice(0, 10);
    if (today === this.#prunedOn) return;
    this.#prunedOn = today;
    const oldestDay = new Date(now - USAGE_RETENTION_DAYS * 86_400_000).toISOString().slice(0, 10);
    const oldestMonth = oldestDay.slice(0, 7);
    for (const id of this.#usage.keys()) {
      const period = id.split('|')[1]!;
      if (period.length === 10 ? period < oldestDay : period < oldestMonth) this.#usage.delete(id);
    }
    for (const id of this.#refused.keys()) {
      const period = id.split('|')[1]!;
      if (period.length === 10 ? period < oldestDay : period.length === 7 && period < oldestMonth) this.#refused.delete(id);
    }
  }

  async addUsage(batch: UsageBatch): Promise<void> {
    if ((this.#usageSeq.get(batch.writer) ?? 0) >= batch.seq) return;
    this.#usageSeq.set(batch.writer, batch.seq);
    this.#pruneUsage(Date.now());
    for (const d of batch.deltas) {
      this.#bump(`${d.tenantId}|${d.period}|${d.keyId}`, d.counts);
      this.#bump(`${d.tenantId}|${d.period}|*`, d.counts);
      if (d.refused) {
        const have = this.#refused.get(`${d.tenantId}|${d.period}`) ?? {};
        for (const [code, n] of Object.entries(d.refused)) have[code] = (have[code] ?? 0) + n;
        this.#refused.set(`${d.tenantId}|${d.period}`, have);
      }
      // Hours: per tenant and key only, and forgotten after HOURLY_KEEP_MS (as Redis expires them).
      if (d.period.length === 13) this.#hourEntries(d.period).add(d.tenantId, d.keyId);
      else this.#bump(`|${d.period}|`, d.counts);
    }
    const oldest = new Date(Date.now() - HOURLY_KEEP_MS).toISOString().slice(0, 13);
    for (const [hour, entries] of this.#hours) {
      if (hour >= oldest) continue;
      for (const id of entries) {
        this.#usage.delete(`${id.slice(0, id.indexOf('|'))}|${hour}|${id.slice(id.indexOf('|') + 1)}`);
        this.#refused.delete(`${id.slice(0, id.indexOf('|'))}|${hour}`);
      }
      this.#hours.delete(hour);
    }
  }

  #hourEntries(hour: string): { add(tenantId: string, keyId: string): void } {
    let entries = this.#hours.get(hour);
    if (!entries) this.#hours.set(hour, (entries = new Set()));
    const set = entries;
    return { add: (tenantId, keyId) => void set.add(`${tenantId}|${keyId}`).add(`${tenantId}|*`) };
  }

  async readUsage(tenantId: string, periods: string[], keyId: string | null): Promise<Map<string, UsageCounts>> {
    return new Map(periods.map((p) => [p, { ...(this.#usage.get(`${tenantId}|${p}|${keyId ?? '*'}`) ?? zeroCounts()) }]));
  }

  async readRefusals(tenantId: string, periods: string[], codes: readonly string[]): Promise<Map<string, RefusalCounts>> {
    const wanted = new Set(codes);
    return new Map(periods.map((p) => [p, Object.fromEntries(Object.entries(this.#refused.get(`${tenantId}|${p}`) ?? {}).filter(([c]) => wanted.has(c)))]));
  }

  async readKeysUsage(tenantId: string, period: string, keyIds: string[]): Promise<Map<string, UsageCounts>> {
    return new Map(keyIds.map((k) => [k, { ...(this.#usage.get(`${tenantId}|${period}|${k}`) ?? zeroCounts()) }]));
  }

  async readTotals(period: string): Promise<UsageCounts> {
    return { ...(this.#usage.get(`|${period}|`) ?? zeroCounts()) };
  }

  async touchKeys(lastUsed: Array<{ tenantId: string; keyId: string; at: string }>): Promise<void> {
    // Only keys that still exist (as the Redis script): a revoked key's entry goes with it.
    for (const u of lastUsed) if (this.#tenants.get(u.tenantId)?.keys.has(u.keyId)) this.#lastUsed.set(u.keyId, u.at);
  }

  async lastUsed(_tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    return new Map(keyIds.flatMap((id) => (this.#lastUsed.has(id) ? [[id, this.#lastUsed.get(id)!] as [string, string]] : [])));
  }

  async subscribe(onEvent: (event: StoreEvent) => void): Promise<void> {
    this.#events.on('event', onEvent);
  }

  async ping(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
  }
}

/** A page of an audit log, newest first; ids are ULIDs, so a reversed sort is time order. */
function listNewestFirst(log: AuditEntry[], page: PageRequest): Page<AuditEntry> {
  const entries = [...log].reverse();
  const start = page.cursor === null ? 0 : entries.findIndex((e) => e.id < page.cursor!);
  const data = start < 0 ? [] : entries.slice(start, start + page.limit);
  const more = start >= 0 && start + page.limit < entries.length;
  return { data: structuredClone(data), nextCursor: more ? (data.at(-1)?.id ?? null) : null };
}
