import { beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, expectError, proxied, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

const servers = useServers();
let kg: KeygateProcess;

beforeAll(async () => {
  kg = await servers.keygate();
});

/** Every key and value keygate wrote to Redis, as text (streams and hashes included). */
async function redisDump(): Promise<string> {
  // Rate-limit counters move with every authenticated call, management calls included (the gate counts them).
  const keys = (await servers.redis.client.keys('*')).filter((k) => !k.includes(':rl:'));
  const parts: string[] = [];
  for (const k of keys.sort()) {
    const type = await servers.redis.client.type(k);
    if (type === 'string') parts.push(k, (await servers.redis.client.get(k)) ?? '');
    else if (type === 'zset') parts.push(k, ...(await servers.redis.client.zrange(k, '0', '-1')));
    else if (type === 'hash') parts.push(k, JSON.stringify(await servers.redis.client.hgetall(k)));
    else if (type === 'stream') parts.push(k, JSON.stringify(await servers.redis.client.xrange(k, '-', '+')));
    else parts.push(k, type);
  }
  return parts.join('\n');
}

describe('key lifecycle through the APIs and the proxy', () => {
  it('returns the key only on create and rotate; prefix is its start; Redis never holds it', async () => {
    const { tenant, key, apiKey } = await createTenant(kg);
    expect(apiKey.message).toBe('Store this key securely. It will not be shown again.');
    expect(key.startsWith(apiKey.prefix)).toBe(true);
    expect(key).toMatch(/^kg_sk_[A-Za-z0-9]{30}$/);

    const created = await self(kg, key, 'POST', '/api-keys', { name: 'second', permissions: ['calls:read'] });
    expect(created.status).toBe(201);
    const second = created.body.key as string;
    expect(second.startsWith(created.body.prefix)).toBe(true);

    const got = await self(kg, key, 'GET', `/api-keys/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('key');
    expect(Object.keys(got.body).sort()).toEqual(
      ['allowedAssistants', 'allowedOrigins', 'clientCertFingerprints', 'createdAt', 'createdBy', 'enforceMtls', 'expiresAt', 'id', 'isActive', 'keyType', 'lastUsedAt', 'maxConcurrentConnections', 'metadata', 'name', 'permissions', 'prefix', 'quota', 'rateLimit', 'tenantId', 'transientAssistant', 'updatedAt'].sort(),
    );
    expect(got.body.createdBy).toBe(apiKey.id);
    const list = await admin(kg, 'GET', `/tenants/${tenant.id}/api-keys`);
    expect(list.body.data).toHaveLength(2);
    expect(JSON.stringify(list.body)).not.toContain(key);
    expect(JSON.stringify(list.body)).not.toContain(second);

    const rotated = await self(kg, key, 'POST', `/api-keys/${created.body.id}/rotate`);
    expect(rotated.status).toBe(201);
    expect(rotated.body.id).toBe(created.body.id);
    const third = rotated.body.key as string;

    const dump = await redisDump();
    expect(dump.length).toBeGreaterThan(0);
    for (const raw of [key, second, third]) {
      expect(dump).not.toContain(raw);
      expect(dump).not.toContain(raw.slice(6)); // nor its secret part without the prefix
    }
  });

  it('holds maxKeys under 100 parallel creates: exactly three 201s', async () => {
    const { tenant, apiKey } = await createTenant(kg, { name: 'limits', maxKeys: 3 });
    // Start from zero keys, so that all three slots are raced for.
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}/api-keys/${apiKey.id}`)).status).toBe(204);
    const replies = await Promise.all(Array.from({ length: 100 }, () => admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { permissions: ['calls:read'] })));
    expect(replies.filter((r) => r.status === 201)).toHaveLength(3);
    const refused = replies.filter((r) => r.status !== 201);
    expect(refused).toHaveLength(97);
    for (const r of refused) expectError(r, 409, 'key_limit_reached');
    expect((await admin(kg, 'GET', `/tenants/${tenant.id}/api-keys`)).body.data).toHaveLength(3);
  });

  it('revoke makes the next proxied request 401; rotate swaps old for new', async () => {
    const { key } = await createTenant(kg);
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    const victim = made.body.key as string;
    expect((await proxied(kg, '/v1/calls', { 'x-api-key': victim })).status).toBe(200);
    expect((await self(kg, key, 'DELETE', `/api-keys/${made.body.id}`)).status).toBe(204);
    expectError(await proxied(kg, '/v1/calls', { 'x-api-key': victim }), 401, 'invalid_api_key');
    expectError(await self(kg, key, 'GET', `/api-keys/${made.body.id}`), 404, 'not_found');

    const other = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    const old = other.body.key as string;
    expect((await proxied(kg, '/v1/calls', { 'x-api-key': old })).status).toBe(200);
    const rotated = await self(kg, key, 'POST', `/api-keys/${other.body.id}/rotate`, {});
    expectError(await proxied(kg, '/v1/calls', { 'x-api-key': old }), 401, 'invalid_api_key');
    expect((await proxied(kg, '/v1/calls', { 'x-api-key': rotated.body.key })).status).toBe(200);
  });

  it('keeps the old value working through a rotation grace period, then 401', async () => {
    const { key } = await createTenant(kg);
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    const old = made.body.key as string;
    expect((await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${old}` })).status).toBe(200);
    const rotated = await self(kg, key, 'POST', `/api-keys/${made.body.id}/rotate`, { gracePeriodSeconds: 2 });
    expect(rotated.status).toBe(201);
    expect((await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${old}` })).status).toBe(200);
    expect((await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${rotated.body.key}` })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_200));
    expectError(await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${old}` }), 401, 'invalid_api_key');
    expect((await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${rotated.body.key}` })).status).toBe(200);
  });

  it('rotates the calling key through the `current` alias', async () => {
    const { key } = await createTenant(kg);
    const r = await self(kg, key, 'POST', '/api-keys/current/rotate', { gracePeriodSeconds: 0 });
    expect(r.status).toBe(201);
    expectError(await proxied(kg, '/v1/x', { 'x-api-key': key }), 401, 'invalid_api_key');
    expect((await self(kg, r.body.key, 'GET', '/tenants/me')).status).toBe(200);
  });

  it('reports tenant, plan and key count on /tenants/me', async () => {
    const { tenant, key } = await createTenant(kg, { name: 'me', plan: 'pro' });
    const r = await self(kg, key, 'GET', '/tenants/me');
    expect(r.status).toBe(200);
    expect(r.body.tenant).toMatchObject({ id: tenant.id, name: 'me', plan: 'pro', maxKeys: 25, status: 'active' });
    expect(r.body.plan).toMatchObject({ name: 'pro', maxKeys: 25 });
    expect(r.body.keyCount).toBe(1);
  });

  it('writes an audit entry for every mutation', async () => {
    const { tenant, key } = await createTenant(kg);
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    await self(kg, key, 'PATCH', `/api-keys/${made.body.id}`, { name: 'renamed' });
    await self(kg, key, 'POST', `/api-keys/${made.body.id}/rotate`);
    await self(kg, key, 'DELETE', `/api-keys/${made.body.id}`);
    await admin(kg, 'PATCH', `/tenants/${tenant.id}`, { name: 'renamed tenant' });
    const log = await self(kg, key, 'GET', '/audit-log');
    expect(log.status).toBe(200);
    expect(log.body.data.map((e: { action: string }) => e.action)).toEqual([
      'tenant.updated', 'key.revoked', 'key.rotated', 'key.updated', 'key.created', 'key.created', 'tenant.created',
    ]);
    expect(log.body.data[1]).toMatchObject({ actor: expect.stringMatching(/^key_/), keyId: made.body.id });
    expect(JSON.stringify(log.body)).not.toContain(made.body.key);
  });
});

describe('permission rules', () => {
  it('refuses to grant permissions the creator lacks, api-keys permissions on public keys, and self-revocation', async () => {
    const { key, tenant } = await createTenant(kg, { name: 'perm', plan: 'pro' });
    const limited = await self(kg, key, 'POST', '/api-keys', { permissions: ['api-keys:write', 'calls:read'] });
    expect(limited.status).toBe(201);
    const before = await redisDump();

    expectError(await self(kg, limited.body.key, 'POST', '/api-keys', { permissions: ['calls:write'] }), 403, 'insufficient_permissions');
    expectError(await self(kg, limited.body.key, 'POST', '/api-keys', { permissions: ['*'] }), 403, 'insufficient_permissions');
    expectError(await self(kg, limited.body.key, 'GET', '/api-keys'), 403, 'insufficient_permissions');
    const pub = await self(kg, key, 'POST', '/api-keys', { keyType: 'public', permissions: ['api-keys:read'] });
    expectError(pub, 400, 'validation_error');
    expect(pub.body.error.details).toContainEqual(expect.objectContaining({ path: 'permissions' }));
    expectError(await self(kg, key, 'POST', '/api-keys', { keyType: 'public' }), 400, 'validation_error');
    const me = await self(kg, key, 'GET', '/tenants/me');
    const first = (await admin(kg, 'GET', `/tenants/${tenant.id}/api-keys`)).body.data[0];
    expectError(await self(kg, key, 'DELETE', `/api-keys/${first.id}`), 409, 'cannot_revoke_current_key');
    expectError(await self(kg, key, 'DELETE', '/api-keys/current'), 409, 'cannot_revoke_current_key');
    // Narrow only.
    expectError(await self(kg, key, 'PATCH', `/api-keys/${limited.body.id}`, { permissions: ['calls:write'] }), 400, 'validation_error');
    expect(me.status).toBe(200);
    expect(await redisDump()).toBe(before);

    const narrowed = await self(kg, limited.body.key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    expect(narrowed.status).toBe(201);
    expect(narrowed.body.permissions).toEqual(['calls:read']);
    const pubOk = await self(kg, key, 'POST', '/api-keys', { keyType: 'public', permissions: ['calls:read'], allowedOrigins: ['https://app.example.com'] });
    expect(pubOk.status).toBe(201);
    expect(pubOk.body.key).toMatch(/^kg_pk_/);
  });

  it('holds per-key limits within the plan', async () => {
    const { key } = await createTenant(kg, { name: 'plan' });
    const r = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 601 } });
    expectError(r, 400, 'validation_error');
    expect(r.body.error.details).toContainEqual(expect.objectContaining({ path: 'rateLimit.requestsPerMinute' }));
    expectError(await self(kg, key, 'POST', '/api-keys', { maxConcurrentConnections: null }), 400, 'validation_error');
    const ok = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 5 } });
    expect(ok.body.rateLimit).toEqual({ requestsPerMinute: 5, requestsPerDay: 10_000 });
    expect(ok.body.maxConcurrentConnections).toBe(2);
  });

  it('applies expiry rules', async () => {
    const { key } = await createTenant(kg, { name: 'expiry', plan: 'pro' });
    const dflt = await self(kg, key, 'POST', '/api-keys', {});
    const days = (Date.parse(dflt.body.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);
    expectError(await self(kg, key, 'POST', '/api-keys', { expiresInDays: 7 }), 400, 'validation_error');
    expectError(await self(kg, key, 'POST', '/api-keys', { expiresInDays: null }), 400, 'validation_error');
    expectError(await self(kg, key, 'POST', '/api-keys', { expiresAt: '2001-01-01T00:00:00Z' }), 400, 'validation_error');
    const at = new Date(Date.now() + 3_600_000).toISOString();
    expect((await self(kg, key, 'POST', '/api-keys', { expiresAt: at })).body.expiresAt).toBe(at);
  });
});

describe('statuses of a key', () => {
  it('answers key_disabled, tenant_suspended and key_expired', async () => {
    const { tenant, key } = await createTenant(kg, { name: 'status', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    await self(kg, key, 'PATCH', `/api-keys/${made.body.id}`, { isActive: false });
    expectError(await proxied(kg, '/v1/calls/a', { 'x-api-key': made.body.key }), 401, 'key_disabled');
    await self(kg, key, 'PATCH', `/api-keys/${made.body.id}`, { isActive: true });
    expect((await proxied(kg, '/v1/calls/a', { 'x-api-key': made.body.key })).status).toBe(200);

    const soon = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'], expiresAt: new Date(Date.now() + 1_500).toISOString() });
    expect((await proxied(kg, '/v1/calls/a', { 'x-api-key': soon.body.key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_600));
    expectError(await proxied(kg, '/v1/calls/a', { 'x-api-key': soon.body.key }), 401, 'key_expired');

    await admin(kg, 'PATCH', `/tenants/${tenant.id}`, { status: 'suspended' });
    expectError(await proxied(kg, '/v1/calls/a', { 'x-api-key': made.body.key }), 403, 'tenant_suspended');
    await admin(kg, 'PATCH', `/tenants/${tenant.id}`, { status: 'active' });
    expect((await proxied(kg, '/v1/calls/a', { 'x-api-key': made.body.key })).status).toBe(200);
  });

  it('rejects malformed keys and bad checksums as invalid_api_key', async () => {
    const { key } = await createTenant(kg);
    const flipped = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    expectError(await proxied(kg, '/v1/calls/a', { 'x-api-key': flipped }), 401, 'invalid_api_key');
    expectError(await proxied(kg, '/v1/calls/a', { 'x-api-key': 'nonsense' }), 401, 'invalid_api_key');
    expectError(await proxied(kg, '/v1/calls/a'), 401, 'missing_api_key');
    expectError(await proxied(kg, '/v1/calls/a', { authorization: 'Basic Zm9vOmJhcg==' }), 401, 'missing_api_key');
  });

  it('deleting a tenant revokes every key', async () => {
    const { tenant, key } = await createTenant(kg);
    expect((await proxied(kg, '/v1/calls/a', { 'x-api-key': key })).status).toBe(200);
    expect((await admin(kg, 'DELETE', `/tenants/${tenant.id}`)).status).toBe(204);
    expectError(await proxied(kg, '/v1/calls/a', { 'x-api-key': key }), 401, 'invalid_api_key');
    expectError(await admin(kg, 'GET', `/tenants/${tenant.id}`), 404, 'not_found');
  });
});
