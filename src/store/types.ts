import type { AuditEntry, StoredKey, Tenant } from '../keys/types.ts';
import type { ExpiryIndex } from './expiry.ts';

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface PageRequest {
  limit: number;
  cursor: string | null;
}

/** One audit-log line, written atomically with the mutation it describes. */
export type AuditInput = Omit<AuditEntry, 'id' | 'at'>;

/** How long usage counters are kept (Redis: the usage hashes' TTL, renewed by each flush; memory: rows older are dropped). */
export const USAGE_RETENTION_DAYS = 400;

/** How long repeated refusals of one actor, key and operation collapse into one audit entry (`audit.refusalWindowSeconds`). */
export const DEFAULT_REFUSAL_WINDOW_SECONDS = 3600;

/** What deleting a tenant records for each of its keys (the audit log goes with the tenant; the event stays). */
export const tenantDeletedRevocation = (keyId: string, actor: string): AuditInput => ({ action: 'key.revoked', actor, keyId, details: { reason: 'tenant_deleted' } });

/** Published after every mutation so that every replica evicts what it cached. */
export type StoreEvent =
  | { kind: 'key'; tenantId: string; keyId: string; hashes: string[] }
  | { kind: 'tenant'; tenantId: string };

/** What a key lookup resolves to: the key, its tenant, and when the presented hash stops verifying. */
export interface Verification<K = StoredKey> {
  key: K;
  tenant: Tenant;
  hashExpiresAt: number | null;
}

/** A hash the key cache holds, and where it pointed when it was read (KeyStore.refresh). */
export interface RefreshRef {
  hash: string;
  tenantId: string;
  keyId: string;
}

/** The replacement value of a rotated key: its hash and its visible prefix. */
export interface NewSecret {
  hash: string;
  prefix: string;
}

export type CreateKeyResult = 'created' | 'limit' | 'no_tenant';

/** A pure change to a record; returning null leaves it untouched. */
export type Updater<T> = (current: T) => T | null;

/**
 * Where tenants, keys and audit logs live. Implemented by Redis (production) and memory (trying keygate
 * out); one contract suite (test/contract) runs against both. Methods throw only on infrastructure failure.
 */
export interface KeyStore extends UsageStore, ExpiryIndex {
  readonly kind: 'redis' | 'memory';

  createTenant(tenant: Tenant, audit: AuditInput): Promise<void>;
  getTenant(id: string): Promise<Tenant | null>;
  listTenants(page: PageRequest): Promise<Page<Tenant>>;
  updateTenant(id: string, update: Updater<Tenant>, audit: AuditInput): Promise<Tenant | null>;
  /**
   * Revokes every key (verification records first; each a `key.revoked` webhook event by `actor`), then removes
   * the tenant and its audit log.
   */
  deleteTenant(id: string, actor: string): Promise<boolean>;

  /** Atomic: creates the key only while the tenant holds fewer than its `maxKeys`. */
  createKey(key: StoredKey, audit: AuditInput): Promise<CreateKeyResult>;
  getKey(tenantId: string, keyId: string): Promise<StoredKey | null>;
  listKeys(tenantId: string, page: PageRequest): Promise<Page<StoredKey>>;
  countKeys(tenantId: string): Promise<number>;
  updateKey(tenantId: string, keyId: string, update: Updater<StoredKey>, audit: AuditInput): Promise<StoredKey | null>;
  /** Removes the verification records before anything else, so a crash never leaves a dead key usable. */
  revokeKey(tenantId: string, keyId: string, audit: AuditInput): Promise<boolean>;
  /** New value verifies at once; the old one stops now, or after `graceSeconds`. */
  rotateKey(tenantId: string, keyId: string, secret: NewSecret, graceSeconds: number, audit: AuditInput): Promise<StoredKey | null>;

