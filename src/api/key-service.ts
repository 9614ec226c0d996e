import { randomBytes } from 'node:crypto';
import { StoreUnavailableError } from '../cache/key-cache.ts';
import { grantsKeyManagement, notCovered } from '../auth/permissions.ts';
import type { Config, Plan } from '../config/schema.ts';
import type { Logger } from '../ops/logger.ts';
import { ApiError, type FieldProblem } from '../http/errors.ts';
import type { KeyFormat, KeyType } from '../keys/format.ts';
import type { KeyHasher } from '../keys/hashing.ts';
import { newKeyId, newTenantId } from '../keys/ids.ts';
import { LIMIT_FIELDS, MAX_QUOTA_CHAIN, NO_QUOTA, QUOTA_FIELDS, toApiKey, type ApiKey, type AuthKey, type QuotaSettings, type StoredKey, type Tenant } from '../keys/types.ts';
import type { KeyStore, Page, PageRequest } from '../store/types.ts';
import type { CreateKeyBody, CreateTenantBody, UpdateKeyBody, UpdateTenantBody } from './schemas.ts';
import { cursorSeal, type CursorSeal } from './cursor.ts';
import { excessOf, isEmpty, scopeOfAuthKey, scopeOfStored, type Excess } from './scope.ts';

/** Who asks: the platform (admin token) or a tenant's key (self-service). */
/** The admin: the admin token (`operator` absent) or a named operator (its name is what the audit log shows). */
export type Actor = { kind: 'admin'; operator?: string } | { kind: 'key'; key: AuthKey };

export interface CreatedApiKey extends ApiKey {
  key: string;
  message: string;
}

const CREATED_MESSAGE = 'Store this key securely. It will not be shown again.';
const DAY_MS = 86_400_000;
type PlanLimit = (typeof LIMIT_FIELDS)[number] | (typeof QUOTA_FIELDS)[number] | 'maxConcurrentConnections';

/** What a refused operation on an existing key is audited as (`key.access_denied`). */
type KeyOperation = 'read' | 'update' | 'rotate' | 'revoke';

/** Store reads at most per list request while a filtered page is filled (bounds what one request costs). */
const LIST_READS = 10;

/** Tenants a search reads at most (`GET /admin/v1/tenant-search`): its cost stays bounded with any fleet. */
const SEARCH_SCAN = 20_000;

/** `admin` for the admin token, `operator:<name>` for a named operator, the key id for a key. */
export const actorName = (a: Actor): string => (a.kind === 'admin' ? (a.operator ? `operator:${a.operator}` : 'admin') : a.key.id);
const actorPermissions = (a: Actor): readonly string[] => (a.kind === 'admin' ? ['*'] : a.key.policy.permissions);

function invalid(problems: FieldProblem[]): ApiError {
  return new ApiError('validation_error', problems.map((p) => `${p.path}: ${p.message}`).join('; '), { details: problems });
}

/** Store calls fail as 503 `store_unavailable`, never as a 500. */
async function guarded<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw err instanceof ApiError ? err : new StoreUnavailableError(err);
  }
}

export interface KeyServiceDeps {
  store: KeyStore;
  config: Config;
  format: KeyFormat;
  hash: KeyHasher;
  /** Write-behind lastUsedAt, merged into what reads return. */
  lastUsed?: { lastUsedOf(tenantId: string, keyIds: string[]): Promise<Map<string, string>> };
  /** Where a failure to audit a refusal is reported (the refusal itself is answered regardless). */
  logger?: Pick<Logger, 'warn'>;
  /** Shared by every replica (the admin token): seals the list cursors keys are given (api/cursor.ts). */
  cursorSecret?: string;
}

/**
 * The key lifecycle rules (SPEC §2–3), shared by the self-service API, the admin API and the CLI so that all
 * three enforce the same permissions, plan limits and expiry rules.
 */
export class KeyService {
  readonly #cursors: CursorSeal;
  readonly #store: KeyStore;
  readonly #config: Config;
  readonly #format: KeyFormat;
  readonly #hash: KeyHasher;
  readonly #lastUsed: KeyServiceDeps['lastUsed'];
  readonly #canVerifyCerts: boolean;
  readonly #logger: KeyServiceDeps['logger'];

