import { randomBytes } from 'node:crypto';
import { notCovered } from '../auth/permissions.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../ops/logger.ts';
import { ApiError, type FieldProblem } from '../http/errors.ts';
import type { KeyFormat, KeyType } from '../keys/format.ts';
import type { KeyHasher } from '../keys/hashing.ts';
import { newKeyId } from '../keys/ids.ts';
import { LIMIT_FIELDS, NO_QUOTA, QUOTA_FIELDS, toApiKey, type ApiKey, type QuotaSettings, type StoredKey } from '../keys/types.ts';
import type { AuditInput, KeyStore, Page, PageRequest } from '../store/types.ts';
import type { CreateKeyBody, UpdateKeyBody } from './schemas.ts';
import { cursorSeal, type CursorSeal } from './cursor.ts';
import { excessOf, isEmpty, authorityOfAuthKey, authorityOfStored, type Excess } from './authority.ts';
import {
  actorName, actorPermissions, authorityOver, checkExpiresAt, checkMtls, checkPermissions, CREATED_MESSAGE, expiryOnCreate, invalid, quotaChainOf, withinPlan,
  type Actor, type CreatedApiKey,
} from './key-rules.ts';
import { guarded } from './http.ts';
import { TenantService } from './tenant-service.ts';

/** What a refused operation on an existing key is audited as (`key.access_denied`). */
type KeyOperation = 'read' | 'update' | 'rotate' | 'revoke';

/** Store reads at most per list request while a filtered page is filled (bounds what one request costs). */
const LIST_READS = 10;

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
 * The key lifecycle, shared by the self-service API, the admin API and the CLI so that all three enforce the
 * same permissions, plan limits and expiry rules (api/key-rules.ts); the tenants' side is api/tenant-service.ts.
 */
export class KeyService extends TenantService {
  readonly #cursors: CursorSeal;
  readonly #format: KeyFormat;
  readonly #hash: KeyHasher;
  readonly #lastUsed: KeyServiceDeps['lastUsed'];
  readonly #canVerifyCerts: boolean;
  readonly #logger: KeyServiceDeps['logger'];

  constructor(deps: KeyServiceDeps) {
    super(deps);
    this.#cursors = cursorSeal(deps.cursorSecret ?? randomBytes(32).toString('hex'));
    this.#format = deps.format;
    this.#hash = deps.hash;
    this.#lastUsed = deps.lastUsed;
    this.#logger = deps.logger;
    this.#canVerifyCerts = Boolean(deps.config.tls.clientCa) || deps.config.tls.trustXfccFrom.length > 0;
  }

