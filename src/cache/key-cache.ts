import { LRUCache } from 'lru-cache';
import type { Metrics } from '../ops/metrics.ts';
import { toAuthKey, type AuthKey } from '../keys/types.ts';
import type { KeyStore, StoreEvent, Verification } from '../store/types.ts';

/** A verification as cached: the key trimmed to what authorisation reads. */
export type CachedVerification = Verification<AuthKey>;

const trimmed = (v: Verification | null): CachedVerification | null => v && { key: toAuthKey(v.key), tenant: v.tenant, hashExpiresAt: v.hashExpiresAt };

/** The store could not answer and nothing usable was cached: the caller answers 503, never 401. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('key store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}

interface Entry {
  /** null: a well-formed key the store does not know (negative entry). */
  v: CachedVerification | null;
  loadedAt: number;
  /** When the entry stops being fresh (positive or negative TTL). */
  freshUntil: number;
}

export interface KeyCacheOptions {
  maxEntries: number;
  ttlSeconds: number;
  negativeTtlSeconds: number;
  staleIfErrorSeconds: number;
}

const RETRIES_AFTER_EVICTION = 3;

/**
 * Verification records by key hash (SPEC §8). lru-cache's `fetch` coalesces concurrent misses into one store
 * read, and aborts a read whose key is evicted while it runs — that is the generation check for key events:
 * a load that began before an eviction never writes the stale record back. Tenant events cannot name the
 * hashes being loaded, so they bump a sequence number and a load that overlaps one reads again.
 */
export class KeyCache {
  readonly #store: KeyStore;
  readonly #metrics: Metrics | null;
  readonly #lru: LRUCache<string, Entry>;
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxAgeMs: number;
  /** The last load error per hash, cleared by the next load: tells a store failure from an eviction. */
  readonly #failures = new Map<string, unknown>();
  readonly #byTenant = new Map<string, Set<string>>();
  #tenantSeq = 0;

  constructor(store: KeyStore, opts: KeyCacheOptions, metrics: Metrics | null = null) {
    this.#store = store;
    this.#metrics = metrics;
    this.#ttlMs = opts.ttlSeconds * 1000;
    this.#negativeTtlMs = opts.negativeTtlSeconds * 1000;
    this.#maxAgeMs = (opts.ttlSeconds + opts.staleIfErrorSeconds) * 1000;
    this.#lru = new LRUCache<string, Entry>({
      max: opts.maxEntries,
      ttl: opts.ttlSeconds * 1000,
      // Stale entries stay until evicted so that a store outage can fall back on them (staleIfError).
      noDeleteOnStaleGet: true,
      noDeleteOnFetchRejection: true,
      allowStaleOnFetchRejection: true,
      fetchMethod: (hash, _stale, { options }) => this.#load(hash, options),
      dispose: (entry, hash) => this.#untrack(entry, hash),
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  async #load(hash: string, options: { ttl?: number }): Promise<Entry> {
    let found: Verification | null;
    let seq: number;
    this.#failures.delete(hash);
    do {
      seq = this.#tenantSeq;
      try {
        found = await this.#store.lookup(hash);
      } catch (err) {
        this.#metrics?.storeErrors.inc({ op: 'lookup' });
        if (this.#failures.size > 10_000) this.#failures.clear();
        this.#failures.set(hash, err);
        throw err;
      }
    } while (seq !== this.#tenantSeq);
    const v = trimmed(found);
    if (v === null) options.ttl = this.#negativeTtlMs;
    else {
      let hashes = this.#byTenant.get(v.tenant.id);
      if (!hashes) this.#byTenant.set(v.tenant.id, (hashes = new Set()));
      hashes.add(hash);
    }
    const now = Date.now();
    return { v, loadedAt: now, freshUntil: now + (v ? this.#ttlMs : this.#negativeTtlMs) };
  }

  #untrack(entry: Entry, hash: string): void {
    if (!entry.v) return;
    const hashes = this.#byTenant.get(entry.v.tenant.id);
    hashes?.delete(hash);
    if (hashes?.size === 0) this.#byTenant.delete(entry.v.tenant.id);
  }

  /** Synchronous fast path: a fresh entry, or undefined when the store must be asked. */
  peek(hash: string): CachedVerification | null | undefined {
    const entry = this.#lru.get(hash);
    if (entry === undefined) return undefined;
    this.#metrics?.cacheLookups.inc({ result: entry.v ? 'hit' : 'negative' });
    return entry.v;
  }

  /** The verification for `hash`: cached, or loaded once however many requests ask at the same time. */
  async get(hash: string): Promise<CachedVerification | null> {
    const fresh = this.peek(hash);
    if (fresh !== undefined) return fresh;
    this.#metrics?.cacheLookups.inc({ result: 'miss' });
    for (let attempt = 0; attempt <= RETRIES_AFTER_EVICTION; attempt++) {
      let entry: Entry | undefined;
      try {
        entry = await this.#lru.fetch(hash);
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
      const now = Date.now();
      if (entry.freshUntil <= now) {
        if (failure === undefined) continue; // a stale value handed back by an aborted reload
        // Only a positive record, and only within cache.staleIfErrorSeconds, may outlive a store failure.
        if (!entry.v || now - entry.loadedAt > this.#maxAgeMs) throw new StoreUnavailableError(failure);
        this.#metrics?.cacheLookups.inc({ result: 'stale' });
      }
      return entry.v;
    }
    // Evicted on every attempt (a storm of mutations to this key): ask the store directly.
    try {
      return trimmed(await this.#store.lookup(hash));
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
  }

  /** Applies a mutation event from anywhere in the fleet. */
  apply(event: StoreEvent): void {
    this.#metrics?.invalidations.inc();
    if (event.kind === 'key') {
      for (const hash of event.hashes) this.#lru.delete(hash);
      return;
    }
    this.#tenantSeq++;
    for (const hash of [...(this.#byTenant.get(event.tenantId) ?? [])]) this.#lru.delete(hash);
  }

  clear(): void {
    this.#tenantSeq++;
    this.#lru.clear();
    this.#byTenant.clear();
  }

  /**
   * Subscribes to the store's mutation events; a dropped subscription clears everything. `also` runs after
   * the cache has applied an event (live WebSocket sessions re-check their keys there).
   */
  attach(also?: { onEvent(event: StoreEvent): void; onReset(): void }): Promise<void> {
    return this.#store.subscribe(
      (event) => {
        this.apply(event);
        also?.onEvent(event);
      },
      () => {
        this.clear();
        also?.onReset();
      },
    );
  }
}