  constructor(deps: KeyServiceDeps) {
    this.#cursors = cursorSeal(deps.cursorSecret ?? randomBytes(32).toString('hex'));
    this.#store = deps.store;
    this.#config = deps.config;
    this.#format = deps.format;
    this.#hash = deps.hash;
    this.#lastUsed = deps.lastUsed;
    this.#logger = deps.logger;
    this.#canVerifyCerts = Boolean(deps.config.tls.clientCa) || deps.config.tls.trustXfccFrom.length > 0;
  }

  get store(): KeyStore {
    return this.#store;
  }

  planOf(tenant: Tenant): Plan & { name: string } {
    const plan = this.#config.plans[tenant.plan] ?? this.#config.plans[this.#config.defaultPlan]!;
    return { name: tenant.plan, ...plan };
  }

  /** Public views of stored keys, with lastUsedAt filled in from the write-behind record. */
  async #views(tenantId: string, keys: StoredKey[]): Promise<ApiKey[]> {
    const seen = this.#lastUsed && keys.length ? await guarded(this.#lastUsed.lastUsedOf(tenantId, keys.map((k) => k.id))) : new Map<string, string>();
    return keys.map((k) => ({ ...toApiKey(k), lastUsedAt: seen.get(k.id) ?? k.lastUsedAt }));
  }

  #unknownPlan(): ApiError {
    return invalid([{ path: 'plan', message: `unknown plan; one of ${Object.keys(this.#config.plans).join(', ')}` }]);
  }

  async #view(key: StoredKey): Promise<ApiKey> {
    return (await this.#views(key.tenantId, [key]))[0]!;
  }

  // ---- tenants ----------------------------------------------------------------------------------------------

  async createTenant(body: CreateTenantBody, actor: Actor = { kind: 'admin' }): Promise<{ tenant: Tenant; apiKey: CreatedApiKey }> {
    const planName = body.plan ?? this.#config.defaultPlan;
    const plan = this.#config.plans[planName];
    if (!plan) throw this.#unknownPlan();
    const now = new Date().toISOString();
    const tenant: Tenant = {
      id: newTenantId(),
      name: body.name,
      plan: planName,
      maxKeys: body.maxKeys ?? plan.maxKeys,
      status: 'active',
      createdAt: now,
      updatedAt: now,
    };
    await guarded(this.#store.createTenant(tenant, { action: 'tenant.created', actor: actorName(actor), keyId: null, details: { name: tenant.name, plan: planName } }));
    try {
      // The tenant's first key holds `*` and the widest scope the plan allows — its maxima included — so that it
      // can delegate any of it (api/scope.ts).
      const widest = {
        rateLimit: { requestsPerMinute: plan.requestsPerMinute.max, requestsPerDay: plan.requestsPerDay.max },
        quota: { requestsPerMonth: plan.requestsPerMonth.max, sessionMinutesPerMonth: plan.sessionMinutesPerMonth.max },
        maxConcurrentConnections: plan.maxConcurrentConnections.max,
      };
      const apiKey = await this.createKey(tenant.id, { name: 'default', keyType: 'private', permissions: ['*'], transientAssistant: true, ...widest }, actor);
      return { tenant, apiKey };
    } catch (err) {
      // Nothing half-written: a tenant whose first key could not be stored is removed again.
      await this.#store.deleteTenant(tenant.id, actorName(actor)).catch(() => {});
      throw err;
    }
  }

  async getTenant(id: string): Promise<Tenant> {
    const tenant = await guarded(this.#store.getTenant(id));
    if (!tenant) throw new ApiError('not_found', `No tenant ${id}.`);
    return tenant;
  }

  listTenants(page: PageRequest): Promise<Page<Tenant>> {
    return guarded(this.#store.listTenants(page));
  }

  async updateTenant(id: string, body: UpdateTenantBody, actor: Actor = { kind: 'admin' }): Promise<Tenant> {
    if (body.plan !== undefined && !this.#config.plans[body.plan]) {
      throw this.#unknownPlan();
    }
    const fields = Object.keys(body);
    const updated = await guarded(
      this.#store.updateTenant(id, (t) => ({ ...t, ...body, updatedAt: new Date().toISOString() }), {
        action: 'tenant.updated',
        actor: actorName(actor),
        keyId: null,
        details: { fields, ...(body.status ? { status: body.status } : {}) },
      }),
    );
    if (!updated) throw new ApiError('not_found', `No tenant ${id}.`);
    return updated;
  }

  /**
   * The tenant is stopped first: suspended (every key fails `tenant_suspended` on every replica, the change being
   * published like any other), and `stop` closes what else could still be added (its webhook endpoints). Then the
   * keys are revoked and the tenant removed. A tenant already half-deleted (no record) is finished.
   */
  async deleteTenant(id: string, actor: Actor = { kind: 'admin' }, stop: () => Promise<void> = async () => {}): Promise<void> {
    const audit = { action: 'tenant.updated', actor: actorName(actor), keyId: null, details: { fields: ['status'], status: 'suspended', reason: 'deleting' } };
    await guarded(this.#store.updateTenant(id, (t) => (t.status === 'suspended' ? null : { ...t, status: 'suspended', updatedAt: new Date().toISOString() }), audit));
    await stop();
    if (!(await guarded(this.#store.deleteTenant(id, actorName(actor))))) throw new ApiError('not_found', `No tenant ${id}.`);
  }

  /**
   * Tenants whose name or id contains `q` (case-insensitive; every tenant when empty), with their key counts: at
   * most `limit`, found among the first SEARCH_SCAN tenants (`truncated` says the scan stopped there).
   */
  async searchTenants(q: string, limit: number): Promise<{ data: Array<Tenant & { keyCount: number }>; scanned: number; truncated: boolean }> {
    const needle = q.toLowerCase();
    const found: Tenant[] = [];
    let cursor: string | null = null;
    let scanned = 0;
    do {
      const page: Page<Tenant> = await guarded(this.#store.listTenants({ limit: 100, cursor }));
      scanned += page.data.length;
      for (const t of page.data) if (found.length < limit && (t.name.toLowerCase().includes(needle) || t.id.toLowerCase().includes(needle))) found.push(t);
      cursor = page.nextCursor;
    } while (cursor && found.length < limit && scanned < SEARCH_SCAN);
    const counts = await guarded(Promise.all(found.map((t) => this.#store.countKeys(t.id))));
    return { data: found.map((t, i) => ({ ...t, keyCount: counts[i]! })), scanned, truncated: cursor !== null && found.length < limit };
  }

  async tenantSummary(tenantId: string) {
    const tenant = await this.getTenant(tenantId);
    return { tenant, plan: this.planOf(tenant), keyCount: await guarded(this.#store.countKeys(tenantId)) };
  }

  // ---- keys -------------------------------------------------------------------------------------------------

  async createKey(tenantId: string, body: CreateKeyBody, actor: Actor): Promise<CreatedApiKey> {
    const tenant = await this.getTenant(tenantId);
    const plan = this.planOf(tenant);
    const problems: FieldProblem[] = [];
    // A key delegates at most what it has (SPEC §3, api/scope.ts): what the body leaves out is the creator's —
    // permissions, origins, assistants, mTLS binding — and a plan default or expiry looser than the creator's
    // gives way to the creator's.
    const creator = actor.kind === 'key' ? scopeOfAuthKey(actor.key) : null;
    const keyType: KeyType = body.keyType ?? 'private';
    const permissions = body.permissions ?? [...actorPermissions(actor)];
    this.#checkPermissions(keyType, permissions, actorPermissions(actor), problems);
    const capped = (value: number | null | undefined, chosen: number | null, mine: number | null | undefined): number | null =>
      value === undefined && mine != null && (chosen === null || chosen > mine) ? mine : chosen;
    const rateLimit = { requestsPerMinute: null as number | null, requestsPerDay: null as number | null };
    for (const f of LIMIT_FIELDS) {
      const value = body.rateLimit?.[f];
      rateLimit[f] = capped(value, this.#withinPlan(plan, f, value, `rateLimit.${f}`, problems), creator?.rateLimit[f]);
    }
    const quota: QuotaSettings = { ...NO_QUOTA };
    for (const f of QUOTA_FIELDS) quota[f] = capped(body.quota?.[f], this.#withinPlan(plan, f, body.quota?.[f], `quota.${f}`, problems), creator?.quota[f]);
    const connections = body.maxConcurrentConnections;
    const maxConcurrentConnections = capped(connections, this.#withinPlan(plan, 'maxConcurrentConnections', connections, 'maxConcurrentConnections', problems), creator?.maxConcurrentConnections);
    let expiresAt = this.#expiryOnCreate(body, problems);
    const expiryOmitted = body.expiresAt === undefined && body.expiresInDays === undefined;
    if (expiryOmitted && creator?.expiresAt != null && (expiresAt === null || Date.parse(expiresAt) > creator.expiresAt)) {
      expiresAt = new Date(creator.expiresAt).toISOString();
    }
    const enforceMtls = body.enforceMtls ?? creator?.enforceMtls ?? false;
    if (body.enforceMtls) this.#checkMtls(problems);
    if (problems.length) throw invalid(problems);
    const inherited = <T>(own: readonly T[] | null | undefined): T[] | null => (own ? [...own] : null);

    const raw = this.#format.generate(keyType);
    const now = new Date().toISOString();
    const key: StoredKey = {
      id: newKeyId(),
      tenantId,
      name: body.name ?? null,
      keyType,
      prefix: this.#format.visiblePrefix(raw),
      permissions,
      allowedOrigins: body.allowedOrigins ?? inherited(creator?.allowedOrigins),
      allowedAssistants: body.allowedAssistants ?? inherited(creator?.allowedAssistants),
      transientAssistant: body.transientAssistant ?? false,
      rateLimit,
      quota,
      maxConcurrentConnections,
      enforceMtls,
      clientCertFingerprints: body.clientCertFingerprints ?? (enforceMtls && creator?.enforceMtls ? inherited(creator.clientCertFingerprints) : null),
      metadata: body.metadata ?? {},
      isActive: true,
      createdAt: now,
      updatedAt: now,
      expiresAt,
      lastUsedAt: null,
      createdBy: actorName(actor),
      hashes: [{ hash: this.#hash(raw), expiresAt: null }],
    };
    // The creator chain whose quotas the new key's use counts against too (keys/types.ts, QuotaOwner).
    if (actor.kind === 'key') {
      const { quota: own, quotaChain: above } = actor.key.policy;
      const chain = own.requestsPerMonth !== null || own.sessionMinutesPerMonth !== null ? [...above, { keyId: actor.key.id, ...own }] : [...above];
      if (chain.length > MAX_QUOTA_CHAIN) {
        throw new ApiError('key_limit_reached', `This key is the end of a chain of ${MAX_QUOTA_CHAIN} creators with quotas: it cannot create keys.`);
      }
      if (chain.length) key.quotaChain = chain;
    }
    const wider = creator ? excessOf(creator, scopeOfStored(key)).restrictions : [];
    if (wider.length) throw new ApiError('insufficient_permissions', `A key cannot create a key wider than itself: ${wider.join(', ')}.`);
    const result = await guarded(
      this.#store.createKey(key, { action: 'key.created', actor: actorName(actor), keyId: key.id, details: { name: key.name, keyType, permissions } }),
    );
    if (result === 'no_tenant') throw new ApiError('not_found', `No tenant ${tenantId}.`);
    if (result === 'limit') throw new ApiError('key_limit_reached', `The tenant already holds its maximum of ${tenant.maxKeys} keys.`);
    return { ...toApiKey(key), key: raw, message: CREATED_MESSAGE };
  }

  /**
   * The tenant's keys that `actor` has authority over: a narrow key never sees a wider key's metadata (SPEC §3).
   * Filtering can leave a page short, so up to LIST_READS store pages are read to fill it; a page may still hold
   * fewer than `limit` keys while `nextCursor` is not null. A key's cursors are sealed (api/cursor.ts): the key
   * a page stops at may be one it cannot see.
   */
  async listKeys(tenantId: string, page: PageRequest, actor: Actor): Promise<Page<ApiKey>> {
    await this.getTenant(tenantId);
    const sealed = actor.kind === 'key';
    const shown: StoredKey[] = [];
    let cursor = sealed && page.cursor !== null ? this.#cursors.open(page.cursor) : page.cursor;
    if (cursor === null && page.cursor !== null) throw invalid([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    let more = true;
    for (let reads = 0; more && shown.length < page.limit && reads < LIST_READS; reads++) {
      const batch = await guarded(this.#store.listKeys(tenantId, { limit: page.limit, cursor }));
      let i = 0;
      for (; i < batch.data.length && shown.length < page.limit; i++) {
        const key = batch.data[i]!;
        cursor = key.id;
        if (isEmpty(this.#authorityOver(actor, key))) shown.push(key);
      }
      more = i < batch.data.length || batch.nextCursor !== null;
      if (i === batch.data.length) cursor = batch.nextCursor ?? cursor;
    }
    const next = more ? cursor : null;
    return { data: await this.#views(tenantId, shown), nextCursor: next !== null && sealed ? this.#cursors.seal(next) : next };
  }

  async #stored(tenantId: string, keyId: string): Promise<StoredKey> {
    const key = await guarded(this.#store.getKey(tenantId, keyId));
    if (!key) throw new ApiError('not_found', `No API key ${keyId}.`);
    return key;
  }

  /**
   * The one rule of authority over keys (SPEC §3): what the target may do that `actor` may not (api/scope.ts) —
   * nothing when it may read, change, rotate, disable or revoke the target. The admin covers every key; a key
   * always covers itself; otherwise the actor must hold every permission of the target and be bound by no
   * restriction the target is free of, as on creation.
   */
  #authorityOver(actor: Actor, target: StoredKey): Excess {
    if (actor.kind === 'admin' || actor.key.id === target.id) return { permissions: [], restrictions: [] };
    return excessOf(scopeOfAuthKey(actor.key), scopeOfStored(target));
  }

  /**
   * The tenant's key `keyId`, when `actor` has authority over it. Another tenant's key is 404 like a missing one
   * (the lookup is tenant-scoped); a wider key of the same tenant is 403, written to the tenant's audit log.
   */
  async #addressed(tenantId: string, keyId: string, actor: Actor, operation: KeyOperation): Promise<StoredKey> {
    const key = await this.#stored(tenantId, keyId);
    const excess = this.#authorityOver(actor, key);
    if (!isEmpty(excess)) await this.#refuse(tenantId, actor, key.id, operation, excess);
    return key;
  }

  /** Audits the refusal (best effort: a failed write is logged, and the 403 answered all the same), then throws. */
  async #refuse(tenantId: string, actor: Actor, keyId: string, operation: KeyOperation, excess: Excess): Promise<never> {
    const details = { operation, permissionsMissing: excess.permissions, ...(excess.restrictions.length ? { restrictionsLooser: excess.restrictions } : {}) };
    const audit = { action: 'key.access_denied', actor: actorName(actor), keyId, details };
    try {
      await this.#store.appendRefusal(tenantId, audit, `${audit.actor}|${keyId}|${operation}`);
    } catch (err) {
      this.#logger?.warn({ err, tenantId, keyId, operation }, 'could not write the audit entry of a refused key operation');
    }
    // The message names no permission: the caller may not read the target, so it learns nothing of it here.
    throw new ApiError('insufficient_permissions', 'This API key does not hold every permission of the key it addresses.');
  }

  /**
   * Reading about a key (its usage) is reading the key: refused like `getKey` when it is wider than the actor.
   * A key that no longer exists has no permissions to compare; what is left of it (usage counters) stays readable.
   */
  async assertReadable(tenantId: string, keyId: string, actor: Actor): Promise<void> {
    const key = await guarded(this.#store.getKey(tenantId, keyId));
    const excess = key ? this.#authorityOver(actor, key) : null;
    if (excess && !isEmpty(excess)) await this.#refuse(tenantId, actor, keyId, 'read', excess);
  }

  async getKey(tenantId: string, keyId: string, actor: Actor): Promise<ApiKey> {
    return this.#view(await this.#addressed(tenantId, keyId, actor, 'read'));
  }

  async updateKey(tenantId: string, keyId: string, body: UpdateKeyBody, actor: Actor): Promise<ApiKey> {
    const current = await this.#addressed(tenantId, keyId, actor, 'update');
    const plan = this.planOf(await this.getTenant(tenantId));
    const problems: FieldProblem[] = [];
    if (body.permissions) {
      // Narrow only: the new set must be covered by what the key has now (which the caller covers, above).
      const widened = notCovered(current.permissions, body.permissions);
      // Narrowed, they are covered by the caller too; a widening is a 400 whoever asks.
      if (widened.length) problems.push({ path: 'permissions', message: `can only be narrowed; not held by the key: ${widened.join(', ')}` });
      else this.#checkPermissions(current.keyType, body.permissions, actorPermissions(actor), problems);
    }
    const rateLimit = { ...current.rateLimit };
    if (body.rateLimit) {
      for (const f of LIMIT_FIELDS) {
        if (body.rateLimit[f] !== undefined) rateLimit[f] = this.#withinPlan(plan, f, body.rateLimit[f], `rateLimit.${f}`, problems);
      }
    }
    const quota: QuotaSettings = { ...(current.quota ?? NO_QUOTA) };
    if (body.quota) {
      for (const f of QUOTA_FIELDS) {
        if (body.quota[f] !== undefined) quota[f] = this.#withinPlan(plan, f, body.quota[f], `quota.${f}`, problems);
      }
    }
    const maxConcurrentConnections = body.maxConcurrentConnections === undefined
      ? current.maxConcurrentConnections
      : this.#withinPlan(plan, 'maxConcurrentConnections', body.maxConcurrentConnections, 'maxConcurrentConnections', problems);
    if (body.expiresAt !== undefined) this.#checkExpiresAt(body.expiresAt, problems);
    if (body.enforceMtls) this.#checkMtls(problems);
    // A key never makes a key wider than itself (api/scope.ts), so on itself a PATCH only narrows (SPEC §3): it
    // cannot shed its own assistant, origin or mTLS restrictions, nor raise its own limits or quotas. The admin may
    // widen anything within the plan but permissions.
    const widens = (from: StoredKey): string[] => {
      if (actor.kind !== 'key') return [];
      return excessOf(scopeOfAuthKey(actor.key), scopeOfStored({ ...from, ...body, rateLimit, quota, maxConcurrentConnections })).restrictions;
    };
    for (const path of widens(current)) problems.push({ path, message: 'wider than the calling key allows (the admin API may widen it)' });
    if (problems.length) throw invalid(problems);

    const fields = Object.keys(body);
    const updated = await guarded(
      this.#store.updateKey(tenantId, keyId, (k) => {
        // Checked again on the record being replaced: a narrowing that landed since the read above must not be
        // undone by this write (permissions from the older record would widen the newer one).
        if ((body.permissions && notCovered(k.permissions, body.permissions).length) || widens(k).length) {
          throw invalid([{ path: Object.keys(body).join(','), message: 'the key was narrowed meanwhile; read it again' }]);
        }
        return { ...k, ...body, rateLimit, quota, maxConcurrentConnections, updatedAt: new Date().toISOString() };
      }, {
        action: 'key.updated',
        actor: actorName(actor),
        keyId,
        details: { fields },
      }),
    );
    if (!updated) throw new ApiError('not_found', `No API key ${keyId}.`);
    return this.#view(updated);
  }

  async revokeKey(tenantId: string, keyId: string, actor: Actor): Promise<void> {
    if (actor.kind === 'key' && actor.key.id === keyId) {
      throw new ApiError('cannot_revoke_current_key', 'A key cannot revoke itself; use another key or the admin API.');
    }
    await this.#addressed(tenantId, keyId, actor, 'revoke');
    const ok = await guarded(this.#store.revokeKey(tenantId, keyId, { action: 'key.revoked', actor: actorName(actor), keyId, details: {} }));
    if (!ok) throw new ApiError('not_found', `No API key ${keyId}.`);
  }

  async rotateKey(tenantId: string, keyId: string, gracePeriodSeconds: number, actor: Actor): Promise<CreatedApiKey> {
    if (gracePeriodSeconds > this.#config.keys.maxGracePeriodSeconds) {
      throw invalid([{ path: 'gracePeriodSeconds', message: `must be at most ${this.#config.keys.maxGracePeriodSeconds}` }]);
    }
    const current = await this.#addressed(tenantId, keyId, actor, 'rotate');
    const raw = this.#format.generate(current.keyType);
    const rotated = await guarded(
      this.#store.rotateKey(tenantId, keyId, { hash: this.#hash(raw), prefix: this.#format.visiblePrefix(raw) }, gracePeriodSeconds, {
        action: 'key.rotated',
        actor: actorName(actor),
        keyId,
        details: { gracePeriodSeconds },
      }),
    );
    if (!rotated) throw new ApiError('not_found', `No API key ${keyId}.`);
    return { ...(await this.#view(rotated)), key: raw, message: CREATED_MESSAGE };
  }

  listAudit(tenantId: string, page: PageRequest) {
    return guarded(this.#store.listAudit(tenantId, page));
  }

  // ---- rules ------------------------------------------------------------------------------------------------

  #checkPermissions(keyType: KeyType, wanted: string[], granted: readonly string[], problems: FieldProblem[]): void {
    const missing = notCovered(granted, wanted);
    if (missing.length) {
      throw new ApiError('insufficient_permissions', `A key cannot grant permissions it does not hold: ${missing.join(', ')}.`);
    }
    if (keyType === 'public') {
      const management = wanted.filter(grantsKeyManagement);
      if (management.length) {
        problems.push({ path: 'permissions', message: `public keys cannot hold api-keys or webhooks permissions (${management.join(', ')}); list the permissions explicitly` });
      }
    }
  }

  /** A plan limit: omitted → the plan default; null (unlimited) or above the plan maximum → a problem. */
  #withinPlan(plan: Plan, field: PlanLimit, value: number | null | undefined, path: string, problems: FieldProblem[]): number | null {
    const { default: dflt, max } = plan[field];
    if (value === undefined) return dflt;
    if (max !== null && (value === null || value > max)) {
      problems.push({ path, message: `the plan allows at most ${max}` });
      return dflt;
    }
    return value;
  }

  #expiryOnCreate(body: CreateKeyBody, problems: FieldProblem[]): string | null {
    const { allowedExpiryDays, defaultExpiryDays } = this.#config.keys;
    if (body.expiresAt !== undefined && body.expiresInDays !== undefined) {
      problems.push({ path: 'expiresInDays', message: 'give expiresAt or expiresInDays, not both' });
      return null;
    }
    if (body.expiresAt !== undefined) {
      this.#checkExpiresAt(body.expiresAt, problems);
      return new Date(body.expiresAt).toISOString();
    }
    const days = body.expiresInDays === undefined ? defaultExpiryDays : body.expiresInDays;
    if (days === null) {
      if (!this.#config.keys.allowNeverExpire) problems.push({ path: 'expiresInDays', message: 'keys must expire on this deployment' });
      return null;
    }
    if (!allowedExpiryDays.includes(days)) problems.push({ path: 'expiresInDays', message: `must be one of ${allowedExpiryDays.join(', ')}` });
    return new Date(Date.now() + days * DAY_MS).toISOString();
  }

  /** In the future, and — where keys must expire — no later than the longest of `keys.allowedExpiryDays`. */
  #checkExpiresAt(expiresAt: string | null, problems: FieldProblem[]): void {
    const { allowNeverExpire, allowedExpiryDays } = this.#config.keys;
    const longest = Math.max(...allowedExpiryDays);
    if (expiresAt === null) {
      if (!allowNeverExpire) problems.push({ path: 'expiresAt', message: 'keys must expire on this deployment' });
    } else if (Date.parse(expiresAt) <= Date.now()) {
      problems.push({ path: 'expiresAt', message: 'must be in the future' });
    } else if (!allowNeverExpire && Date.parse(expiresAt) > Date.now() + longest * DAY_MS) {
      problems.push({ path: 'expiresAt', message: `must be within ${longest} days` });
    }
  }

  #checkMtls(problems: FieldProblem[]): void {
    if (!this.#canVerifyCerts) {
      problems.push({ path: 'enforceMtls', message: 'keygate has no way to verify client certificates (configure tls.clientCa or tls.trustXfccFrom)' });
    }
  }
}
