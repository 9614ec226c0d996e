import { beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, expectError, proxied, rawRequest, self } from '../helpers/api.ts';
import { ADMIN_TOKEN, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { startUpstream } from '../helpers/upstream.ts';

const servers = useServers();
let kg: KeygateProcess;
let key: string;
let tenantId: string;

beforeAll(async () => {
  kg = await servers.keygate();
  ({ key, tenant: { id: tenantId } } = await createTenant(kg, { name: 'errors', plan: 'pro' }));
});

/**
 * Every Redis key with its serialized value: equal snapshots mean nothing was written. Rate-limit counters are
 * left out: every authenticated call moves them, management calls included (the gate counts them).
 */
async function snapshot(): Promise<Map<string, string>> {
  const keys = (await servers.redis.client.keys('*')).filter((k) => !k.includes(':rl:'));
  const out = new Map<string, string>();
  for (const k of keys) out.set(k, ((await servers.redis.client.dumpBuffer(k)) ?? Buffer.alloc(0)).toString('base64'));
  return out;
}

const asReply = (r: { status: number; body: string }, headers: Record<string, string> = { 'content-type': 'application/json' }) => ({
  status: r.status,
  headers: new Headers(headers),
  body: JSON.parse(r.body) as unknown,
});

describe('the error envelope on every path', () => {
  it('answers unknown routes on both listeners with 404 not_found', async () => {
    expectError(await self(kg, key, 'GET', '/nope'), 404, 'not_found');
    expectError(await self(kg, key, 'PUT', '/api-keys'), 404, 'not_found');
    const ops = await fetch(`${kg.opsUrl}/nope`);
    expectError({ status: ops.status, headers: ops.headers, body: await ops.json() }, 404, 'not_found');
    expectError(await admin(kg, 'GET', '/nope'), 404, 'not_found');
    expectError(await admin(kg, 'GET', '/tenants/not-an-id'), 404, 'not_found');
    expectError(await self(kg, key, 'GET', '/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404, 'not_found');
  });

  it('requires the admin token, compared exactly', async () => {
    const none = await fetch(`${kg.opsUrl}/admin/v1/tenants`);
    expectError({ status: none.status, headers: none.headers, body: await none.json() }, 401, 'missing_api_key');
    const wrong = await fetch(`${kg.opsUrl}/admin/v1/tenants`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
    expectError({ status: wrong.status, headers: wrong.headers, body: await wrong.json() }, 401, 'invalid_api_key');
    // A tenant key is not an admin token.
    const asKey = await fetch(`${kg.opsUrl}/admin/v1/tenants`, { headers: { authorization: `Bearer ${key}` } });
    expect(asKey.status).toBe(401);
  });

  it('rejects bad bodies without writing anything', async () => {
    const before = await snapshot();
    const url = `${kg.url}/keygate/v1/api-keys`;
    const headers = { 'x-api-key': key, 'content-type': 'application/json' };

    expectError(asReply(await rawRequest(url, { method: 'POST', headers, body: '{"name": ' })), 400, 'malformed_request');
    expectError(asReply(await rawRequest(url, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'text/plain' }, body: 'name=x' })), 400, 'malformed_request');
    expectError(asReply(await rawRequest(url, { method: 'POST', headers, body: JSON.stringify({ name: 'x'.repeat(17_000) }) })), 413, 'payload_too_large');
    expectError(asReply(await rawRequest(url, { method: 'POST', headers, body: '[1,2]' })), 400, 'validation_error');

    const mistyped = await self(kg, key, 'POST', '/api-keys', { name: 5, permissions: 'calls:read', rateLimit: { requestsPerMinute: -1 }, surprise: true });
    expectError(mistyped, 400, 'validation_error');
    const paths = (mistyped.body.error.details as Array<{ path: string }>).map((d) => d.path).sort();
    expect(paths).toEqual(['name', 'permissions', 'rateLimit.requestsPerMinute', 'surprise']);
    expectError(await self(kg, key, 'POST', '/api-keys', { permissions: ['not a permission'] }), 400, 'validation_error');
    expectError(await self(kg, key, 'POST', '/api-keys', { metadata: { blob: 'y'.repeat(1100) } }), 400, 'validation_error');
    expectError(await self(kg, key, 'POST', '/api-keys', { enforceMtls: true }), 400, 'validation_error');
    expectError(await self(kg, key, 'GET', '/api-keys?limit=1000'), 400, 'validation_error');
    const first = (await self(kg, key, 'GET', '/api-keys')).body.data[0];
    expectError(await self(kg, key, 'PATCH', `/api-keys/${first.id}`, { isActive: 'no' }), 400, 'validation_error');
    expectError(await self(kg, key, 'POST', `/api-keys/${first.id}/rotate`, { gracePeriodSeconds: 8 * 86_400 }), 400, 'validation_error');
    expectError(await admin(kg, 'POST', '/tenants', { name: '' }), 400, 'validation_error');
    expectError(await admin(kg, 'POST', '/tenants', { name: 'x', plan: 'platinum' }), 400, 'validation_error');
    expectError(await admin(kg, 'PATCH', `/tenants/${tenantId}`, { status: 'gone' }), 400, 'validation_error');

    expect(await snapshot()).toEqual(before);
  });

  it('maps upstream failures to 502 upstream_unavailable', async () => {
    const down = await startKeygate({ redisUrl: servers.redis.url, upstream: 'http://127.0.0.1:1' });
    try {
      const { key: k } = await createTenant(down, { name: 'down' });
      expectError(await proxied(down, '/v1/x', { 'x-api-key': k }), 502, 'upstream_unavailable');
    } finally {
      await down.stop();
    }
  });

  it('maps a slow upstream to 504 upstream_timeout', async () => {
    const slow = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 2_000));
    const kg2 = await startKeygate({ redisUrl: servers.redis.url, upstream: slow.url, env: { UPSTREAM_TIMEOUT_MS: '300' } });
    try {
      const { key: k } = await createTenant(kg2, { name: 'slow' });
      expectError(await proxied(kg2, '/v1/x', { 'x-api-key': k }), 504, 'upstream_timeout');
      expect((await proxied(kg2, '/v1/x', { 'x-api-key': k })).status).toBe(504);
    } finally {
      await kg2.stop();
      await slow.close();
    }
  });
});