  lookup(hash: string): Promise<Verification | null>;
  /**
   * `lookup` again for hashes already found (the key cache's background refresh), in few commands: each answer
   * is what `lookup` would answer now, or null when the hash no longer points at `keyId` of `tenantId`. Redis:
   * one MGET of the verification records (one GET each on Cluster, where each has its own slot) and one MGET
   * per tenant of its key records and its tenant record.
   */
  refresh(refs: RefreshRef[]): Promise<Array<Verification | null>>;
  /** An audit line with no mutation beside it; false, and nothing written, without the tenant. */
  appendAudit(tenantId: string, audit: AuditInput): Promise<boolean>;
  /**
   * A refused operation, collapsed so that refusals cannot flush the capped audit log: one entry per `group`
   * (actor, key, operation) and refusal window, replaced by each repeat with its `details.count` and
   * `details.firstAt` (the first refusal of the window). False, and nothing written, without the tenant.
   */
  appendRefusal(tenantId: string, audit: AuditInput, group: string): Promise<boolean>;
  listAudit(tenantId: string, page: PageRequest): Promise<Page<AuditEntry>>;
  /**
   * The platform's own audit log: writes that belong to no tenant (the platform's webhook endpoints), capped at
   * `audit.maxEntries` like a tenant's.
   */
  appendPlatformAudit(audit: AuditInput): Promise<void>;
  listPlatformAudit(page: PageRequest): Promise<Page<AuditEntry>>;

  /**
   * `onEvent` per mutation anywhere in the fleet — this process's own mutations before they resolve (
   * the replica answering a revoke has already evicted the key); `onReset` when events may have been missed.
   */
  subscribe(onEvent: (event: StoreEvent) => void, onReset: () => void): Promise<void>;
  /** Round-trip latency in ms; throws when the store is unreachable. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

/** Request outcomes counted per key and tenant. */
export type UsageOutcome = 'allowed' | 'denied' | 'rateLimited';
/** Everything counted per key, tenant and period: request outcomes, WebSocket sessions opened, and their time (ms). */
export const USAGE_FIELDS = ['allowed', 'denied', 'rateLimited', 'sessions', 'sessionMs'] as const;
export type UsageField = (typeof USAGE_FIELDS)[number];
export type UsageCounts = Record<UsageField, number>;
export const zeroCounts = (): UsageCounts => ({ allowed: 0, denied: 0, rateLimited: 0, sessions: 0, sessionMs: 0 });

/**
 * Refusals of a tenant's keys by error code, the nonzero ones only. The codes are keygate's documented error
 * codes (http/errors.ts), a fixed set, so each period holds at most that many per tenant.
 */
export type RefusalCounts = Record<string, number>;

/** One batched increment: `period` is an hour (YYYY-MM-DDTHH), a day (YYYY-MM-DD) or a month (YYYY-MM). */
export interface UsageDelta {
  tenantId: string;
  keyId: string;
  period: string;
  counts: UsageCounts;
  /** The refusals among `counts.denied` and `counts.rateLimited`, by code; counted per tenant (not per key). */
  refused?: RefusalCounts;
}

/**
 * One flush of usage counts. A writer (one per process) sends its batches in `seq` order, each again until it
 * is stored, and the store counts a batch once however often it arrives: a flush that failed half-way, or that
 * timed out after Redis had applied it, is retried without counting anything twice.
 */
export interface UsageBatch {
  writer: string;
  seq: number;
  deltas: UsageDelta[];
}

/** Usage counters and lastUsedAt, written in batches (never one store write per request). */
export interface UsageStore {
  addUsage(batch: UsageBatch): Promise<void>;
  /** Counts per period for the tenant (keyId null) or one key. */
  readUsage(tenantId: string, periods: string[], keyId: string | null): Promise<Map<string, UsageCounts>>;
  /** The tenant's refusals per period by code, read for `codes` (the nonzero ones in each map). */
  readRefusals(tenantId: string, periods: string[], codes: readonly string[]): Promise<Map<string, RefusalCounts>>;
  /** Fleet-wide totals for one period. */
  readTotals(period: string): Promise<UsageCounts>;
  /** Counts of each of `keyIds` (at most 100) in one period, in one read. */
  readKeysUsage(tenantId: string, period: string, keyIds: string[]): Promise<Map<string, UsageCounts>>;
  touchKeys(lastUsed: Array<{ tenantId: string; keyId: string; at: string }>): Promise<void>;
  lastUsed(tenantId: string, keyIds: string[]): Promise<Map<string, string>>;
}
