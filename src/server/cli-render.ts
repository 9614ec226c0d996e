import type { components } from '../client/schema.ts';
import { fields, table, when, type Output } from './cli-output.ts';

// The CLI's renderings of keygate's resources, shared by the admin-API commands and the direct-to-store ones,
// so both print the same thing for the same result.

type ApiKey = components['schemas']['ApiKey'];
type CreatedApiKey = components['schemas']['CreatedApiKey'];
type Tenant = components['schemas']['Tenant'];

const keyColumns = ['id', 'name', 'type', 'prefix', 'permissions', 'active', 'expires', 'last used'];
const keyRow = (k: ApiKey) => [k.id, k.name, k.keyType, k.prefix, k.permissions.join(','), k.isActive ? 'yes' : 'no', when(k.expiresAt) ?? 'never', when(k.lastUsedAt)];

const keyFields = (k: ApiKey): Array<[string, string | null]> => [
  ['id', k.id],
  ['tenant', k.tenantId],
  ['name', k.name],
  ['type', k.keyType],
  ['prefix', k.prefix],
  ['permissions', k.permissions.join(',')],
  ['active', k.isActive ? 'yes' : 'no'],
  ['expires', when(k.expiresAt) ?? 'never'],
  ['last used', when(k.lastUsedAt)],
];

const tenantColumns = ['id', 'name', 'plan', 'max keys', 'status', 'created'];
const tenantRow = (t: Tenant) => [t.id, t.name, t.plan, t.maxKeys, t.status, when(t.createdAt)];

export function renderKeys(keys: ApiKey[]): Output {
  return { json: { data: keys }, human: keys.length ? table(keyColumns, keys.map(keyRow)) : '(no keys)' };
}

export function renderKey(k: ApiKey): Output {
  return { json: k, human: fields(keyFields(k)) };
}

/** The raw key is printed once, last, on a line of its own, so it is easy to copy and hard to miss. */
export function renderCreatedKey(k: CreatedApiKey): Output {
  return { json: k, human: `${fields([...keyFields(k), ['key', k.key]])}`, notice: k.message };
}

export function renderTenants(tenants: Tenant[]): Output {
  return { json: { data: tenants }, human: tenants.length ? table(tenantColumns, tenants.map(tenantRow)) : '(no tenants)' };
}

export function renderTenant(t: Tenant): Output {
  return { json: t, human: fields([['id', t.id], ['name', t.name], ['plan', t.plan], ['max keys', t.maxKeys], ['status', t.status], ['created', when(t.createdAt)]]) };
}

export function renderCreatedTenant(created: { tenant: Tenant; apiKey: CreatedApiKey }): Output {
  const { tenant, apiKey } = created;
  const human = `${renderTenant(tenant).human}\n\nfirst key (permissions *):\n${renderCreatedKey(apiKey).human}`;
  return { json: created, human, notice: apiKey.message };
}

export function renderRevoked(tenantId: string, id: string): Output {
  return { json: { tenantId, id, revoked: true }, human: `revoked ${id}` };
}
