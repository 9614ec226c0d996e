import { beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../dist/verify.js';
import { admin, call, createTenant, expectError, rawRequest, self, type Reply } from '../helpers/api.ts';
import { startNginx, useGateways, type AuthzKeygate, type Gateway } from '../helpers/gateways.ts';
import { useServers } from '../helpers/servers.ts';

// Nginx (Debian nginx-light, auth_request) in front of a test upstream, with keygate as its authorizer,
// configured by docs/gateways/nginx.conf as it stands. The same checks as the proxy's e2e tests, through nginx,
// including the error_page mapping that gives back the statuses auth_request cannot pass (429, 404, 400, 503).

const SECRET = 'nginx-signing-secret-0123456789';
const servers = useServers();
const gateways = useGateways(servers, startNginx, SECRET);
let kg: AuthzKeygate;
let nginx: Gateway;
let signing: AuthzKeygate;
let signingNginx: Gateway;
beforeAll(() => {
  ({ kg, gateway: nginx, signing, signingGateway: signingNginx } = gateways);
});

const get = (gw: Gateway, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => call(gw.url + path, { method, headers });

const lastSeen = () => servers.upstream.seen.at(-1)!;

describe('nginx auth_request with keygate as the authorizer (docs/gateways/nginx.conf)', () => {
  it('lets a valid key through with the identity headers at the upstream, the key stripped and spoofed copies replaced', async () => {
    const { tenant, apiKey, key } = await createTenant(kg, { name: 'nginx' });
    const before = servers.upstream.seen.length;
    const r = await get(nginx, '/v1/calls/1?page=2', {
      'x-api-key': key,
      authorization: 'Basic dXBzdHJlYW06b3du', // the upstream's own credential: not the key, so it stays
      'x-tenant-id': 'ten_spoofed',
      'X-Api-Key-Id': 'key_spoofed',
      'x-api-key-permissions': '*',
      'x-keygate-signature': 't=1,v1=forged',
      'x-request-id': 'client-chosen-id-1',
    });
    expect(r.status).toBe(200);
    expect(servers.upstream.seen.length).toBe(before + 1);
    const seen = lastSeen();
    expect(seen.url).toBe('/v1/calls/1?page=2');
    expect(seen.headers['x-tenant-id']).toBe(tenant.id);
    expect(seen.headers['x-api-key-id']).toBe(apiKey.id);
    expect(seen.headers['x-api-key-type']).toBe('private');
    expect(seen.headers['x-api-key-permissions']).toBe('*');
    expect(seen.headers['x-request-id']).toBe('client-chosen-id-1');
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers['x-keygate-signature']).toBeUndefined();
    expect(seen.headers.authorization).toBe('Basic dXBzdHJlYW06b3du');
    // One copy of each, whatever the client sent.
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const h of ['x-tenant-id', 'x-api-key-id', 'x-api-key-permissions']) expect(names.filter((n) => n === h)).toHaveLength(1);
    // RateLimit-* come from keygate (the first key holds the free plan's maximum, 600 a minute).
    expect(r.headers.get('ratelimit-limit')).toBe('600');
    expect(Number(r.headers.get('ratelimit-remaining'))).toBeLessThan(600);
  });

  it('strips a Bearer key and never forwards a spoofed identity with it', async () => {
    const { tenant, key } = await createTenant(kg, { name: 'nginx-bearer' });
    const r = await get(nginx, '/v1/calls/2', { authorization: `Bearer ${key}`, 'x-tenant-id': 'ten_spoofed' });
    expect(r.status).toBe(200);
    expect(lastSeen().headers.authorization).toBeUndefined();
    expect(lastSeen().headers['x-tenant-id']).toBe(tenant.id);
  });

  it('answers a missing or invalid key 401 with the envelope and WWW-Authenticate, and the upstream sees nothing', async () => {
    const before = servers.upstream.seen.length;
    const missing = await get(nginx, '/v1/calls/1', { 'x-tenant-id': 'ten_spoofed' });
    expectError(missing, 401, 'missing_api_key');
    expect(missing.headers.get('x-request-id')).toBe(missing.body.error.requestId);
    expectError(await get(nginx, '/v1/calls/1', { 'x-api-key': 'kg_sk_notakeyatall' }), 401, 'invalid_api_key');
    expect(servers.upstream.seen.length).toBe(before);
  });

  it('answers 403 for a key without the permission, 404 for a route the policy denies, 400 for a malformed target', async () => {
    const { key } = await createTenant(kg, { name: 'nginx-narrow' });
    const narrow = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:write'] });
    const before = servers.upstream.seen.length;
    expectError(await get(nginx, '/v1/calls/1', { 'x-api-key': narrow.body.key }), 403, 'insufficient_permissions');
    expectError(await get(nginx, '/v1/nowhere', { 'x-api-key': key }), 404, 'route_not_allowed');
    const dots = await rawRequest(`${nginx.url}/v1/open/../calls/1`, { headers: { 'x-api-key': key } });
    expect(dots.status).toBe(400);
    expect(JSON.parse(dots.body).error.code).toBe('malformed_request');
    expect(servers.upstream.seen.length).toBe(before);
  });

  it('answers the request over the limit 429 with Retry-After and RateLimit-*, through error_page', async () => {
    const { key } = await createTenant(kg, { name: 'nginx-limited' });
    const limited = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 2 } });
    for (let i = 0; i < 2; i++) expect((await get(nginx, '/v1/calls/1', { 'x-api-key': limited.body.key })).status).toBe(200);
    const before = servers.upstream.seen.length;
    const over = await get(nginx, '/v1/calls/1', { 'x-api-key': limited.body.key });
    expectError(over, 429, 'rate_limited');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.headers.get('ratelimit-limit')).toBe('2');
    expect(over.headers.get('ratelimit-remaining')).toBe('0');
    expect(servers.upstream.seen.length).toBe(before);
  });

  it('refuses a revoked key at once', async () => {
    const { key } = await createTenant(kg, { name: 'nginx-revoke' });
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    expect((await get(nginx, '/v1/calls/1', { 'x-api-key': made.body.key })).status).toBe(200);
    expect((await self(kg, key, 'DELETE', `/api-keys/${made.body.id}`)).status).toBe(204);
    expectError(await get(nginx, '/v1/calls/1', { 'x-api-key': made.body.key }), 401, 'invalid_api_key');
  });

  it('copies the CORS fields of an allowed origin, and answers a preflight itself, never forwarding it', async () => {
    const { key } = await createTenant(kg, { name: 'nginx-cors' });
    const web = await self(kg, key, 'POST', '/api-keys', { allowedOrigins: ['https://app.example.com'] });
    const ok = await get(nginx, '/v1/calls/1', { 'x-api-key': web.body.key, origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expectError(await get(nginx, '/v1/calls/1', { 'x-api-key': web.body.key, origin: 'https://evil.example.com' }), 403, 'origin_not_allowed');
    const before = servers.upstream.seen.length;
    const preflight = await get(nginx, '/v1/calls/1', { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'x-tenant-id': 'ten_spoofed' }, 'OPTIONS');
    expect(preflight.status).toBe(200);
    expect(servers.upstream.seen.length).toBe(before);
    expect(preflight.headers.get('x-tenant-id')).toBeNull();
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('x-api-key');
  });

  it('forwards a signature the backend can verify over the original method and path', async () => {
    const { tenant, apiKey, key } = await createTenant(signing, { name: 'nginx-signed' });
    const r = await get(signingNginx, '/v1/calls/7?x=1', { 'x-api-key': key, 'x-keygate-signature': 't=1,v1=forged' });
    expect(r.status).toBe(200);
    const fields = { method: 'GET', path: '/v1/calls/7', tenantId: tenant.id, keyId: apiKey.id };
    expect(verifySignature(SECRET, lastSeen().headers['x-keygate-signature'] as string, fields).ok).toBe(true);
  });

  it('fails closed with 503 and the envelope when keygate does not answer', async () => {
    const { key } = await createTenant(kg, { name: 'nginx-down' });
    expect((await admin(kg, 'GET', '/overview')).status).toBe(200);
    const before = servers.upstream.seen.length;
    await kg.stop();
    const r = await get(nginx, '/v1/calls/1', { 'x-api-key': key });
    expectError(r, 503, 'store_unavailable');
    expect(servers.upstream.seen.length).toBe(before);
  });
});
