import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, call, expectError, self } from '../helpers/api.ts';
import { consoleApi, consoleLogin, cookieOf, OPERATORS, operatorConfig } from '../helpers/console.ts';
import { ADMIN_TOKEN, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The console's doors, attacked without a browser: signing in, the session cookie's attributes, the Origin
// check on every console call, the bound on sessions, and operator roles on the admin API itself.

let redis: RedisServer;
let kg: KeygateProcess;
let origin: string;

beforeAll(async () => {
  redis = await startRedis();
  kg = await startKeygate({ redisUrl: redis.url, config: { admin: { tokens: operatorConfig }, console: { sessionTtlSeconds: 60, origins: ['https://ops.example.com'] }, webhooks: { enabled: true, allowPrivateTargets: true, retryBaseMs: 100, retryMaxMs: 200, retryForHours: 0.0003 } } });
  origin = kg.opsUrl;
}, 60_000);
afterAll(async () => {
  await kg?.stop();
  await redis?.close();
});

const login = (token: string, headers: Record<string, string> = { origin }) => consoleLogin(kg, token, headers);
const api = (path: string, headers: Record<string, string>, init: RequestInit = {}) => consoleApi(kg, path, headers, init);

describe('console sign-in', () => {
  it('exchanges a token for an HttpOnly, SameSite=Strict cookie scoped to /console, Secure when the page is https', async () => {
    const r = await login(ADMIN_TOKEN);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'admin', role: 'write' });
    const set = r.headers.get('set-cookie')!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\/console/);
    expect(set).toMatch(/Max-Age=60/);
    expect(set).not.toMatch(/Secure/);
    expect(JSON.stringify(r.body)).not.toContain(ADMIN_TOKEN);
    // Behind a TLS-terminating proxy listed in console.origins.
    const tls = await login(ADMIN_TOKEN, { origin: 'https://ops.example.com' });
    expect(tls.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  it('refuses a wrong token with no cookie, and a sign-in from another origin before the token is looked at', async () => {
    const wrong = await login('not-a-token-at-all-0000000');
    expectError(wrong, 401, 'invalid_api_key');
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const attempts: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { origin: 'null' }, {}, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }];
    for (const headers of attempts) {
      const r = await login(ADMIN_TOKEN, headers);
      expectError(r, 403, 'origin_not_allowed');
      expect(r.headers.get('set-cookie')).toBeNull();
    }
  });

  it('serves the app with a strict Content-Security-Policy', async () => {
    const page = await call<string>(`${kg.opsUrl}/console`, {});
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'self'; script-src 'self'; style-src 'self'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.body).not.toMatch(/<script>|style=/);
  });
});

