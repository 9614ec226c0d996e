import { isDeepStrictEqual } from 'node:util';
import { LRUCache } from 'lru-cache';
import type { Metrics } from '../ops/metrics.ts';
import { DIGEST_LENGTH, digestOfHex, hexOfDigest } from '../keys/hashing.ts';
import { valueTagOf } from '../keys/session-token.ts';
import { toAuthKey, type AuthKey } from '../keys/types.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { KeyStore, StoreEvent, Verification } from '../store/types.ts';

/** A verification as cached: the key trimmed to what authorisation reads, its policy shared. */
/**
 * A verification as cached. An entry by key reference (a session token's minting key) also has the key's live
 * values, by tag, and when each stops (null: never): a token minted with a value works only while it is there.
 */
export type CachedVerification = Verification<AuthKey> & { values?: readonly KeyValue[] };

export interface KeyValue {
  tag: string;
  until: number | null;
}

/** The value cached for a well-formed key the store does not know (a negative entry): one object for all. */
const UNKNOWN = Object.freeze({ unknown: true as const });

/** What the LRU holds per hash: the verification itself, nothing wrapped around it (see Memory below). */
type Entry = CachedVerification | typeof UNKNOWN;

/**
 * Entries are keyed by a key's digest (its hash's 32 bytes as a latin1 string, KeyHasher.digest: 48 bytes of heap
 * where the hex string takes 80), or by `#<tenantId>/<keyId>` for the keys session tokens name — 62 characters, as
 * both ids are a prefix and a ULID, so never a digest's 32. The store knows hashes in hex: converted there.
 */
const isKeyRef = (id: string): boolean => id.length !== DIGEST_LENGTH;

/**
 * Whether a record read again is the one cached: the key's id, expiry and policy, its hash's expiry and its tenant.
 * Not what the rate limits keep on the key (AuthKey.limits), which a kept record carries on. Policies and tenants
 * are shared copies (#intern), so they are mostly the same object.
 */
const sameRecord = (a: CachedVerification, b: CachedVerification): boolean =>
  a.hashExpiresAt === b.hashExpiresAt &&
  isDeepStrictEqual(a.values, b.values) &&
  a.key.id === b.key.id &&
  a.key.expiresAt === b.key.expiresAt &&
  (a.key.policy === b.key.policy || isDeepStrictEqual(a.key.policy, b.key.policy)) &&
  (a.tenant === b.tenant || isDeepStrictEqual(a.tenant, b.tenant));

const verificationOf = (entry: Entry): CachedVerification | null => (entry === UNKNOWN ? null : (entry as CachedVerification));

export interface KeyCacheOptions {
  maxEntries: number;
  ttlSeconds: number;
  negativeTtlSeconds: number;
  staleIfErrorSeconds: number;
}

const RETRIES_AFTER_EVICTION = 3;
// Not frozen: lru-cache writes into the options object it is given.
const forceRefresh = () => ({ forceRefresh: true });
/** Entries refreshed in one batch at most; a used entry left out loads on the request path when it expires. */
const MAX_REFRESH_BATCH = 10_000;

/**
 * Verification records by key hash, and by key reference for session tokens' minting keys. lru-cache's `fetch` coalesces concurrent misses into one store
 * read, and aborts a read whose key is evicted while it runs — that is the generation check for key events:
 * a load that began before an eviction never writes the stale record back. Tenant events cannot name the
 * hashes being loaded, so they bump a sequence number and a load that overlaps one reads again.
 *
 * Background refresh: a hit on an entry in the last third of its TTL queues it, and every `refreshTickMs` the
 * queued entries are read again together (KeyStore.refresh: on Redis one MGET of their verification records and
 * one per tenant of its records, instead of a GET and an MGET per key on the request path). So a key in use never
 * waits for its reload, and the reloads of many keys cost a few commands. The TTL still bounds how long a record
 * is trusted without asking the store: a refresh that lands after the entry expired, or after an event touched
 * it (a key event evicts it, a tenant event or a reset bumps the sequence number), is discarded, and an entry not
 * used in its last third expires and loads on the request path as before.
 *
 * Memory (bench: 100,000 cached keys): the LRU holds each verification as it is (lru-cache keeps the load
 * time and TTL in its own tables, which grow with the entries), what many keys hold alike — the Tenant, the key's policy — is one shared object
 * each (a key's own part is its id and expiry), and a TTL refresh that finds the record unchanged keeps the cached object, so what
 * hangs off it (rate-limit leases) lives on. A tenant event finds the tenant's entries by walking the cache
 * (rare: a plan change, a suspension) rather than keeping a set of hashes per tenant.
 */
