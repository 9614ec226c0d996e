import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { admin, call, createTenant, expectError, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// Attacks on tenant isolation and on the bounds of the management API, each against a real keygate on a real
// redis-server and on the embedded store: another tenant's ids in paths and queries, cursors forged, replayed
// across tenants and endpoints, escalation by a narrow key, caps hit by parallel creates, and hostile JSON
// (deep nesting, 1e309, -0, `__proto__`). Every refusal must be the documented JSON error, with nothing written.

const servers = useServers();

const STORES = [
  { store: 'redis', redisUrl: undefined },
  { store: 'memory', redisUrl: null },
] as const;

let prefixes = 0;
const prefix = () => `tb${++prefixes}:`;
const READER_TOKEN = 'read-only-operator-token-0123456789';

async function keygate(redisUrl: null | undefined): Promise<KeygateProcess> {
  const tokens = [{ name: 'viewer', role: 'read', sha256: createHash('sha256').update(READER_TOKEN).digest('hex') }];
  return servers.keygate({ ...(redisUrl === null ? { redisUrl } : {}), config: { redis: { keyPrefix: prefix() }, admin: { tokens }, webhooks: { enabled: true } } });
}

async function allAudit(kg: KeygateProcess, tenantId: string): Promise<Array<{ action: string; keyId: string | null; details: Record<string, unknown> }>> {
  const all = [];
  let cursor: string | null = null;
  do {
    const page = await admin(kg, 'GET', `/tenants/${tenantId}/audit-log?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(page.status).toBe(200);
    all.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor);
  return all;
}

const keyCount = async (kg: KeygateProcess, tenantId: string): Promise<number> => (await admin(kg, 'GET', `/tenants/${tenantId}/summary`)).body.keyCount as number;

/** A nested array `depth` levels deep, as JSON text (no object is built: the client could not stringify it either). */
const deepJson = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

/** A raw JSON body, sent as is. */
const rawSelf = (kg: KeygateProcess, key: string, method: string, path: string, body: string) =>
  call<any>(`${kg.url}/keygate/v1${path}`, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body });

describe.each(STORES)('tenant isolation and bounds ($store)', ({ redisUrl }) => {
  it('another tenant\'s key, endpoint and usage are not found through any route, and are left as they were', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const b = await createTenant(kg, { name: 'b', plan: 'pro' });
    const bChild = (await self(kg, b.key, 'POST', '/api-keys', { name: 'b-child', permissions: ['calls:write'] })).body;
    const bHook = await self(kg, b.key, 'POST', '/webhooks', { url: 'https://hooks.example.com/b' });
    expect(bHook.status).toBe(201);
    for (const id of [bChild.id, b.apiKey.id]) {
      expectError(await self(kg, a.key, 'GET', `/api-keys/${id}`), 404, 'not_found');
      expectError(await self(kg, a.key, 'PATCH', `/api-keys/${id}`, { isActive: false }), 404, 'not_found');
      expectError(await self(kg, a.key, 'POST', `/api-keys/${id}/rotate`, {}), 404, 'not_found');
      expectError(await self(kg, a.key, 'DELETE', `/api-keys/${id}`), 404, 'not_found');
    }
    for (const [method, path] of [['GET', ''], ['DELETE', ''], ['POST', '/enable'], ['POST', '/rotate-secret'], ['GET', '/deliveries']] as const) {
      expectError(await self(kg, a.key, method, `/webhooks/${bHook.body.id}${path}`, method === 'POST' ? {} : undefined), 404, 'not_found');
    }
    expect((await self(kg, a.key, 'GET', '/webhooks')).body.data).toEqual([]);
    // B's key through the admin route of tenant A: the key lookup is the path's tenant's.
    expectError(await admin(kg, 'GET', `/tenants/${a.tenant.id}/api-keys/${bChild.id}`), 404, 'not_found');
    // B is untouched: its key active and its endpoint there, with the one secret it was made with.
    const after = await self(kg, b.key, 'GET', `/api-keys/${bChild.id}`);
    expect({ status: after.status, isActive: after.body.isActive }).toEqual({ status: 200, isActive: true });
    expect((await self(kg, b.key, 'GET', `/webhooks/${bHook.body.id}`)).body.secretsActive).toBe(1);
    // No refusal or write about B's key landed in either audit log.
    const mentions = (log: Array<{ keyId: string | null; details: Record<string, unknown> }>) => log.filter((e) => e.keyId === bChild.id || JSON.stringify(e.details).includes(bHook.body.id));
    expect(mentions(await allAudit(kg, a.tenant.id))).toEqual([]);
    expect((await allAudit(kg, b.tenant.id)).filter((e) => e.action !== 'webhook.created' && e.keyId === bChild.id).map((e) => e.action)).toEqual(['key.created']);
  });

  it('a usage query names a key by its id: anything else is a 400, never a read of other counters', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    for (const keyId of ['*', 'garbage', 'key_x:requests', `${a.apiKey.id}:allowed`, 'x'.repeat(5000)]) {
      const r = await self(kg, a.key, 'GET', `/usage?keyId=${encodeURIComponent(keyId)}`);
      expectError(r, 400, 'validation_error');
      expect(r.body.error.details[0].path).toBe('query.keyId');
    }
    expect((await self(kg, a.key, 'GET', `/usage?keyId=${a.apiKey.id}`)).status).toBe(200);
  });

  it('cursors: forged, from another tenant, from another list, past a deleted key — never another tenant\'s keys, never a 5xx', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const b = await createTenant(kg, { name: 'b', plan: 'pro' });
    const aIds = new Set<string>([a.apiKey.id]);
    const bIds = new Set<string>([b.apiKey.id]);
    for (let i = 0; i < 4; i++) {
      aIds.add((await self(kg, a.key, 'POST', '/api-keys', { permissions: ['calls:write'] })).body.id);
      bIds.add((await self(kg, b.key, 'POST', '/api-keys', { permissions: ['calls:write'] })).body.id);
    }
    const bPage = await self(kg, b.key, 'GET', '/api-keys?limit=1');
    const bCursor = bPage.body.nextCursor as string;
    expect(bCursor).toBeTruthy();
    // B's sealed cursor replayed by A: only A's own keys, whatever the cursor pointed at.
    const replay = await self(kg, a.key, 'GET', `/api-keys?limit=100&cursor=${bCursor}`);
    expect(replay.status).toBe(200);
    for (const k of replay.body.data) expect(aIds.has(k.id)).toBe(true);
    // A cursor that is no sealed cursor (a raw key id of B, a forged one, one with a flipped byte) is a 400.
    const flipped = Buffer.from(bCursor, 'base64url');
    flipped[flipped.length - 1]! ^= 1;
    for (const c of [[...bIds][1]!, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', flipped.toString('base64url')]) {
      expectError(await self(kg, a.key, 'GET', `/api-keys?cursor=${encodeURIComponent(c)}`), 400, 'validation_error');
    }
    // A key-list cursor at the audit log, garbage and a stream-looking id: a 400 or a page of A's own log, never 5xx.
    for (const c of [bCursor, 'garbage', '(', '99999999999999999999-0', '0-0', '-', '+']) {
      for (const r of [await self(kg, a.key, 'GET', `/audit-log?cursor=${encodeURIComponent(c)}`), await admin(kg, 'GET', `/tenants/${a.tenant.id}/audit-log?cursor=${encodeURIComponent(c)}`)]) {
        if (r.status === 200) for (const e of r.body.data) expect(bIds.has(e.keyId)).toBe(false);
        else expectError(r, 400, 'validation_error');
      }
    }
    // The page's last key revoked: its cursor still leads on, to A's keys only.
    const aPage = await self(kg, a.key, 'GET', '/api-keys?limit=2');
    const last = aPage.body.data.at(-1).id as string;
    if (last !== a.apiKey.id) expect((await self(kg, a.key, 'DELETE', `/api-keys/${last}`)).status).toBe(204);
    const rest = await self(kg, a.key, 'GET', `/api-keys?limit=100&cursor=${aPage.body.nextCursor}`);
    expect(rest.status).toBe(200);
    for (const k of rest.body.data) expect(aIds.has(k.id) && k.id !== last).toBe(true);
  });

  it('a narrow key mints nothing wider, whatever the spelling, and cannot widen itself', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const narrow = (await self(kg, a.key, 'POST', '/api-keys', {
      permissions: ['api-keys:read', 'api-keys:write', 'calls:write'],
      allowedAssistants: ['asst_1'],
      allowedOrigins: ['https://app.example.com'],
      rateLimit: { requestsPerMinute: 500 },
      quota: { requestsPerMonth: 100 },
      expiresInDays: 30,
    })).body;
    expect(narrow.key).toBeTruthy();
    const before = await keyCount(kg, a.tenant.id);
    const wider = [
      { permissions: ['*'] },
      { permissions: ['api-keys:*'] },
      { permissions: ['api-keys:delete'] },
      { permissions: ['calls:write', 'calls:write', 'calls:*'] },
      { permissions: ['calls:write'], allowedAssistants: null },
      { permissions: ['calls:write'], allowedAssistants: ['asst_1', 'asst_2'] },
      { permissions: ['calls:write'], allowedOrigins: null },
      { permissions: ['calls:write'], allowedOrigins: ['https://*.example.com'] },
      { permissions: ['calls:write'], allowedOrigins: ['https://APP.example.com'] },
      { permissions: ['calls:write'], rateLimit: { requestsPerMinute: 501 } },
      { permissions: ['calls:write'], rateLimit: { requestsPerMinute: null } },
      { permissions: ['calls:write'], quota: { requestsPerMonth: 101 } },
      { permissions: ['calls:write'], transientAssistant: true },
      { permissions: ['calls:write'], expiresInDays: 90 },
    ];
    let made = 0;
    for (const body of wider) {
      const r = await self(kg, narrow.key, 'POST', '/api-keys', body);
      if (r.status === 201) {
        // An explicit null is read as "what the creator has": accepted only as that, never as "no restriction".
        made++;
        const k = r.body;
        expect({ as: k.allowedAssistants, o: k.allowedOrigins, rpm: k.rateLimit.requestsPerMinute, rpmo: k.quota.requestsPerMonth, t: k.transientAssistant }, JSON.stringify(body))
          .toEqual({ as: ['asst_1'], o: ['https://app.example.com'], rpm: 500, rpmo: 100, t: false });
        expect(Date.parse(k.expiresAt)).toBeLessThanOrEqual(Date.parse(narrow.expiresAt));
        continue;
      }
      expect([400, 403], JSON.stringify(body)).toContain(r.status);
      expectError(r, r.status, r.status === 403 ? 'insufficient_permissions' : 'validation_error');
    }
    expect(await keyCount(kg, a.tenant.id)).toBe(before + made);
    // An empty list is the narrowest there is: it means none, not all.
    const none = await self(kg, narrow.key, 'POST', '/api-keys', { permissions: [], allowedAssistants: [], allowedOrigins: [] });
    expect(none.status).toBe(201);
    expect({ p: none.body.permissions, as: none.body.allowedAssistants, o: none.body.allowedOrigins }).toEqual({ p: [], as: [], o: [] });
    expectError(await self(kg, none.body.key, 'GET', '/api-keys/current'), 403, 'insufficient_permissions');
    // On itself, a PATCH only narrows.
    const selfWiden = [
      { permissions: ['api-keys:read', 'api-keys:write', 'calls:write', 'api-keys:delete'] },
      { allowedAssistants: null },
      { allowedOrigins: ['https://app.example.com', 'https://evil.example.com'] },
      { rateLimit: { requestsPerMinute: 1000 } },
      { quota: { requestsPerMonth: null } },
      { expiresAt: null },
      { expiresAt: new Date(Date.now() + 60 * 86_400_000).toISOString() },
    ];
    const snapshot = (await self(kg, narrow.key, 'GET', '/api-keys/current')).body;
    for (const body of selfWiden) {
      const r = await self(kg, narrow.key, 'PATCH', '/api-keys/current', body);
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const now = (await self(kg, narrow.key, 'GET', '/api-keys/current')).body;
    expect({ ...now, lastUsedAt: null }).toEqual({ ...snapshot, lastUsedAt: null });
    // A session token minted by it is no wider than the key either.
    for (const body of [{ permissions: ['*'] }, { allowedAssistants: ['asst_2'] }, { allowedOrigins: ['https://other.example.com'] }]) {
      const r = await self(kg, narrow.key, 'POST', '/session-tokens', body);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.body.error?.code).toBeTruthy();
    }
  });

  it('a revoked or disabled key stops managing at once', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const make = async () => (await self(kg, a.key, 'POST', '/api-keys', { permissions: ['api-keys:read', 'api-keys:write'] })).body;
    const revoked = await make();
    expect((await self(kg, revoked.key, 'GET', '/api-keys')).status).toBe(200);
    expect((await self(kg, a.key, 'DELETE', `/api-keys/${revoked.id}`)).status).toBe(204);
    expect((await self(kg, revoked.key, 'POST', '/api-keys', { permissions: [] })).status).toBe(401);
    const disabled = await make();
    expect((await self(kg, disabled.key, 'GET', '/api-keys')).status).toBe(200);
    expect((await self(kg, a.key, 'PATCH', `/api-keys/${disabled.id}`, { isActive: false })).status).toBe(200);
    const r = await self(kg, disabled.key, 'POST', '/api-keys', { permissions: [] });
    expect(r.status).toBeGreaterThanOrEqual(401);
    expect(r.status).toBeLessThan(404);
  });

  it('a read operator writes nothing, through any route', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const asReader = (method: string, path: string, body?: unknown) =>
      call<any>(`${kg.opsUrl}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${READER_TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const writes: Array<[string, string, unknown?]> = [
      ['POST', '/tenants', { name: 'x' }],
      ['PATCH', `/tenants/${a.tenant.id}`, { status: 'suspended' }],
      ['DELETE', `/tenants/${a.tenant.id}`],
      ['POST', `/tenants/${a.tenant.id}/api-keys`, {}],
      ['PATCH', `/tenants/${a.tenant.id}/api-keys/${a.apiKey.id}`, { isActive: false }],
      ['POST', `/tenants/${a.tenant.id}/api-keys/${a.apiKey.id}/rotate`, {}],
      ['DELETE', `/tenants/${a.tenant.id}/api-keys/${a.apiKey.id}`],
      ['POST', `/tenants/${a.tenant.id}/session-tokens`, { keyId: a.apiKey.id }],
      ['POST', '/webhooks', { url: 'https://hooks.example.com/x' }],
      ['PUT', `/tenants/${a.tenant.id}`, { status: 'suspended' }],
    ];
    for (const [method, path, body] of writes) expectError(await asReader(method, path, body), 403, 'insufficient_permissions');
    expect((await asReader('GET', `/tenants/${a.tenant.id}`)).status).toBe(200);
    expect(await keyCount(kg, a.tenant.id)).toBe(1);
    expect((await self(kg, a.key, 'GET', '/api-keys/current')).body.isActive).toBe(true);
  });

  it('50 parallel creates at the key cap less one make exactly one key, one audit entry', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro', maxKeys: 5 });
    for (let i = 0; i < 3; i++) expect((await self(kg, a.key, 'POST', '/api-keys', { permissions: [] })).status).toBe(201);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => self(kg, a.key, 'POST', '/api-keys', { name: `race-${i}`, permissions: [] })));
    const made = replies.filter((r) => r.status === 201);
    expect(made.length).toBe(1);
    for (const r of replies) if (r.status !== 201) expectError(r, 409, 'key_limit_reached');
    expect(await keyCount(kg, a.tenant.id)).toBe(5);
    const created = (await allAudit(kg, a.tenant.id)).filter((e) => e.action === 'key.created' && String(e.details.name).startsWith('race-'));
    expect(created.map((e) => e.keyId)).toEqual([made[0]!.body.id]);
    // The same at the webhook endpoint cap.
    const hooks = await Promise.all(Array.from({ length: 30 }, (_, i) => self(kg, a.key, 'POST', '/webhooks', { url: `https://hooks.example.com/${i}` })));
    expect(hooks.filter((r) => r.status === 201).length).toBe(10);
    for (const r of hooks) if (r.status !== 201) expectError(r, 400, 'validation_error');
    expect((await self(kg, a.key, 'GET', '/webhooks')).body.data.length).toBe(10);
  });

  it('hostile JSON: deep nesting, 1e309, -0, huge and fractional numbers are 400s that write nothing', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const before = await keyCount(kg, a.tenant.id);
    const auditBefore = (await allAudit(kg, a.tenant.id)).length;
    const bodies = [
      `{"metadata":{"deep":${deepJson(7000)}}}`,
      `{"metadata":{"deep":${deepJson(600)}}}`,
      '{"rateLimit":{"requestsPerMinute":1e309}}',
      '{"rateLimit":{"requestsPerMinute":-0}}',
      '{"maxConcurrentConnections":1e300}',
      '{"quota":{"requestsPerMonth":1.5}}',
      '{"expiresInDays":-0}',
      '{"name":""}',
      `{"name":"${'é'.repeat(101)}"}`,
      '{"permissions":["calls:write"],"permissions":"*"}',
      '{"__proto__":{"permissions":["*"]}}',
      '{"constructor":{"prototype":{"x":1}}}',
      '[]',
      '"a"',
      'null',
    ];
    for (const body of bodies) {
      const r = await rawSelf(kg, a.key, 'POST', '/api-keys', body);
      expect(r.status, body.slice(0, 80)).toBeGreaterThanOrEqual(400);
      expect(r.status, body.slice(0, 80)).toBeLessThan(500);
      expect(r.body.error?.code, body.slice(0, 80)).toMatch(/^(validation_error|malformed_request|payload_too_large)$/);
    }
    // The same on a PATCH and a session token's metadata.
    const patch = await rawSelf(kg, a.key, 'PATCH', `/api-keys/${a.apiKey.id}`, `{"metadata":{"deep":${deepJson(7000)}}}`);
    expectError(patch, 400, 'validation_error');
    const token = await rawSelf(kg, a.key, 'POST', '/session-tokens', `{"metadata":{"deep":${deepJson(7000)}}}`);
    expect(token.status).toBeGreaterThanOrEqual(400);
    expect(token.status).toBeLessThan(500);
    expect(await keyCount(kg, a.tenant.id)).toBe(before);
    expect((await allAudit(kg, a.tenant.id)).length).toBe(auditBefore);
    expect(kg.output()).not.toContain('unhandled error');
  });

  it('metadata keys named __proto__ or constructor and unicode are kept as sent, or refused; never dropped', async () => {
    const kg = await keygate(redisUrl);
    const a = await createTenant(kg, { name: 'a', plan: 'pro' });
    const metadata = '{"__proto__":{"admin":true},"constructor":{"prototype":{"p":1}},"ключ":"値 🎉","":"empty"}';
    const r = await rawSelf(kg, a.key, 'POST', '/api-keys', `{"name":"名前 🎉","permissions":[],"metadata":${metadata}}`);
    if (r.status === 201) {
      const read = await self(kg, a.key, 'GET', `/api-keys/${r.body.id}`);
      expect(JSON.stringify(read.body.metadata)).toBe(metadata);
      expect(read.body.name).toBe('名前 🎉');
    } else {
      expectError(r, 400, 'validation_error');
      expect(r.body.error.details).toEqual([{ path: 'metadata.__proto__', message: 'the key __proto__ is not allowed' }]);
    }
    // Without __proto__, everything else is kept as sent.
    const kept = '{"constructor":{"prototype":{"p":1}},"ключ":"値 🎉","":"empty","nested":{"__proto__":1}}';
    const k = await rawSelf(kg, a.key, 'POST', '/api-keys', `{"name":"名前 🎉","permissions":[],"metadata":${kept}}`);
    if (k.status === 201) {
      const read = await self(kg, a.key, 'GET', `/api-keys/${k.body.id}`);
      expect(JSON.stringify(read.body.metadata)).toBe(kept);
      expect(read.body.name).toBe('名前 🎉');
    } else {
      expect(k.body.error.details).toEqual([{ path: 'metadata.nested.__proto__', message: 'the key __proto__ is not allowed' }]);
    }
    // Session-token metadata and PATCH are held to the same.
    expectError(await rawSelf(kg, a.key, 'PATCH', `/api-keys/${a.apiKey.id}`, '{"metadata":{"__proto__":{"x":1}}}'), 400, 'validation_error');
    const token = await rawSelf(kg, a.key, 'POST', '/session-tokens', '{"metadata":{"__proto__":{"x":1}}}');
    expect(token.status).toBe(400);
    expect(token.body.error.code).toBe('validation_error');
  });
});
