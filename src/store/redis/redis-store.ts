import { randomBytes } from 'node:crypto';
import { newAuditId } from '../../keys/ids.ts';
import type { AuditEntry, StoredKey, Tenant } from '../../keys/types.ts';
import { droppedHashes, hashExpiry, keyEvent, rotatedHashes } from '../records.ts';
import type { AuditInput, CreateKeyResult, KeyStore, NewSecret, Page, PageRequest, RefreshRef, StoreEvent, Updater, UsageBatch, UsageCounts, Verification } from '../types.ts';
import { DEFAULT_REFUSAL_WINDOW_SECONDS, USAGE_RETENTION_DAYS, tenantDeletedRevocation, USAGE_FIELDS, zeroCounts } from '../types.ts';
import type { RedisOutboxPort } from '../outbox.ts';
import type { DueExpiry } from '../expiry.ts';
import { expiryIndexKey, RedisExpiryIndex } from './expiry-index.ts';
import { scriptKeyCounts, scripts, type ScriptName } from './scripts.ts';
import { StoreContentionError, StoreError } from '../errors.ts';
import { closeRedisClient, type RedisClient } from './connect.ts';


export interface RedisStoreOptions {
  client: RedisClient;
  /** A second connection for SUBSCRIBE (a subscribed connection can run nothing else). */
  subscriber: RedisClient;
  prefix: string;
  channel: string;
  auditMaxEntries: number;
  /** Repeated refusals of one actor, key and operation within this many seconds are one audit entry. */
  refusalWindowSeconds?: number;
  /** Where mutations' events go (store/outbox.ts): a stream in each tenant's slot; null: none are written. */
  outbox?: RedisOutboxPort | null;
}

/**
 * Writers racing on one record each lose the compare-and-set to another; the loser reads and tries again after a
 * random wait (full jitter, growing from CAS_BACKOFF_MS to CAS_BACKOFF_MAX_MS), so that the racers spread out
 * instead of colliding again, until CAS_DEADLINE_MS have passed. Contention is not an outage: a fixed 8 attempts
 * answered 133 of 400 PATCHes from 16 concurrent writers 503; only a record still contended after the deadline
 * (far beyond any measured race) is.
 */
const CAS_DEADLINE_MS = 5_000;
const CAS_BACKOFF_MS = 2;
const CAS_BACKOFF_MAX_MS = 100;
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Keys per MGET of a cache refresh: a few hundred KB per reply at most. */
const MGET_CHUNK = 500;
/** How long ioredis takes, at most, to subscribe again on another Cluster node after losing one; and how long
 *  keygate waits before sending a SUBSCRIBE that failed again. */
const CLUSTER_RESUBSCRIBE_MS = 1_000;
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

/** Runs a store operation; a Redis failure becomes a StoreError naming it (contention stays as it is). */
async function named<T>(op: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw err instanceof StoreError || err instanceof StoreContentionError ? err : new StoreError(op, err);
  }
}

/**
 * Key layout (`p` = configured prefix; `{ten_…}` is a Cluster hash tag, so one tenant's records share a slot;
 * docs/redis-keys.md has the whole table, with the keys the limiters write):
 *   p vr:<hash>            → {"t":tenantId,"k":keyId}   verification record, one per live hash; each in its
 *                            own slot, so named one per command (but for the cache refresh's MGET, which
 *                            names many only off Cluster)
 *   p {ten}:t              → Tenant JSON
 *   p {ten}:keys           → ZSET of key ids (lex order = creation order, ids are ULIDs)
 *   p {ten}:k:<keyId>      → StoredKey JSON
 *   p {ten}:audit          → capped STREAM of audit entries
 *   p {ten}:refusals       → HASH: this refusal window's collapsed refusals (appendRefusal), expires with the window
 *   p tenants              → ZSET of tenant ids (single-key commands only)
 *   p {ten}:u:<period>     → HASH "<keyId|*>:<field>" → count (usage per hour YYYY-MM-DDTHH, day YYYY-MM-DD and month YYYY-MM; fields:
 *                            the request outcomes, `sessions` opened and `sessionMs` of session time),
 *                            plus "~w:<writer>" → the last batch of that writer counted
 *   p u:<period>           → HASH "<field>" → count (fleet totals; single-key script), "~w:<writer>" likewise
 *   p {ten}:q:<YYYY-MM>:r:<keyId|*> → requests admitted this calendar month (monthly quotas, limits/calendar.ts)
 *   p {ten}:q:<YYYY-MM>:s:<keyId|*> → session ms reserved this calendar month (limits/session-quota.ts)
 *   p {ten}:lu             → HASH keyId → lastUsedAt
 *   p {ten}:outbox         → STREAM of webhook events (store/outbox.ts; its name comes from the outbox port)
 *   p {ten}:exp            → ZSET keyId → when its next expiry event is due (store/expiry.ts, expiry-index.ts)
 *   p expiry-index         → "1" once every key is in the expiry index (single-key commands only)
 * Every multi-key command and script names keys of one tenant only; nothing else is multi-key on Cluster.
 */