export class KeyCache {
  readonly #store: KeyStore;
  readonly #metrics: Metrics | null;
  readonly #lru: LRUCache<string, Entry>;
  readonly #negativeTtlMs: number;
  readonly #staleIfErrorMs: number;
  /** The last load error per hash, cleared by the next load: tells a store failure from an eviction. */
  readonly #failures = new Map<string, unknown>();
  #tenantSeq = 0;
  /**
   * Hashes a reset left untrusted until they are read again. A reset cannot rely on re-dating entries as expired:
   * lru-cache judges staleness on a clock it caches between timer ticks, and on a loaded machine those ticks run
   * late, so such an entry still looked fresh for a few ms. This set is checked on every read instead. Bounded:
   * a reset replaces it with the hashes cached at that moment (at most `cache.maxEntries`), and a read removes one.
   */
  #untrusted = new Set<string>();
  /** Shared copies of what many keys hold alike (tenants, key policies), by their JSON. */
  readonly #interned = new Map<string, unknown>();
  readonly #lookups: Record<'hit' | 'negative' | 'miss' | 'stale', { inc(): void }> | null;
  /** A hit whose entry has less than this left of its TTL queues it for a background refresh. */
  readonly #refreshAheadMs: number;
  readonly #refreshTickMs: number;
  /** Entries queued for the next refresh, by hash: the object cached when queued. */
  #due = new Map<string, CachedVerification>();
  /** The batch being read: its entries are not queued again meanwhile. */
  #inFlight = new Map<string, CachedVerification>();
  /** A refresh is scheduled (the tick's timer runs). */
  #refreshScheduled = false;
  /** lru-cache fills this on every get: the entry's remaining TTL, without a second lookup. */
  readonly #status: LRUCache.Status<string, Entry> = {};
  readonly #getOptions = { status: this.#status };
  /** Wraps a miss's store read in a span when tracing is on (ops/tracing.ts); null when it is off. */
  traceMiss: (<T>(work: () => Promise<T>) => Promise<T>) | null = null;