  /** Public views of stored keys, with lastUsedAt filled in from the write-behind record. */
  async #views(tenantId: string, keys: StoredKey[]): Promise<ApiKey[]> {
    const seen = this.#lastUsed && keys.length ? await guarded(this.#lastUsed.lastUsedOf(tenantId, keys.map((k) => k.id))) : new Map<string, string>();
    return keys.map((k) => ({ ...toApiKey(k), lastUsedAt: seen.get(k.id) ?? k.lastUsedAt }));
  }

  async #view(key: StoredKey): Promise<ApiKey> {
    return (await this.#views(key.tenantId, [key]))[0]!;
  }

  async createKey(tenantId: string, body: CreateKeyBody, actor: Actor): Promise<CreatedApiKey> {
    const tenant = await this.getTenant(tenantId);
    const plan = this.planOf(tenant);
    const problems: FieldProblem[] = [];
    // A key delegates at most what it has (api/authority.ts): what the body leaves out is the creator's —
    // permissions, origins, assistants, mTLS binding — and a plan default or expiry looser than the creator's
    // gives way to the creator's.
    const creator = actor.kind === 'key' ? authorityOfAuthKey(actor.key) : null;
    const keyType: KeyType = body.keyType ?? 'private';
    const permissions = body.permissions ?? [...actorPermissions(actor)];
    checkPermissions(keyType, permissions, actorPermissions(actor), problems);
    const capped = (value: number | null | undefined, chosen: number | null, mine: number | null | undefined): number | null =>
      value === undefined && mine != null && (chosen === null || chosen > mine) ? mine : chosen;
    const rateLimit = { requestsPerMinute: null as number | null, requestsPerDay: null as number | null };
    for (const f of LIMIT_FIELDS) {
      const value = body.rateLimit?.[f];
      rateLimit[f] = capped(value, withinPlan(plan, f, value, `rateLimit.${f}`, problems), creator?.rateLimit[f]);
    }
    const quota: QuotaSettings = { ...NO_QUOTA };
    for (const f of QUOTA_FIELDS) quota[f] = capped(body.quota?.[f], withinPlan(plan, f, body.quota?.[f], `quota.${f}`, problems), creator?.quota[f]);
    const connections = body.maxConcurrentConnections;
    const maxConcurrentConnections = capped(connections, withinPlan(plan, 'maxConcurrentConnections', connections, 'maxConcurrentConnections', problems), creator?.maxConcurrentConnections);
    let expiresAt = expiryOnCreate(this.config.keys, body, problems);
    const expiryOmitted = body.expiresAt === undefined && body.expiresInDays === undefined;
    if (expiryOmitted && creator?.expiresAt != null && (expiresAt === null || Date.parse(expiresAt) > creator.expiresAt)) {
      expiresAt = new Date(creator.expiresAt).toISOString();
    }
    const enforceMtls = body.enforceMtls ?? creator?.enforceMtls ?? false;
    if (body.enforceMtls) checkMtls(this.#canVerifyCerts, problems);
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
    const chain = quotaChainOf(actor);
    if (chain.length) key.quotaChain = chain;
    const wider = creator ? excessOf(creator, authorityOfStored(key)).restrictions : [];
    if (wider.length) throw new ApiError('insufficient_permissions', `A key cannot create a key wider than itself: ${wider.join(', ')}.`);
    const result = await guarded(
      this.keyStore.createKey(key, { action: 'key.created', actor: actorName(actor), keyId: key.id, details: { name: key.name, keyType, permissions } }),
    );
    if (result === 'no_tenant') throw new ApiError('not_found', `No tenant ${tenantId}.`);
    if (result === 'limit') throw new ApiError('key_limit_reached', `The tenant already holds its maximum of ${tenant.maxKeys} keys.`);
    return { ...toApiKey(key), key: raw, message: CREATED_MESSAGE };
  }

  /**
   * The tenant's keys that `actor` has authority over: a narrow key never sees a wider key's metadata.
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
      const batch = await guarded(this.keyStore.listKeys(tenantId, { limit: page.limit, cursor }));
      let i = 0;
      for (; i < batch.data.length && shown.length < page.limit; i++) {
        const key = batch.data[i]!;
        cursor = key.id;
        if (isEmpty(authorityOver(actor, key))) shown.push(key);
      }
      more = i < batch.data.length || batch.nextCursor !== null;
      if (i === batch.data.length) cursor = batch.nextCursor ?? cursor;
    }
    const next = more ? cursor : null;
    return { data: await this.#views(tenantId, shown), nextCursor: next !== null && sealed ? this.#cursors.seal(next) : next };
  }

  async #stored(tenantId: string, keyId: string): Promise<StoredKey> {
    const key = await guarded(this.keyStore.getKey(tenantId, keyId));
    if (!key) throw new ApiError('not_found', `No API key ${keyId}.`);
    return key;
  }



  /**
   * The tenant's key `keyId`, when `actor` has authority over it. Another tenant's key is 404 like a missing one
   * (the lookup is tenant-scoped); a wider key of the same tenant is 403, written to the tenant's audit log.
   */
  async #addressed(tenantId: string, keyId: string, actor: Actor, operation: KeyOperation): Promise<StoredKey> {
    const key = await this.#stored(tenantId, keyId);
    const excess = authorityOver(actor, key);
    if (!isEmpty(excess)) await this.#refuse(tenantId, actor, key.id, operation, excess);
    return key;
  }

  /** Audits the refusal (best effort: a failed write is logged, and the 403 answered all the same), then throws. */
  async #refuse(tenantId: string, actor: Actor, keyId: string, operation: KeyOperation, excess: Excess): Promise<never> {
    const details = { operation, permissionsMissing: excess.permissions, ...(excess.restrictions.length ? { restrictionsLooser: excess.restrictions } : {}) };
    const audit = { action: 'key.access_denied', actor: actorName(actor), keyId, details };
    try {
      await this.keyStore.appendRefusal(tenantId, audit, `${audit.actor}|${keyId}|${operation}`);
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
    const key = await guarded(this.keyStore.getKey(tenantId, keyId));
    const excess = key ? authorityOver(actor, key) : null;
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
      else checkPermissions(current.keyType, body.permissions, actorPermissions(actor), problems);
    }
    const rateLimit = { ...current.rateLimit };
    if (body.rateLimit) {
      for (const f of LIMIT_FIELDS) {
        if (body.rateLimit[f] !== undefined) rateLimit[f] = withinPlan(plan, f, body.rateLimit[f], `rateLimit.${f}`, problems);
      }
    }
    const quota: QuotaSettings = { ...(current.quota ?? NO_QUOTA) };
    if (body.quota) {
      for (const f of QUOTA_FIELDS) {
        if (body.quota[f] !== undefined) quota[f] = withinPlan(plan, f, body.quota[f], `quota.${f}`, problems);
      }
    }
    const maxConcurrentConnections = body.maxConcurrentConnections === undefined
      ? current.maxConcurrentConnections
      : withinPlan(plan, 'maxConcurrentConnections', body.maxConcurrentConnections, 'maxConcurrentConnections', problems);
    if (body.expiresAt !== undefined) checkExpiresAt(this.config.keys, body.expiresAt, problems);
    if (body.enforceMtls) checkMtls(this.#canVerifyCerts, problems);
    // A key never makes a key wider than itself (api/authority.ts), so on itself a PATCH only narrows: it
    // cannot shed its own assistant, origin or mTLS restrictions, nor raise its own limits or quotas. The admin may
    // widen anything within the plan but permissions.
    const widens = (from: StoredKey): string[] => {
      if (actor.kind !== 'key') return [];
      return excessOf(authorityOfAuthKey(actor.key), authorityOfStored({ ...from, ...body, rateLimit, quota, maxConcurrentConnections })).restrictions;
    };
    for (const path of widens(current)) problems.push({ path, message: 'wider than the calling key allows (the admin API may widen it)' });
    if (problems.length) throw invalid(problems);

    const fields = Object.keys(body);
    const updated = await guarded(
      this.keyStore.updateKey(tenantId, keyId, (k) => {
        // Checked again on the record being replaced: a narrowing that landed since the read above must not be
        // undone by this write (permissions from the older record would widen the newer one).
        if ((body.permissions && notCovered(k.permissions, body.permissions).length) || widens(k).length) {
          throw invalid([{ path: Object.keys(body).join(','), message: 'the key was narrowed meanwhile; read it again' }]);
        }
        const now = Date.now();
        // Disabling kills the key's session tokens for good: enabling it again does not revive them. Rounded up
        // to the next second, the resolution of a token's issue time.
        const tokensNotBefore = body.isActive === false && k.isActive ? new Date(Math.ceil(now / 1000) * 1000).toISOString() : (k.tokensNotBefore ?? null);
        return { ...k, ...body, rateLimit, quota, maxConcurrentConnections, tokensNotBefore, updatedAt: new Date(now).toISOString() };
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
    const ok = await guarded(this.keyStore.revokeKey(tenantId, keyId, { action: 'key.revoked', actor: actorName(actor), keyId, details: {} }));
    if (!ok) throw new ApiError('not_found', `No API key ${keyId}.`);
  }

  async rotateKey(tenantId: string, keyId: string, gracePeriodSeconds: number, actor: Actor): Promise<CreatedApiKey> {
    if (gracePeriodSeconds > this.config.keys.maxGracePeriodSeconds) {
      throw invalid([{ path: 'gracePeriodSeconds', message: `must be at most ${this.config.keys.maxGracePeriodSeconds}` }]);
    }
    const current = await this.#addressed(tenantId, keyId, actor, 'rotate');
    const raw = this.#format.generate(current.keyType);
    const rotated = await guarded(
      this.keyStore.rotateKey(tenantId, keyId, { hash: this.#hash(raw), prefix: this.#format.visiblePrefix(raw) }, gracePeriodSeconds, {
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
    return guarded(this.keyStore.listAudit(tenantId, page));
  }

  listPlatformAudit(page: PageRequest) {
    return guarded(this.keyStore.listPlatformAudit(page));
  }

  /**
   * The audit line of a write kept outside this store (a webhook endpoint's): the tenant's log, or the platform's
   * for null. Written once the write is done; a failure to write it is logged, and the write answered all the same.
   */
  async audit(tenantId: string | null, audit: AuditInput): Promise<void> {
    try {
      if (tenantId === null) await this.keyStore.appendPlatformAudit(audit);
      else await this.keyStore.appendAudit(tenantId, audit);
    } catch (err) {
      this.#logger?.warn({ err, tenantId, audit }, 'could not write an audit entry');
    }
  }
}