export class RedisStore implements KeyStore {
  readonly kind = 'redis' as const;
  readonly #r: RedisClient;
  readonly #sub: RedisClient;
  readonly #p: string;
  readonly #channel: string;
  readonly #auditMax: string;
  readonly #refusalWindowMs: number;
  readonly #outbox: RedisOutboxPort | null;
  readonly #expiry: RedisExpiryIndex;
  /** This process's own subscribers: its mutations reach them before the mutation resolves. */
  readonly #local: Array<(event: StoreEvent) => void> = [];
  /** Marks this process's messages on the channel, so it skips its own echo (it evicted before answering). */
  readonly #origin = randomBytes(9).toString('base64url');
  #closed = false;

  constructor(opts: RedisStoreOptions) {
    this.#r = opts.client;
    this.#sub = opts.subscriber;
    this.#p = opts.prefix;
    this.#channel = opts.channel;
    this.#auditMax = String(opts.auditMaxEntries);
    this.#refusalWindowMs = (opts.refusalWindowSeconds ?? DEFAULT_REFUSAL_WINDOW_SECONDS) * 1000;
    this.#outbox = opts.outbox ?? null;
    this.#expiry = new RedisExpiryIndex(this.#r, this.#p, (t, k) => this.#k(t, k));
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
  #refusals = (tenantId: string) => `${this.#p}{${tenantId}}:refusals`;
  #tenants = () => `${this.#p}tenants`;
  #usage = (tenantId: string, period: string) => `${this.#p}{${tenantId}}:u:${period}`;
  #totals = (period: string) => `${this.#p}u:${period}`;
  #lastUsed = (tenantId: string) => `${this.#p}{${tenantId}}:lu`;
  /** The tenant's outbox stream, named in every mutation script (a placeholder in its slot when there is none). */
  #outboxKey = (tenantId: string) => this.#outbox?.streamKey(tenantId) ?? this.#audit(tenantId);

  /**
   * A mutation's event, as the script's ARGV: the event JSON ('' for none) and the outbox cap. Nothing is written
   * outside the tenant's slot for it: the tenant's outbox was made known to the delivery side when the tenant
   * was created (store/outbox.ts), so a failover of any other shard does not stop this mutation.
   */
  #eventArgs(tenantId: string, audit: AuditInput | null): [string, number] {
    const event = this.#outbox && audit ? this.#outbox.eventOf(tenantId, audit) : null;
    return event ? [JSON.stringify(event), this.#outbox!.maxEntries] : ['', 0];
  }

  /** After a script that wrote an event (`hook` from #eventArgs): the readers are told, without waiting. */
  #written(tenantId: string, hook: [string, number]): void {
    if (hook[0]) this.#outbox?.notify(tenantId);
  }