  constructor(store: KeyStore, opts: KeyCacheOptions, metrics: Metrics | null = null) {
    this.#store = store;
    this.#metrics = metrics;
    const counter = metrics?.cacheLookups;
    this.#lookups = counter ? { hit: counter.child('hit'), negative: counter.child('negative'), miss: counter.child('miss'), stale: counter.child('stale') } : null;
    this.#negativeTtlMs = opts.negativeTtlSeconds * 1000;
    this.#staleIfErrorMs = opts.staleIfErrorSeconds * 1000;
    this.#refreshAheadMs = (opts.ttlSeconds * 1000) / 3;
    this.#refreshTickMs = Math.min(1_000, Math.max(10, this.#refreshAheadMs / 4));
    this.#lru = new LRUCache<string, Entry>({
      // Bounded by count, as a size of one per entry: with `max`, lru-cache preallocates its tables for every
      // slot at start (3 MB of touched heap at the default 100,000, whether one key is ever cached or not);
      // sized this way they grow with the entries.
      maxSize: opts.maxEntries,
      sizeCalculation: () => 1,
      ttl: opts.ttlSeconds * 1000,
      // Stale entries stay until evicted so that a store outage can fall back on them (staleIfError).
      noDeleteOnStaleGet: true,
      noDeleteOnFetchRejection: true,
      allowStaleOnFetchRejection: true,
      fetchMethod: (hash, stale, { options }) => this.#load(hash, stale, options),
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  /** Hashes a reset left untrusted and not yet read again. */
  get untrusted(): number {
    return this.#untrusted.size;
  }

  async #load(hash: string, stale: Entry | undefined, options: { ttl?: number }): Promise<Entry> {
    let found: Verification | null;
    let seq: number;
    this.#failures.delete(hash);
    do {
      seq = this.#tenantSeq;
      try {
        found = isKeyRef(hash) ? await this.#lookupRef(hash) : await this.#store.lookup(hexOfDigest(hash));
      } catch (err) {
        this.#metrics?.storeErrors.inc({ op: 'lookup' });
        if (this.#failures.size > 10_000) this.#failures.clear();
        this.#failures.set(hash, err);
        throw err;
      }
    } while (seq !== this.#tenantSeq);
    this.#untrusted.delete(hash); // read after any reset (the loop above read again after one)
    if (found === null) {
      options.ttl = this.#negativeTtlMs;
      return UNKNOWN;
    }
    const v = this.#verification(found);
    // Unchanged since the last load (a TTL refresh): keep the object that is already cached.
    return stale !== undefined && stale !== UNKNOWN && sameRecord(stale as CachedVerification, v) ? stale : v;
  }

  /**
   * A key by its reference (`#<tenantId>/<keyId>`, what a session token names its minting key by): the key's
   * record and its tenant's, as a lookup by hash would find them, or null when either is gone.
   */
  async #lookupRef(ref: string): Promise<(Verification & { values: KeyValue[] }) | null> {
    const slash = ref.indexOf('/');
    const tenantId = ref.slice(1, slash);
    const [key, tenant] = await Promise.all([this.#store.getKey(tenantId, ref.slice(slash + 1)), this.#store.getTenant(tenantId)]);
    if (!key || !tenant) return null;
    const values = key.hashes.map((h) => ({ tag: valueTagOf(h.hash), until: h.expiresAt === null ? null : Date.parse(h.expiresAt) }));
    return { key, tenant, hashExpiresAt: null, values };
  }

  /** A lookup as the cache hands it out: the key trimmed, its common values (the tenant too) shared. */
  #verification(found: Verification & { values?: KeyValue[] }): CachedVerification {
    const key = toAuthKey(found.key);
    key.policy = this.#intern(key.policy);
    const v: CachedVerification = { key, tenant: this.#intern(found.tenant), hashExpiresAt: found.hashExpiresAt };
    if (found.values) v.values = found.values;
    return v;
  }

  /** One shared copy per distinct value (cached records are never mutated); most keys hold the same few. */
  #intern<T>(value: T): T {
    if (value === null) return value;
    const id = JSON.stringify(value);
    const have = this.#interned.get(id);
    if (have !== undefined) return have as T;
    if (this.#interned.size >= 10_000) this.#interned.clear(); // many distinct values: stop sharing the old ones
    this.#interned.set(id, value);
    return value;
  }

  /** Synchronous fast path (a key's digest, or a key reference): a fresh entry, or undefined when the store must be asked. */
  peek(hash: string): CachedVerification | null | undefined {
    if (this.#untrusted.size !== 0 && this.#untrusted.has(hash)) return undefined;
    const entry = this.#lru.get(hash, this.#getOptions); // undefined once stale: lru-cache keeps the TTL
    if (entry === undefined) return undefined;
    if (entry === UNKNOWN) {
      this.#lookups?.negative.inc();
      return null;
    }
    this.#lookups?.hit.inc();
    if (this.#status.remainingTTL! < this.#refreshAheadMs) this.#queueRefresh(hash, entry as CachedVerification);
    return entry as CachedVerification;
  }

  #queueRefresh(hash: string, entry: CachedVerification): void {
    // A key reference is not a hash the store's batched refresh can read: it expires and loads again on its own.
    if (isKeyRef(hash)) return;
    if (this.#due.size >= MAX_REFRESH_BATCH || this.#due.has(hash) || this.#inFlight.has(hash)) return;
    this.#due.set(hash, entry);
    if (this.#refreshScheduled) return;
    this.#refreshScheduled = true;
    setTimeout(() => void this.#refresh(), this.#refreshTickMs).unref();
  }

  /** Reads the queued entries again, together; what changed replaces them, what no longer verifies is evicted. */
  async #refresh(): Promise<void> {
    const batch = this.#due;
    this.#due = new Map();
    this.#inFlight = batch;
    this.#refreshScheduled = false;
    const seq = this.#tenantSeq;
    const hashes = [...batch.keys()];
    let found: Array<Verification | null>;
    try {
      found = await this.#store.refresh(hashes.map((hash) => ({ hash: hexOfDigest(hash), tenantId: batch.get(hash)!.tenant.id, keyId: batch.get(hash)!.key.id })));
    } catch {
      // The entries expire as they would have; the request path then reads them (or serves them stale-if-error).
      this.#metrics?.storeErrors.inc({ op: 'refresh' });
      return;
    } finally {
      if (this.#inFlight === batch) this.#inFlight = new Map();
    }
    // A tenant event or a reset meanwhile: what was read may predate it; those entries load on their own.
    if (seq !== this.#tenantSeq) return;
    hashes.forEach((hash, i) => {
      const was = batch.get(hash)!;
      // Evicted by an event, reloaded, or expired (a load may be under way) since it was queued: left as it is.
      if (this.#lru.peek(hash) !== was) return;
      const now = found[i]!;
      if (now === null) {
        this.#lru.delete(hash); // no longer verifies: the next request reads it (and is refused)
        return;
      }
      const v = this.#verification(now);
      this.#lru.set(hash, sameRecord(was, v) ? was : v);
    });
  }

  /** The verification for a key's digest or reference: cached, or loaded once however many requests ask at the same time. */
  async get(hash: string): Promise<CachedVerification | null> {
    const fresh = this.peek(hash);
    if (fresh !== undefined) return fresh;
    this.#lookups?.miss.inc();
    return this.traceMiss ? this.traceMiss(() => this.#missed(hash)) : this.#missed(hash);
  }

  /** A miss: loaded once however many requests ask, retried when an eviction discarded the load. */
  async #missed(hash: string): Promise<CachedVerification | null> {
    for (let attempt = 0; attempt <= RETRIES_AFTER_EVICTION; attempt++) {
      let entry: Entry | undefined;
      try {
        // An entry a reset left untrusted may still look fresh to lru-cache: it is read again all the same.
        entry = await this.#lru.fetch(hash, this.#untrusted.has(hash) ? forceRefresh() : undefined);
      } catch (err) {
        throw new StoreUnavailableError(err);
      }
      const failure = this.#failures.get(hash);
      // Nothing came back: either the store failed with nothing cached, or the key was evicted while it
      // loaded (a mutation arrived) and the load was discarded — then read again, after the eviction.
      if (entry === undefined) {
        if (failure !== undefined) throw new StoreUnavailableError(failure);
        continue;
      }
      // Fresh: what the cache now holds for the hash, within its TTL (lru-cache's peek leaves stale values out),
      // and read since the last reset.
      if (this.#lru.peek(hash) !== entry || this.#untrusted.has(hash)) {
        if (failure === undefined) continue; // a stale value handed back by an aborted reload
        // Only a positive record, and only within cache.staleIfErrorSeconds, may outlive a store failure.
        if (entry === UNKNOWN || this.#lru.getRemainingTTL(hash) < -this.#staleIfErrorMs) throw new StoreUnavailableError(failure);
        this.#lookups?.stale.inc();
      }
      return verificationOf(entry);
    }
    // Evicted on every attempt (a storm of mutations to this key): ask the store directly.
    let found: Verification | null;
    try {
      found = isKeyRef(hash) ? await this.#lookupRef(hash) : await this.#store.lookup(hexOfDigest(hash));
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
    return found && this.#verification(found);
  }

  /** Applies a mutation event from anywhere in the fleet. */
  apply(event: StoreEvent): void {
    this.#metrics?.invalidations.inc();
    if (event.kind === 'key') {
      for (const hash of event.hashes) this.#lru.delete(digestOfHex(hash));
      this.#lru.delete(`#${event.tenantId}/${event.keyId}`);
      return;
    }
    this.#tenantSeq++;
    // Stale entries too (a store outage could serve them) and entries being reloaded: dump() holds them all.
    for (const [hash, { value }] of this.#lru.dump()) if (value !== UNKNOWN && (value as CachedVerification).tenant.id === event.tenantId) this.#lru.delete(hash);
  }

  /**
   * Events may have been missed (the subscription dropped): every entry is read from the store again before it
   * is trusted, and a load under way is discarded. Records stay behind as stale entries, though, for
   * stale-if-error only: during a failover the subscriber may reach the promoted master before the main
   * connection does, and a reset then must not turn every cached key into a 503.
   */
  reset(): void {
    this.#tenantSeq++;
    // Untrusted at once (checked on every read); also re-dated as expired now, so that stale-if-error counts
    // from the reset once lru-cache's clock catches up.
    const expired = { ttl: 1, start: this.#lru.perf.now() - 2 };
    const untrusted = new Set<string>();
    for (const [hash, { value }] of this.#lru.dump()) {
      if (value === UNKNOWN) this.#lru.delete(hash);
      else {
        this.#lru.set(hash, value, expired);
        untrusted.add(hash);
      }
    }
    this.#untrusted = untrusted;
  }

  /**
   * Subscribes to the store's mutation events; a dropped subscription resets everything. `also` runs after
   * the cache has applied an event (live WebSocket sessions re-check their keys there).
   */
  attach(also?: { onEvent(event: StoreEvent): void; onReset(): void }): Promise<void> {
    return this.#store.subscribe(
      (event) => {
        this.apply(event);
        also?.onEvent(event);
      },
      () => {
        this.reset();
        also?.onReset();
      },
    );
  }
}
