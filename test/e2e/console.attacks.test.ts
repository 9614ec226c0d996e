import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, expectError, rawRequest } from '../helpers/api.ts';
import { consoleApi, consoleLogin, cookieOf, OPERATORS, operatorConfig } from '../helpers/console.ts';
import { ADMIN_TOKEN, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The operator console attacked from outside a browser: guessing tokens at the sign-in and the admin API, a
// `read` operator trying writes through other methods and doors, a session after sign-out or invented by the
// caller, cross-site form posts, and the security headers on every kind of console response.

let redis: RedisServer;
let kg: KeygateProcess;
let origin: string;
const MAX_FAILURES = 5;

beforeAll(async () => {
  redis = await startRedis();
  kg = await startKeygate({ redisUrl: redis.url, config: { admin: { tokens: operatorConfig }, limits: { failedAttempts: { maxFailures: MAX_FAILURES, windowSeconds: 60, blockSeconds: 60 } } } });
  origin = kg.opsUrl;
}, 60_000);
afterAll(async () => {
  await kg?.stop();
  await redis?.close();
});

const login = (token: string, headers: Record<string, string> = { origin }) => consoleLogin(kg, token, headers);
const api = (path: string, headers: Record<string, string>, init: RequestInit = {}) => consoleApi(kg, path, headers, init);

describe('console attacks', () => {
  it('a read operator reaches no write: method override headers, HEAD and OPTIONS on write routes, the bearer door', async () => {
    const { tenant } = await createTenant(kg, { name: 'target' });
    const c = cookieOf(await login(OPERATORS.support.token))!;
    const headers = { origin, cookie: `kg_console=${c}`, 'content-type': 'application/json' };
    for (const override of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
      const r = await api(`/tenants/${tenant.id}`, { ...headers, [override]: 'DELETE' }, { method: 'POST', body: '{}' });
      expect(r.status, override).toBeGreaterThanOrEqual(400);
    }
    for (const method of ['HEAD', 'OPTIONS']) {
      await api(`/tenants/${tenant.id}`, headers, { method });
      await api('/tenants', headers, { method });
    }
    const asBearer = await call<any>(`${kg.opsUrl}/admin/v1/tenants/${tenant.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${OPERATORS.support.token}` } });
    expectError(asBearer, 403, 'insufficient_permissions');
    // The tenant is still there and active.
    const still = await call<any>(`${kg.opsUrl}/admin/v1/tenants/${tenant.id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(still.status).toBe(200);
    expect(still.body.status ?? still.body.tenant?.status).toBe('active');
  });

  it('a session ends at sign-out for good, and a cookie value the caller made up is no session', async () => {
    const c = cookieOf(await login(ADMIN_TOKEN))!;
    expect((await api('/tenants', { origin, cookie: `kg_console=${c}` })).status).toBe(200);
    expect((await call(`${kg.opsUrl}/console/logout`, { method: 'POST', headers: { origin, cookie: `kg_console=${c}` } })).status).toBe(204);
    expectError(await api('/tenants', { origin, cookie: `kg_console=${c}` }), 401, 'missing_api_key');
    // Fixation: a sign-in carrying an attacker's cookie value gets a fresh one; the attacker's stays nothing.
    const planted = 'A'.repeat(43);
    const r = await login(ADMIN_TOKEN, { origin, cookie: `kg_console=${planted}` });
    expect(cookieOf(r)).not.toBe(planted);
    expectError(await api('/tenants', { origin, cookie: `kg_console=${planted}` }), 401, 'missing_api_key');
  });

  it('refuses cross-site writes sent as a form or text/plain, with or without Origin', async () => {
    const c = cookieOf(await login(ADMIN_TOKEN))!;
    for (const headers of [
      { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      { origin: 'null', 'content-type': 'text/plain' },
      { 'content-type': 'text/plain' },
      { origin: origin.toUpperCase().replace('HTTP://', 'http://') + '.evil.example', 'content-type': 'text/plain' },
    ] as Array<Record<string, string>>) {
      const r = await api('/tenants', { ...headers, cookie: `kg_console=${c}` }, { method: 'POST', body: '{"name":"csrf"}' });
      expectError(r, 403, 'origin_not_allowed');
    }
    const list = await api('/tenant-search?q=csrf', { origin, cookie: `kg_console=${c}` });
    expect(list.body.data ?? list.body).toEqual([]);
  });

  it('sends the Content-Security-Policy on the page, assets, errors and unknown paths, and serves nothing outside the assets', async () => {
    const paths = ['/console', '/console/login', '/console/assets/app.js', '/console/assets/nothing.js', '/console/nowhere', '/console/api/admin/v1/tenants'];
    for (const path of paths) {
      const r = await call(`${kg.opsUrl}${path}`, {});
      expect(r.headers.get('content-security-policy'), path).toMatch(/default-src 'self'/);
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
    for (const path of ['/console/assets/../index.html', '/console/assets/%2e%2e/index.html', '/console/assets/..%2f..%2fpackage.json', '/console/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json', '/console/assets/....//....//package.json']) {
      const r = await rawRequest(`${kg.opsUrl}${path}`, {});
      expect(r.body, path).not.toContain('"dependencies"');
      expect(r.body, path).not.toContain('<html');
    }
  });

  it('blocks an address that keeps guessing operator tokens, at the sign-in and at the admin API alike', async () => {
    for (let i = 0; i < MAX_FAILURES; i++) expectError(await login(`guess-${i}-0123456789abcdef`), 401, 'invalid_api_key');
    // Blocked now: even the right token is refused until the block ends, through either door.
    const blocked = await login(ADMIN_TOKEN);
    expectError(blocked, 429, 'too_many_failed_attempts');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(blocked.headers.get('set-cookie')).toBeNull();
    const bearer = await call<any>(`${kg.opsUrl}/admin/v1/tenants`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expectError(bearer, 429, 'too_many_failed_attempts');
  });
});