  #auditJson(input: AuditInput): string {
    return JSON.stringify({ id: newAuditId(), at: new Date().toISOString(), ...input });
  }

  /**
   * Evicts here before the mutation is answered. The PUBLISH in the script reaches the other replicas (and
   * this one again); on Cluster it travels from the slot's master over the cluster bus to whichever node this
   * process subscribed on, and arrived 20–36 ms after the answer.
   */
  #evictHere(event: StoreEvent): void {
    for (const onEvent of this.#local) onEvent(event);
  }

  /** An event as published: the event and the process that published it (`o`; other replicas ignore it). */
  #message(event: StoreEvent): string {
    return JSON.stringify({ ...event, o: this.#origin });
  }

  /** Deletes verification records, one DEL each (they live in different slots), pipelined together. */
  async #dropVerifications(hashes: string[]): Promise<void> {
    await Promise.all(hashes.map((h) => this.#r.del(this.#vr(h))));
  }

  createTenant(tenant: Tenant, audit: AuditInput): Promise<void> {
    return named('createTenant', (async () => {
      // Its outbox is known to the delivery side before any mutation of the tenant can write to it.
      if (this.#outbox) await this.#outbox.register(tenant.id);
      await this.#run('createTenant', [this.#t(tenant.id), this.#audit(tenant.id)], [JSON.stringify(tenant), this.#auditJson(audit), this.#auditMax]);
      await this.#r.zadd(this.#tenants(), 0, tenant.id);
    })());
  }

  getTenant(id: string): Promise<Tenant | null> {
    return named('getTenant', this.#tenant(id));
  }

  async #tenant(id: string): Promise<Tenant | null> {
    const raw = await this.#r.get(this.#t(id));
    return raw ? (JSON.parse(raw) as Tenant) : null;
  }

  listTenants(page: PageRequest): Promise<Page<Tenant>> {
    return named('listTenants', (async () => {
      const { ids, nextCursor } = await this.#lexPage(this.#tenants(), page);
      // Tenants live in different slots; one GET each (pipelined automatically).
      const rows = await Promise.all(ids.map((id) => this.#tenant(id)));
      return { data: rows.filter((t): t is Tenant => t !== null), nextCursor };
    })());
  }

  async #lexPage(zset: string, page: PageRequest): Promise<{ ids: string[]; nextCursor: string | null }> {
    const from = page.cursor === null ? '-' : `(${page.cursor}`;
    const ids = await this.#r.zrangebylex(zset, from, '+', 'LIMIT', 0, page.limit + 1);
    const more = ids.length > page.limit;
    const pageIds = ids.slice(0, page.limit);
    return { ids: pageIds, nextCursor: more ? (pageIds.at(-1) ?? null) : null };
  }

  /** Read-modify-write with a Lua compare-and-set, retried with backoff and jitter while another writer got there first. */
  async #casUpdate<T>(tenantId: string, recordKey: string, update: Updater<T>, audit: AuditInput, event: (current: T) => StoreEvent, before?: (current: T, next: T) => Promise<void>): Promise<T | null> {
    const deadline = Date.now() + CAS_DEADLINE_MS;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        if (Date.now() >= deadline) break;
        await pause(Math.random() * Math.min(CAS_BACKOFF_MAX_MS, CAS_BACKOFF_MS * 2 ** attempt));
      }
      const raw = await this.#r.get(recordKey);
      if (raw === null) return null;
      const current = JSON.parse(raw) as T;
      const next = update(JSON.parse(raw) as T);
      if (next === null) return current;
      if (before) await before(current, next);
      const changed = event(current);
      const hook = this.#eventArgs(tenantId, audit);
      const ok = await this.#run('compareAndSet', [recordKey, this.#audit(tenantId), this.#outboxKey(tenantId)], [raw, JSON.stringify(next), this.#auditJson(audit), this.#auditMax, this.#channel, this.#message(changed), ...hook]);
      if (ok === 1) {
        this.#evictHere(changed);
        this.#written(tenantId, hook);
        return next;
      }
    }
    throw new StoreContentionError(`record ${recordKey} kept changing`);
  }

  updateTenant(id: string, update: Updater<Tenant>, audit: AuditInput): Promise<Tenant | null> {
    return named('updateTenant', this.#casUpdate(id, this.#t(id), update, audit, () => ({ kind: 'tenant', tenantId: id })));
  }

  /**
   * The tenant record goes first: from then on none of its keys verifies (a lookup needs it) and no key can be
   * added (createKey's script needs it), so the key set read next is complete. Then each key is revoked with its
   * own script (its key.revoked event), and the tenant's other records and its place in the index go last. A
   * deletion that died half-way is still in the index: deleting again finishes it.
   */
  deleteTenant(id: string, actor: string): Promise<boolean> {
    return named('deleteTenant', (async () => {
      if (!(await this.#tenant(id)) && (await this.#r.zscore(this.#tenants(), id)) === null) return false;
      await this.#r.del(this.#t(id));
      const event: StoreEvent = { kind: 'tenant', tenantId: id };
      this.#evictHere(event);
      await this.#r.publish(this.#channel, this.#message(event));
      const keyIds = await this.#r.zrange(this.#keys(id), '0', '-1');
      for (const keyId of keyIds) await this.#revoke(id, keyId, tenantDeletedRevocation(keyId, actor));
      // One tenant's keys: one slot.
      await this.#r.del(this.#keys(id), this.#audit(id), this.#refusals(id), this.#lastUsed(id), expiryIndexKey(this.#p, id));
      await this.#r.zrem(this.#tenants(), id);
      return true;
    })());
  }

  createKey(key: StoredKey, audit: AuditInput): Promise<CreateKeyResult> {
    return named('createKey', (async (): Promise<CreateKeyResult> => {
      const t = key.tenantId;
      const hook = this.#eventArgs(t, audit);
      const res = await this.#run('createKey', [this.#t(t), this.#keys(t), this.#k(t, key.id), this.#audit(t), this.#outboxKey(t)], [key.id, JSON.stringify(key), this.#auditJson(audit), this.#auditMax, ...hook]);
      if (res === -1) return 'no_tenant';
      if (res === 0) return 'limit';
      this.#written(t, hook);
      // The verification record is written last: until then the key exists but cannot be used.
      for (const h of key.hashes) await this.#r.set(this.#vr(h.hash), JSON.stringify({ t, k: key.id }));
      // Into the expiry index after the key exists (before, a scan running meanwhile would find no record and
      // take the entry out again); a failure here answers like one of the verification record's.
      await this.#expiry.note(key);
      return 'created';
    })());
  }

  getKey(tenantId: string, keyId: string): Promise<StoredKey | null> {
    return named('getKey', this.#key(tenantId, keyId));
  }

  async #key(tenantId: string, keyId: string): Promise<StoredKey | null> {
    const raw = await this.#r.get(this.#k(tenantId, keyId));
    return raw ? (JSON.parse(raw) as StoredKey) : null;
  }

  listKeys(tenantId: string, page: PageRequest): Promise<Page<StoredKey>> {
    return named('listKeys', (async () => {
      const { ids, nextCursor } = await this.#lexPage(this.#keys(tenantId), page);
      const raws = ids.length ? await this.#r.mget(ids.map((id) => this.#k(tenantId, id))) : [];
      return { data: raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as StoredKey), nextCursor };
    })());
  }

  countKeys(tenantId: string): Promise<number> {
    return named('countKeys', this.#r.zcard(this.#keys(tenantId)));
  }

  updateKey(tenantId: string, keyId: string, update: Updater<StoredKey>, audit: AuditInput): Promise<StoredKey | null> {
    return named('updateKey', (async () => {
      const next = await this.#casUpdate(tenantId, this.#k(tenantId, keyId), update, audit, keyEvent);
      // A new expiry enters the expiry index (an unchanged one is there already: ZADD LT leaves it).
      if (next) await this.#expiry.note(next);
      return next;
    })());
  }

  dueExpiries(tenantIds: string[], now: number, limit: number): Promise<DueExpiry[]> {
    return named('dueExpiries', this.#expiry.dueExpiries(tenantIds, now, limit));
  }

  rescheduleExpiry(tenantId: string, keyId: string, expiresAt: string | null, dueAt: number | null): Promise<void> {
    return named('rescheduleExpiry', this.#expiry.rescheduleExpiry(tenantId, keyId, expiresAt, dueAt));
  }

  indexExpiry(key: StoredKey): Promise<void> {
    return named('indexExpiry', this.#expiry.indexExpiry(key));
  }

  expiryIndexBuilt(): Promise<boolean> {
    return named('expiryIndexBuilt', this.#expiry.expiryIndexBuilt());
  }

  markExpiryIndexBuilt(): Promise<void> {
    return named('markExpiryIndexBuilt', this.#expiry.markExpiryIndexBuilt());
  }

  revokeKey(tenantId: string, keyId: string, audit: AuditInput | null): Promise<boolean> {
    return named('revokeKey', this.#revoke(tenantId, keyId, audit));
  }

  async #revoke(tenantId: string, keyId: string, audit: AuditInput | null): Promise<boolean> {
    const key = await this.#key(tenantId, keyId);
    if (!key) return false;
    const event = keyEvent(key);
    try {
      // Verification records first: whatever happens after this line, the key no longer verifies.
      await this.#dropVerifications(key.hashes.map((h) => h.hash));
      const hook = this.#eventArgs(tenantId, audit);
      const res = await this.#run('removeKey', [this.#k(tenantId, keyId), this.#keys(tenantId), this.#audit(tenantId), this.#outboxKey(tenantId)], [keyId, audit ? this.#auditJson(audit) : '', this.#auditMax, this.#channel, this.#message(event), ...hook]);
      if (res === 1) this.#written(tenantId, hook);
      await this.#expiry.forget(tenantId, keyId);
      return res === 1;
    } finally {
      // Also when a later step failed: the records may be gone already, and a reload costs one lookup.
      this.#evictHere(event);
    }
  }

  rotateKey(tenantId: string, keyId: string, secret: NewSecret, graceSeconds: number, audit: AuditInput): Promise<StoredKey | null> {
    return named('rotateKey', (async () => {
      const next = await this.#casUpdate<StoredKey>(
        tenantId,
        this.#k(tenantId, keyId),
        (key) => ({ ...key, prefix: secret.prefix, hashes: rotatedHashes(key, secret.hash, graceSeconds), updatedAt: new Date().toISOString() }),
        audit,
        keyEvent,
        // Before the record changes: values that stop now lose their verification record; values in a grace
        // period get one that expires with it. One command per record: each hash has its own slot.
        async (current, updated) => {
          await this.#dropVerifications(droppedHashes(current.hashes, updated.hashes));
          await Promise.all(updated.hashes.filter((h) => h.expiresAt).map((h) => this.#r.pexpireat(this.#vr(h.hash), Date.parse(h.expiresAt!))));
        },
      );
      if (next) await this.#r.set(this.#vr(secret.hash), JSON.stringify({ t: tenantId, k: keyId }));
      return next;
    })());
  }

  lookup(hash: string): Promise<Verification | null> {
    return named('lookup', (async () => {
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
    })());
  }

  refresh(refs: RefreshRef[]): Promise<Array<Verification | null>> {
    return named('refresh', (async () => {
      if (refs.length === 0) return [];
      // Both reads at once: an answer needs the verification record AND the key record listing the hash (a
      // revocation removes the first before the second, a rotation drops old values' records before the key
      // changes), so a mutation between the two reads can only make the answer null, which a re-read settles.
      // On Cluster each verification record has its own slot: an MGET of one key each (not a GET, so that MONITOR
      // tells a refresh from a lookup: bench/redis-count.ts).
      const vr = refs.map((r) => this.#vr(r.hash));
      const pointers = this.#r.isCluster ? Promise.all(vr.map(async (k) => (await this.#r.mget(k))[0] ?? null)) : this.#mgetChunked(vr);
      const byTenant = new Map<string, Set<string>>();
      for (const r of refs) {
        let ids = byTenant.get(r.tenantId);
        if (!ids) byTenant.set(r.tenantId, (ids = new Set()));
        ids.add(r.keyId);
      }
      // One tenant's records share a slot: its tenant record first, then its keys (a lookup's MGET names the key first).
      const records = new Map<string, string | null>();
      const reads = [...byTenant].flatMap(([t, ids]) => {
        const keyIds = [...ids];
        const chunks: Array<Promise<void>> = [];
        for (let i = 0; i < keyIds.length; i += MGET_CHUNK) {
          const chunk = keyIds.slice(i, i + MGET_CHUNK);
          chunks.push(this.#r.mget(this.#t(t), ...chunk.map((k) => this.#k(t, k))).then(([tenant, ...keys]) => {
            records.set(this.#t(t), tenant ?? null);
            chunk.forEach((k, j) => records.set(this.#k(t, k), keys[j] ?? null));
          }));
        }
        return chunks;
      });
      const [refsNow] = await Promise.all([pointers, Promise.all(reads)]);
      return refs.map((r, i): Verification | null => {
        const pointer = refsNow[i];
        if (!pointer) return null;
        const { t, k } = JSON.parse(pointer) as { t: string; k: string };
        const rawKey = records.get(this.#k(r.tenantId, r.keyId));
        const rawTenant = records.get(this.#t(r.tenantId));
        if (t !== r.tenantId || k !== r.keyId || !rawKey || !rawTenant) return null;
        const key = JSON.parse(rawKey) as StoredKey;
        const hashExpiresAt = hashExpiry(key, r.hash);
        if (hashExpiresAt === undefined) return null;
        return { key, tenant: JSON.parse(rawTenant) as Tenant, hashExpiresAt };
      });
    })());
  }

  /** MGET of keys in any slots (standalone and Sentinel only), in commands of at most MGET_CHUNK keys. */
  async #mgetChunked(keys: string[]): Promise<Array<string | null>> {
    const parts: Array<Promise<Array<string | null>>> = [];
    for (let i = 0; i < keys.length; i += MGET_CHUNK) parts.push(this.#r.mget(keys.slice(i, i + MGET_CHUNK)));
    return (await Promise.all(parts)).flat();
  }

  async appendAudit(tenantId: string, audit: AuditInput): Promise<boolean> {
    return (await this.#run('appendAudit', [this.#t(tenantId), this.#audit(tenantId)], [this.#auditJson(audit), this.#auditMax])) === 1;
  }

  appendRefusal(tenantId: string, audit: AuditInput, group: string): Promise<boolean> {
    return named('appendRefusal', (async () => {
      const now = Date.now();
      const window = Math.floor(now / this.#refusalWindowMs);
      // The entry as JSON up to its count, which the script appends (with the window's first refusal time).
      const json = JSON.stringify({ id: newAuditId(), at: new Date(now).toISOString(), ...audit, details: { ...audit.details, count: 0 } });
      const head = json.slice(0, -'0}}'.length);
      const keys = [this.#t(tenantId), this.#audit(tenantId), this.#refusals(tenantId)];
      const args = [head, this.#auditMax, group, String(window), new Date(now).toISOString(), String((window + 1) * this.#refusalWindowMs)];
      return (await this.#run('appendRefusal', keys, args)) === 1;
    })());
  }

  listAudit(tenantId: string, page: PageRequest): Promise<Page<AuditEntry>> {
    return named('listAudit', (async () => {
      const end = page.cursor === null ? '+' : `(${page.cursor}`;
      const rows = await this.#r.xrevrange(this.#audit(tenantId), end, '-', 'COUNT', page.limit + 1);
      const more = rows.length > page.limit;
      const pageRows = rows.slice(0, page.limit);
      const data = pageRows.map(([, fields]) => JSON.parse(fields[1]!) as AuditEntry);
      return { data, nextCursor: more ? (pageRows.at(-1)?.[0] ?? null) : null };
    })());
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
    const perHash = new Map<string, { tenant: UsageCounts; fields: Array<string | number>; ttl: number }>();
    const totals = new Map<string, UsageCounts>();
    for (const d of deltas) {
      const key = this.#usage(d.tenantId, d.period);
      let hash = perHash.get(key);
      if (!hash) perHash.set(key, (hash = { tenant: zeroCounts(), fields: [], ttl: isHour(d.period) ? HOURLY_USAGE_TTL_SECONDS : USAGE_TTL_SECONDS }));
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
    for (const [key, { tenant, fields: keyFields, ttl }] of perHash) {
      const fields = [...USAGE_FIELDS.flatMap((f) => (tenant[f] === 0 ? [] : [`*:${f}`, tenant[f]])), ...keyFields];
      for (let i = 0; i < fields.length; i += CHUNK) {
        await this.#run('incrementFields', [key], [ttl, writerField, chunkSeq(i / CHUNK), ...fields.slice(i, i + CHUNK)]);
      }
    }
    for (const [period, t] of totals) {
      await this.#run('incrementFields', [this.#totals(period)], [USAGE_TTL_SECONDS, writerField, chunkSeq(0), ...USAGE_FIELDS.flatMap((f) => [f, t[f]])]);
    }
  }

  readUsage(tenantId: string, periods: string[], keyId: string | null): Promise<Map<string, UsageCounts>> {
    const who = keyId ?? '*';
    return named('readUsage', (async () => {
      const rows = await Promise.all(periods.map((p) => this.#r.hmget(this.#usage(tenantId, p), ...USAGE_FIELDS.map((f) => `${who}:${f}`))));
      return new Map(periods.map((p, i) => [p, countsOf(rows[i]!)]));
    })());
  }

  readKeysUsage(tenantId: string, period: string, keyIds: string[]): Promise<Map<string, UsageCounts>> {
    return named('readKeysUsage', (async () => {
      if (keyIds.length === 0) return new Map<string, UsageCounts>();
      const values = await this.#r.hmget(this.#usage(tenantId, period), ...keyIds.flatMap((k) => USAGE_FIELDS.map((f) => `${k}:${f}`)));
      const width = USAGE_FIELDS.length;
      return new Map(keyIds.map((k, i) => [k, countsOf(values.slice(i * width, (i + 1) * width))]));
    })());
  }

  async readTotals(period: string): Promise<UsageCounts> {
    return countsOf(await named('readTotals', this.#r.hmget(this.#totals(period), ...USAGE_FIELDS)));
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
        for (let i = 0; i < pairs.length; i += 2_000) await this.#run('touchKeys', [this.#lastUsed(tenantId), this.#keys(tenantId)], pairs.slice(i, i + 2_000));
      }
    })());
  }

  async lastUsed(tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    if (!keyIds.length) return new Map();
    const values = await named('lastUsed', this.#r.hmget(this.#lastUsed(tenantId), ...keyIds));
    return new Map(keyIds.flatMap((id, i) => (values[i] ? [[id, values[i]!] as [string, string]] : [])));
  }

  async subscribe(onEvent: (event: StoreEvent) => void, onReset: () => void): Promise<void> {
    this.#local.push(onEvent);
    let connectedBefore = false;
    // ioredis re-subscribes after a reconnect; whatever was published meanwhile is lost, so the cache is
    // cleared (the TTL bounds a lost message's cost, the reset removes even that).
    this.#sub.on('ready', () => {
      if (connectedBefore) onReset();
      connectedBefore = true;
    });
    // On Cluster the client stays ready while ioredis moves the subscription to another node, silently, when
    // its node goes away (a failover). A node leaving the client's view is the sign: once the move is done,
    // a second later, the cache is reset all the same.
    if (this.#sub.isCluster) {
      let timer: NodeJS.Timeout | null = null;
      this.#sub.on('-node', () => {
        if (!connectedBefore) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = null;
          onReset();
        }, CLUSTER_RESUBSCRIBE_MS).unref();
      });
    }
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      try {
        const { o, ...event } = JSON.parse(message) as StoreEvent & { o?: string };
        if (o !== this.#origin) onEvent(event as StoreEvent);
      } catch {
        onReset();
      }
    });
    await this.#subscribeChannel(onReset);
    connectedBefore = true;
  }

  /**
   * SUBSCRIBE, again every second until it succeeds (then a reset: events may have been missed meanwhile). ioredis
   * Cluster drops a SUBSCRIBE still under way when it moves its subscriber connection — as it does at start-up
   * when the slot map replaces the configured nodes — and would never send it again; the first failure is
   * still thrown, so start-up says the subscription is pending.
   */
  async #subscribeChannel(onReset: () => void): Promise<void> {
    try {
      await this.#sub.subscribe(this.#channel);
    } catch (err) {
      const retry = setTimeout(() => {
        if (!this.#closed) void this.#subscribeChannel(onReset).then(onReset, () => {});
      }, CLUSTER_RESUBSCRIBE_MS);
      retry.unref();
      throw err;
    }
  }

  async ping(): Promise<number> {
    const start = performance.now();
    await this.#r.ping();
    return performance.now() - start;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([closeRedisClient(this.#r), closeRedisClient(this.#sub)]);
  }
}