describe('console API', () => {
  it('answers only with the session cookie and only from the console origin', async () => {
    const cookie = `kg_console=${cookieOf(await login(OPERATORS.alice.token))}`;
    expect((await api('/whoami', { cookie, origin })).body).toEqual({ name: 'alice', role: 'write' });
    expect((await api('/whoami', { cookie, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    // No cookie, a made-up one, or the admin token as a bearer: the console door takes only its session.
    expectError(await api('/whoami', { origin }), 401, 'missing_api_key');
    expectError(await api('/whoami', { origin, cookie: 'kg_console=forged' }), 401, 'missing_api_key');
    expectError(await api('/whoami', { origin, authorization: `Bearer ${ADMIN_TOKEN}` }), 401, 'missing_api_key');
    // The cookie from another origin (or with no proof of origin at all) is refused, reads included.
    const foreign: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { origin: `${origin}.evil.example` }, {}, { 'sec-fetch-site': 'cross-site' }];
    for (const headers of foreign) {
      expectError(await api('/whoami', { cookie, ...headers }), 403, 'origin_not_allowed');
      expectError(await api('/tenants', { cookie, ...headers, 'content-type': 'application/json' }, { method: 'POST', body: '{"name":"csrf"}' }), 403, 'origin_not_allowed');
    }
    expect((await admin(kg, 'GET', '/tenant-search?q=csrf')).body.data).toEqual([]);
  });

  it('ends a session at sign-out', async () => {
    const cookie = `kg_console=${cookieOf(await login(OPERATORS.alice.token))}`;
    expect((await api('/whoami', { cookie, origin })).status).toBe(200);
    const out = await call(`${kg.opsUrl}/console/logout`, { method: 'POST', headers: { cookie, origin } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/kg_console=;/);
    expectError(await api('/whoami', { cookie, origin }), 401, 'missing_api_key');
  });

  // On Redis the sessions are shared by every keygate on it; this one has a key prefix of its own so that the
  // sessions signed in by the tests above do not count against its bound.
  it.each([['the embedded store', null], ['Redis', 'bounded:']] as const)("bounds sessions per operator and in all, and never ends one operator's session for another's sign-in (%s)", async (_store, prefix) => {
    const bounded = await startKeygate({ redisUrl: prefix ? redis.url : null, config: { admin: { tokens: operatorConfig }, console: { maxSessions: 3, maxSessionsPerOperator: 2 }, ...(prefix ? { redis: { keyPrefix: prefix } } : {}) } });
    try {
      const o = bounded.opsUrl;
      const signIn = (token: string, cookie?: string) =>
        call<any>(`${o}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: o, ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ token }) });
      const whoami = (cookie: string) => call<any>(`${o}/console/api/admin/v1/whoami`, { headers: { cookie, origin: o } });
      const cookie = async (token: string, current?: string) => {
        const r = await signIn(token, current);
        expect(r.status).toBe(200);
        return `kg_console=${cookieOf(r)}`;
      };
      // An operator signing in again and again ends only their own oldest session.
      const support = [await cookie(OPERATORS.support.token), await cookie(OPERATORS.support.token), await cookie(OPERATORS.support.token)];
      expectError(await whoami(support[0]!), 401, 'missing_api_key');
      const alice = await cookie(OPERATORS.alice.token);
      // At the bound, a sign-in that would have to end someone else's session is refused instead.
      const refused = await signIn(ADMIN_TOKEN);
      expectError(refused, 429, 'concurrency_limit_reached');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('set-cookie')).toBeNull();
      for (let i = 0; i < 5; i++) await cookie(OPERATORS.support.token);
      expect((await whoami(alice)).body).toEqual({ name: 'alice', role: 'write' });
      // Signing in again from a signed-in page replaces that page's session, so it is not refused at the bound.
      const again = await cookie(OPERATORS.alice.token, alice);
      expectError(await whoami(alice), 401, 'missing_api_key');
      expect((await whoami(again)).status).toBe(200);
      if (prefix) {
        // Redis holds the sessions' digests, never a cookie's value: reading Redis does not sign anyone in.
        const stored = JSON.stringify(await redis.client.hgetall(`${prefix}{console}:sessions`));
        expect(stored).toContain(createHash('sha256').update(again.slice('kg_console='.length)).digest('hex'));
        expect(stored).not.toContain(again.slice('kg_console='.length));
        expect(await redis.client.zcard(`${prefix}{console}:expiry`)).toBe(3);
      }
    } finally {
      await bounded.stop();
    }
  }, 60_000);

  it('keeps sessions on Redis across a restart of keygate, and a sign-out still ends them', async () => {
    const config = { admin: { tokens: operatorConfig }, redis: { keyPrefix: 'restart:' } };
    let one: KeygateProcess | null = await startKeygate({ redisUrl: redis.url, config });
    let cookie: string;
    try {
      const r = await call<any>(`${one.opsUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: one.opsUrl }, body: JSON.stringify({ token: OPERATORS.alice.token }) });
      expect(r.status).toBe(200);
      cookie = `kg_console=${cookieOf(r)}`;
    } finally {
      await one.stop();
    }
    one = await startKeygate({ redisUrl: redis.url, config });
    try {
      const o = one.opsUrl;
      const whoami = () => call<any>(`${o}/console/api/admin/v1/whoami`, { headers: { cookie, origin: o } });
      expect((await whoami()).body).toEqual({ name: 'alice', role: 'write' });
      expect((await call(`${o}/console/logout`, { method: 'POST', headers: { cookie, origin: o } })).status).toBe(204);
      expectError(await whoami(), 401, 'missing_api_key');
    } finally {
      await one.stop();
    }
  }, 60_000);

  it('answers 503 store_unavailable while Redis is down, never 401 or 500', async () => {
    const own = await startRedis();
    const down = await startKeygate({ redisUrl: own.url, config: { admin: { tokens: operatorConfig } } });
    try {
      const o = down.opsUrl;
      const signIn = () => call<any>(`${o}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: o }, body: JSON.stringify({ token: OPERATORS.alice.token }) });
      const first = await signIn();
      expect(first.status).toBe(200);
      const cookie = `kg_console=${cookieOf(first)}`;
      await own.stop();
      const refused = await call<any>(`${o}/console/api/admin/v1/whoami`, { headers: { cookie, origin: o } });
      expectError(refused, 503, 'store_unavailable');
      expect(refused.headers.get('retry-after')).toBe('5');
      expectError(await call(`${o}/console/logout`, { method: 'POST', headers: { cookie, origin: o } }), 503, 'store_unavailable');
      expectError(await signIn(), 503, 'store_unavailable');
    } finally {
      await down.stop();
      await own.close();
    }
  }, 60_000);
});

describe('operator roles on the admin API', () => {
  const bearer = (token: string, method: string, path: string, body?: unknown) =>
    call<any>(`${kg.opsUrl}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });

  it('a read operator reads everything and is refused every write, before its body is read', async () => {
    const { body: created } = await admin(kg, 'POST', '/tenants', { name: 'roles' });
    const t = created.tenant.id;
    expect((await bearer(OPERATORS.support.token, 'GET', `/tenants/${t}/api-keys`)).status).toBe(200);
    expect((await bearer(OPERATORS.support.token, 'GET', '/fleet')).status).toBe(200);
    const writes: Array<[string, string, unknown?]> = [
      ['POST', '/tenants', { name: 'x' }],
      ['PATCH', `/tenants/${t}`, { status: 'suspended' }],
      ['DELETE', `/tenants/${t}`],
      ['POST', `/tenants/${t}/api-keys`, { name: 'x' }],
      ['DELETE', `/tenants/${t}/api-keys/${created.apiKey.id}`],
      ['POST', `/tenants/${t}/api-keys/${created.apiKey.id}/rotate`, {}],
      ['POST', '/webhooks', { url: 'https://example.com/hook', events: ['key.created'] }],
      ['PUT', '/tenants', { name: 'x' }],
    ];
    for (const [method, path, body] of writes) expectError(await bearer(OPERATORS.support.token, method, path, body), 403, 'insufficient_permissions');
    // A malformed body is not even parsed for a read operator.
    const raw = await call<any>(`${kg.opsUrl}/admin/v1/tenants`, { method: 'POST', headers: { authorization: `Bearer ${OPERATORS.support.token}`, 'content-type': 'application/json' }, body: '{' });
    expectError(raw, 403, 'insufficient_permissions');
    expect((await admin(kg, 'GET', `/tenants/${t}`)).body.status).toBe('active');
    expect((await admin(kg, 'GET', `/tenants/${t}/api-keys/${created.apiKey.id}`)).status).toBe(200);
  });

  it("a named write operator's changes are audited with its name; the admin token's as admin", async () => {
    const { body: created } = await bearer(OPERATORS.alice.token, 'POST', '/tenants', { name: 'audited' });
    const t = created.tenant.id;
    expect(created.apiKey.createdBy).toBe('operator:alice');
    const k = await bearer(OPERATORS.alice.token, 'POST', `/tenants/${t}/api-keys`, { name: 'k' });
    expect((await bearer(OPERATORS.alice.token, 'DELETE', `/tenants/${t}/api-keys/${k.body.id}`)).status).toBe(204);
    await admin(kg, 'PATCH', `/tenants/${t}`, { name: 'audited-2' });
    const log = (await admin(kg, 'GET', `/tenants/${t}/audit-log?limit=100`)).body.data as Array<{ action: string; actor: string }>;
    expect(log.find((e) => e.action === 'tenant.created')?.actor).toBe('operator:alice');
    expect(log.find((e) => e.action === 'key.revoked')?.actor).toBe('operator:alice');
    expect(log.find((e) => e.action === 'tenant.updated')?.actor).toBe('admin');
    await expect.poll(() => kg.output()).toMatch(/"operator":"alice","role":"write","method":"DELETE"/);
  });

  it("every webhook-endpoint write from the console is in the platform's audit log with the operator's name; a tenant's own in its log", async () => {
    const cookie = `kg_console=${cookieOf(await login(OPERATORS.alice.token))}`;
    const write = (method: string, path: string, body?: unknown) => api(path, { cookie, origin, ...(body ? { 'content-type': 'application/json' } : {}) }, { method, ...(body ? { body: JSON.stringify(body) } : {}) });
    // Nothing listens on port 9: every delivery fails, and after the short retry window the event is a dead letter.
    const made = await write('POST', '/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['key.created'] });
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    const { body: t } = await admin(kg, 'POST', '/tenants', { name: 'webhook-audit' });
    expect((await admin(kg, 'POST', `/tenants/${t.tenant.id}/api-keys`, { name: 'k' })).status).toBe(201);
    let dead: Array<{ key: string; endpointId: string }> = [];
    await expect.poll(async () => (dead = ((await api('/webhooks/dead-letters', { cookie, origin })).body.data as typeof dead).filter((d) => d.endpointId === id)).length, { timeout: 20_000 }).toBeGreaterThan(0);
    expect((await write('POST', `/webhooks/dead-letters/${encodeURIComponent(dead[0]!.key)}/redeliver`)).status).toBe(204);
    expect((await write('POST', `/webhooks/${id}/rotate-secret`, { gracePeriodSeconds: 0 })).status).toBe(200);
    expect((await write('POST', `/webhooks/${id}/enable`)).status).toBe(200);
    expect((await write('DELETE', `/webhooks/${id}`)).status).toBe(204);
    // A refused write leaves no entry.
    expectError(await api('/webhooks', { cookie: `kg_console=${cookieOf(await login(OPERATORS.support.token))}`, origin, 'content-type': 'application/json' }, { method: 'POST', body: JSON.stringify({ url: 'http://127.0.0.1:9/x', events: ['key.created'] }) }), 403, 'insufficient_permissions');

    const log = (await api('/audit-log?limit=100', { cookie, origin })).body.data as Array<{ action: string; actor: string; keyId: string | null; details: Record<string, unknown> }>;
    const mine = log.filter((e) => e.details.endpointId === id);
    expect(mine.map((e) => e.action)).toEqual(['webhook.deleted', 'webhook.enabled', 'webhook.secret_rotated', 'webhook.redelivered', 'webhook.created']);
    expect(new Set(mine.map((e) => e.actor))).toEqual(new Set(['operator:alice']));
    expect(mine.find((e) => e.action === 'webhook.redelivered')?.details.deadLetter).toBe(dead[0]!.key);
    expect(JSON.stringify(log)).not.toMatch(/whsec_/);
    expect(log.filter((e) => e.actor === 'operator:support')).toEqual([]);
    // The same log on the bearer door; the admin token's writes say admin.
    await admin(kg, 'DELETE', `/webhooks/${(await admin(kg, 'POST', '/webhooks', { url: 'http://127.0.0.1:9/other', events: ['key.revoked'] })).body.id}`);
    const viaBearer = (await admin(kg, 'GET', '/audit-log?limit=2')).body.data as Array<{ action: string; actor: string }>;
    expect(viaBearer.map((e) => [e.action, e.actor])).toEqual([['webhook.deleted', 'admin'], ['webhook.created', 'admin']]);
    // A tenant's own endpoint: its write is in the tenant's audit log, naming the key that made it.
    const own = await self(kg, t.apiKey.key, 'POST', '/webhooks', { url: 'http://127.0.0.1:9/tenant', events: ['key.created'] });
    expect(own.status).toBe(201);
    const tenantLog = (await admin(kg, 'GET', `/tenants/${t.tenant.id}/audit-log?limit=5`)).body.data as Array<{ action: string; actor: string; details: { endpointId?: string } }>;
    expect(tenantLog[0]).toMatchObject({ action: 'webhook.created', actor: t.apiKey.id, details: { endpointId: own.body.id } });
  }, 60_000);

  it('an unknown token is refused', async () => {
    expectError(await bearer('x'.repeat(40), 'GET', '/tenants'), 401, 'invalid_api_key');
  });
});
