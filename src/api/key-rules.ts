import { grantsKeyManagement, notCovered } from '../auth/permissions.ts';
import type { Config, Plan } from '../config/schema.ts';
import { ApiError, type FieldProblem } from '../http/errors.ts';
import type { KeyType } from '../keys/format.ts';
import { MAX_QUOTA_CHAIN, type ApiKey, type AuthKey, type LIMIT_FIELDS, type QuotaOwner, type QUOTA_FIELDS, type StoredKey, type Tenant } from '../keys/types.ts';
import type { CreateKeyBody } from './schemas.ts';
import { excessOf, authorityOfAuthKey, authorityOfStored, type Excess } from './authority.ts';

// The rules a key's creation, change and rotation obey, with no I/O: who asks, what it may grant, the plan's
// limits, the expiry rules and the authority one key has over another. The services (api/tenant-service.ts,
// api/key-service.ts) read and write the store around them.

/** The admin: the admin token (`operator` absent) or a named operator (its name is what the audit log shows). */
export type Actor = { kind: 'admin'; operator?: string } | { kind: 'key'; key: AuthKey };

export interface CreatedApiKey extends ApiKey {
  key: string;
  message: string;
}

export const CREATED_MESSAGE = 'Store this key securely. It will not be shown again.';
const DAY_MS = 86_400_000;
type PlanLimit = (typeof LIMIT_FIELDS)[number] | (typeof QUOTA_FIELDS)[number] | 'maxConcurrentConnections';

/** `admin` for the admin token, `operator:<name>` for a named operator, the key id for a key. */
export const actorName = (a: Actor): string => (a.kind === 'admin' ? (a.operator ? `operator:${a.operator}` : 'admin') : a.key.id);
export const actorPermissions = (a: Actor): readonly string[] => (a.kind === 'admin' ? ['*'] : a.key.policy.permissions);

export function invalid(problems: FieldProblem[]): ApiError {
  return new ApiError('validation_error', problems.map((p) => `${p.path}: ${p.message}`).join('; '), { details: problems });
}

export function unknownPlan(config: Config): ApiError {
  return invalid([{ path: 'plan', message: `unknown plan; one of ${Object.keys(config.plans).join(', ')}` }]);
}

/** The tenant's plan, or the default plan when the tenant names one no longer configured. */
export function planOf(config: Config, tenant: Tenant): Plan & { name: string } {
  const plan = config.plans[tenant.plan] ?? config.plans[config.defaultPlan]!;
  return { name: tenant.plan, ...plan };
}

/**
 * The one rule of authority over keys: what the target may do that `actor` may not (api/authority.ts) —
 * nothing when it may read, change, rotate, disable or revoke the target. The admin covers every key; a key
 * always covers itself; otherwise the actor must hold every permission of the target and be bound by no
 * restriction the target is free of, as on creation.
 */
export function authorityOver(actor: Actor, target: StoredKey): Excess {
  if (actor.kind === 'admin' || actor.key.id === target.id) return { permissions: [], restrictions: [] };
  return excessOf(authorityOfAuthKey(actor.key), authorityOfStored(target));
}

export function checkPermissions(keyType: KeyType, wanted: string[], granted: readonly string[], problems: FieldProblem[]): void {
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
export function withinPlan(plan: Plan, field: PlanLimit, value: number | null | undefined, path: string, problems: FieldProblem[]): number | null {
  const { default: dflt, max } = plan[field];
  if (value === undefined) return dflt;
  if (max !== null && (value === null || value > max)) {
    problems.push({ path, message: `the plan allows at most ${max}` });
    return dflt;
  }
  return value;
}

export function expiryOnCreate(keys: Config['keys'], body: CreateKeyBody, problems: FieldProblem[]): string | null {
  const { allowedExpiryDays, defaultExpiryDays } = keys;
  if (body.expiresAt !== undefined && body.expiresInDays !== undefined) {
    problems.push({ path: 'expiresInDays', message: 'give expiresAt or expiresInDays, not both' });
    return null;
  }
  if (body.expiresAt !== undefined) {
    checkExpiresAt(keys, body.expiresAt, problems);
    return new Date(body.expiresAt).toISOString();
  }
  const days = body.expiresInDays === undefined ? defaultExpiryDays : body.expiresInDays;
  if (days === null) {
    if (!keys.allowNeverExpire) problems.push({ path: 'expiresInDays', message: 'keys must expire on this deployment' });
    return null;
  }
  if (!allowedExpiryDays.includes(days)) problems.push({ path: 'expiresInDays', message: `must be one of ${allowedExpiryDays.join(', ')}` });
  return new Date(Date.now() + days * DAY_MS).toISOString();
}

/** In the future, and — where keys must expire — no later than the longest of `keys.allowedExpiryDays`. */
export function checkExpiresAt(keys: Config['keys'], expiresAt: string | null, problems: FieldProblem[]): void {
  const { allowNeverExpire, allowedExpiryDays } = keys;
  const longest = Math.max(...allowedExpiryDays);
  if (expiresAt === null) {
    if (!allowNeverExpire) problems.push({ path: 'expiresAt', message: 'keys must expire on this deployment' });
  } else if (Date.parse(expiresAt) <= Date.now()) {
    problems.push({ path: 'expiresAt', message: 'must be in the future' });
  } else if (!allowNeverExpire && Date.parse(expiresAt) > Date.now() + longest * DAY_MS) {
    problems.push({ path: 'expiresAt', message: `must be within ${longest} days` });
  }
}

/** `canVerifyCerts`: keygate is configured with a client CA or a mesh whose XFCC it trusts. */
export function checkMtls(canVerifyCerts: boolean, problems: FieldProblem[]): void {
  if (!canVerifyCerts) {
    problems.push({ path: 'enforceMtls', message: 'keygate has no way to verify client certificates (configure tls.clientCa or tls.trustXfccFrom)' });
  }
}

/** The creator chain whose quotas a new key's use counts against too (keys/types.ts, QuotaOwner). */
export function quotaChainOf(actor: Actor): QuotaOwner[] {
  if (actor.kind !== 'key') return [];
  const { quota: own, quotaChain: above } = actor.key.policy;
  const chain = own.requestsPerMonth !== null || own.sessionMinutesPerMonth !== null ? [...above, { keyId: actor.key.id, ...own }] : [...above];
  if (chain.length > MAX_QUOTA_CHAIN) {
    throw new ApiError('key_limit_reached', `This key is the end of a chain of ${MAX_QUOTA_CHAIN} creators with quotas: it cannot create keys.`);
  }
  return chain;
}
