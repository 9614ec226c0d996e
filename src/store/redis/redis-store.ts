import type { AuditEntry, StoredKey, Tenant } from '../../keys/types.ts';
import type { AuditInput, CreateKeyResult, KeyStore, NewSecret, Page, PageRequest, RefreshRef, StoreEvent, Updater, RefusalCounts, UsageBatch, UsageCounts, Verification } from '../types.ts';
import type { RedisOutboxPort } from '../outbox.ts';
import type { DueExpiry } from '../expiry.ts';
import { defineScripts, scriptRunner } from './command.ts';
import { closeRedisClient, type RedisClient } from './connect.ts';
import { RedisEvents } from './events.ts';
import { RedisExpiryIndex } from './expiry-index.ts';
import { RedisKeys } from './keys.ts';
import { redisKeyspace } from './keyspace.ts';
import { RedisLookups } from './lookup.ts';
import { RedisUsage } from './usage.ts';

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
 * The KeyStore on Redis (standalone, Sentinel or Cluster), composed of its parts: the key names (keyspace.ts),
 * tenants, keys and audit logs (keys.ts), the hot-path reads (lookup.ts), usage counters (usage.ts) and the
 * events a mutation sends (events.ts).
 */
export class RedisStore implements KeyStore {
  readonly kind = 'redis' as const;
  readonly #r: RedisClient;
  readonly #sub: RedisClient;
  readonly #events: RedisEvents;
  readonly #keys: RedisKeys;
  readonly #lookups: RedisLookups;
  readonly #usage: RedisUsage;

  constructor(opts: RedisStoreOptions) {
    this.#r = opts.client;
    this.#sub = opts.subscriber;
    const keyspace = redisKeyspace(opts.prefix);
    const run = scriptRunner(this.#r);
    this.#events = new RedisEvents(this.#sub, opts.channel, opts.outbox ?? null, keyspace.audit);
    const expiry = new RedisExpiryIndex(this.#r, opts.prefix, keyspace.key);
    defineScripts(this.#r);
    this.#keys = new RedisKeys({ client: this.#r, keyspace, run, events: this.#events, expiry, auditMaxEntries: opts.auditMaxEntries, refusalWindowSeconds: opts.refusalWindowSeconds });
    this.#lookups = new RedisLookups(this.#r, keyspace);
    this.#usage = new RedisUsage(this.#r, keyspace, run);
  }

  createTenant(tenant: Tenant, audit: AuditInput): Promise<void> {
    return this.#keys.createTenant(tenant, audit);
  }

  getTenant(id: string): Promise<Tenant | null> {
    return this.#keys.getTenant(id);
  }

  listTenants(page: PageRequest): Promise<Page<Tenant>> {
    return this.#keys.listTenants(page);
  }

  updateTenant(id: string, update: Updater<Tenant>, audit: AuditInput): Promise<Tenant | null> {
    return this.#keys.updateTenant(id, update, audit);
  }

  deleteTenant(id: string, actor: string): Promise<boolean> {
    return this.#keys.deleteTenant(id, actor);
  }

  createKey(key: StoredKey, audit: AuditInput): Promise<CreateKeyResult> {
    return this.#keys.createKey(key, audit);
  }

  getKey(tenantId: string, keyId: string): Promise<StoredKey | null> {
    return this.#keys.getKey(tenantId, keyId);
  }

  listKeys(tenantId: string, page: PageRequest): Promise<Page<StoredKey>> {
    return this.#keys.listKeys(tenantId, page);
  }

  countKeys(tenantId: string): Promise<number> {
    return this.#keys.countKeys(tenantId);
  }

  updateKey(tenantId: string, keyId: string, update: Updater<StoredKey>, audit: AuditInput): Promise<StoredKey | null> {
    return this.#keys.updateKey(tenantId, keyId, update, audit);
  }

  revokeKey(tenantId: string, keyId: string, audit: AuditInput | null): Promise<boolean> {
    return this.#keys.revokeKey(tenantId, keyId, audit);
  }

  rotateKey(tenantId: string, keyId: string, secret: NewSecret, graceSeconds: number, audit: AuditInput): Promise<StoredKey | null> {
    return this.#keys.rotateKey(tenantId, keyId, secret, graceSeconds, audit);
  }

  dueExpiries(tenantIds: string[], now: number, limit: number): Promise<DueExpiry[]> {
    return this.#keys.dueExpiries(tenantIds, now, limit);
  }

  rescheduleExpiry(tenantId: string, keyId: string, expiresAt: string | null, dueAt: number | null): Promise<void> {
    return this.#keys.rescheduleExpiry(tenantId, keyId, expiresAt, dueAt);
  }

  indexExpiry(key: StoredKey): Promise<void> {
    return this.#keys.indexExpiry(key);
  }

  expiryIndexBuilt(): Promise<boolean> {
    return this.#keys.expiryIndexBuilt();
  }

  markExpiryIndexBuilt(): Promise<void> {
    return this.#keys.markExpiryIndexBuilt();
  }

  lookup(hash: string): Promise<Verification | null> {
    return this.#lookups.lookup(hash);
  }

  refresh(refs: RefreshRef[]): Promise<Array<Verification | null>> {
    return this.#lookups.refresh(refs);
  }

  appendAudit(tenantId: string, audit: AuditInput): Promise<boolean> {
    return this.#keys.appendAudit(tenantId, audit);
  }

  appendRefusal(tenantId: string, audit: AuditInput, group: string): Promise<boolean> {
    return this.#keys.appendRefusal(tenantId, audit, group);
  }

  appendPlatformAudit(audit: AuditInput): Promise<void> {
    return this.#keys.appendPlatformAudit(audit);
  }

  listPlatformAudit(page: PageRequest): Promise<Page<AuditEntry>> {
    return this.#keys.listAudit('platform', page);
  }

  listAudit(tenantId: string, page: PageRequest): Promise<Page<AuditEntry>> {
    return this.#keys.listAudit(tenantId, page);
  }

  addUsage(batch: UsageBatch): Promise<void> {
    return this.#usage.addUsage(batch);
  }

  readUsage(tenantId: string, periods: string[], keyId: string | null): Promise<Map<string, UsageCounts>> {
    return this.#usage.readUsage(tenantId, periods, keyId);
  }

  readRefusals(tenantId: string, periods: string[], codes: readonly string[]): Promise<Map<string, RefusalCounts>> {
    return this.#usage.readRefusals(tenantId, periods, codes);
  }

  readKeysUsage(tenantId: string, period: string, keyIds: string[]): Promise<Map<string, UsageCounts>> {
    return this.#usage.readKeysUsage(tenantId, period, keyIds);
  }

  readTotals(period: string): Promise<UsageCounts> {
    return this.#usage.readTotals(period);
  }

  touchKeys(lastUsed: Array<{ tenantId: string; keyId: string; at: string }>): Promise<void> {
    return this.#usage.touchKeys(lastUsed);
  }

  lastUsed(tenantId: string, keyIds: string[]): Promise<Map<string, string>> {
    return this.#usage.lastUsed(tenantId, keyIds);
  }

  subscribe(onEvent: (event: StoreEvent) => void, onReset: () => void): Promise<void> {
    return this.#events.subscribe(onEvent, onReset);
  }

  async ping(): Promise<number> {
    const start = performance.now();
    await this.#r.ping();
    return performance.now() - start;
  }

  async close(): Promise<void> {
    this.#events.close();
    await Promise.allSettled([closeRedisClient(this.#r), closeRedisClient(this.#sub)]);
  }
}
