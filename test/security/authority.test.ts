import { beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, expectError, self, type Reply } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// SPEC §3 "Authority over keys": a key may read, change, rotate, disable or revoke another key only when its own
// permissions cover every permission of the target; otherwise 403 insufficient_permissions, audited. A PATCH never
// widens; the admin token has authority over every key. Issue 13, row 1: a key holding only api-keys:write
// rotated the tenant's `*` key and got its new value.

const servers = useServers();
let kg: KeygateProcess;

interface Made {
  id: string;
  key: string;
}

async function make(owner: string, permissions: string[], name = permissions.join('+')): Promise<Made> {
  const r = await self(kg, owner, 'POST', '/api-keys', { name, permissions });
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.id, key: r.body.key };
}

/** A tenant with its `*` key (`root`), the three narrow keys of the audit, and a key none of them covers. */
async function scene() {
  const { tenant, key, apiKey } = await createTenant(kg, { name: 'authority', plan: 'pro' });
  const root: Made = { id: apiKey.id, key };
  const writer = await make(key, ['api-keys:write']);
  const reader = await make(key, ['api-keys:read']);
  const deleter = await make(key, ['api-keys:delete', 'api-keys:write']);
  const calls = await make(key, ['calls:read']);
  return { tenant, root, writer, reader, deleter, calls };
}

const adminKey = (tenantId: string, keyId: string) => admin(kg, 'GET', `/tenants/${tenantId}/api-keys/${keyId}`);

async function auditOf(tenantId: string): Promise<Array<{ action: string; actor: string; keyId: string | null; details: Record<string, unknown> }>> {
  const r = await admin(kg, 'GET', `/tenants/${tenantId}/audit-log?limit=100`);
  expect(r.status).toBe(200);
  return r.body.data;
}

function expectRefused(reply: Reply): void {
  expectError(reply, 403, 'insufficient_permissions');
  expect(JSON.stringify(reply.body)).not.toMatch(/kg_sk_/);
}

beforeAll(async () => {
  kg = await servers.keygate();
});

describe('a narrow key has no authority over a wider key', () => {
  it('row 1: api-keys:write alone cannot rotate the `*` key, which keeps working with its old value', async () => {
    const { tenant, root, writer } = await scene();
    const before = (await adminKey(tenant.id, root.id)).body;

    for (const body of [undefined, { gracePeriodSeconds: 0 }, { gracePeriodSeconds: 60 }]) {
      expectRefused(await self(kg, writer.key, 'POST', `/api-keys/${root.id}/rotate`, body));
    }
    expect((await self(kg, root.key, 'GET', '/tenants/me')).status).toBe(200);
    expect((await adminKey(tenant.id, root.id)).body).toEqual(before);
    expect((await auditOf(tenant.id)).map((e) => e.action)).not.toContain('key.rotated');
  });

  it('api-keys:write alone cannot change, disable or narrow the `*` key, nor a key holding what it lacks', async () => {
    const { tenant, root, writer, calls } = await scene();
    for (const target of [root, calls]) {
      const before = (await adminKey(tenant.id, target.id)).body;
      for (const body of [{ name: 'taken' }, { isActive: false }, { permissions: ['calls:read'] }, { enforceMtls: false }, { metadata: { owner: 'me' } }, {}]) {
        expectRefused(await self(kg, writer.key, 'PATCH', `/api-keys/${target.id}`, body));
      }
      expectRefused(await self(kg, writer.key, 'POST', `/api-keys/${target.id}/rotate`, {}));
      expect((await adminKey(tenant.id, target.id)).body).toEqual(before);
      expect((await self(kg, target.key, 'GET', '/tenants/me')).status).toBe(200);
    }
  });

  it('api-keys:delete + api-keys:write cannot revoke, rotate or change the `*` key nor calls:read', async () => {
    const { tenant, root, deleter, calls } = await scene();
    for (const target of [root, calls]) {
      expectRefused(await self(kg, deleter.key, 'DELETE', `/api-keys/${target.id}`));
      expectRefused(await self(kg, deleter.key, 'PATCH', `/api-keys/${target.id}`, { isActive: false }));
      expectRefused(await self(kg, deleter.key, 'POST', `/api-keys/${target.id}/rotate`));
      expect((await adminKey(tenant.id, target.id)).status).toBe(200);
      expect((await self(kg, target.key, 'GET', '/tenants/me')).status).toBe(200);
    }
  });

  it('api-keys:read alone cannot read a wider key, and its list leaves wider keys out', async () => {
    const { tenant, root, reader, writer, deleter, calls } = await scene();
    for (const target of [root, writer, deleter, calls]) {
      expectRefused(await self(kg, reader.key, 'GET', `/api-keys/${target.id}`));
    }
    const peer = await make(root.key, ['api-keys:read'], 'peer');
    const list = await self(kg, reader.key, 'GET', '/api-keys');
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: { id: string }) => k.id).sort()).toEqual([reader.id, peer.id].sort());
    expect(list.body.nextCursor).toBeNull();
    for (const k of list.body.data) expect(k.permissions).toEqual(['api-keys:read']);
    // The admin still lists every key of the tenant.
    expect((await admin(kg, 'GET', `/tenants/${tenant.id}/api-keys`)).body.data).toHaveLength(6);
  });

  it("usage:read alone cannot read a wider key's usage, only its own and narrower keys'", async () => {
    const { root, calls } = await scene();
    const meter = await make(root.key, ['usage:read', 'calls:read'], 'meter');
    expectRefused(await self(kg, meter.key, 'GET', `/usage?keyId=${root.id}`));
    expect((await self(kg, meter.key, 'GET', `/usage?keyId=${calls.id}`)).status).toBe(200);
    expect((await self(kg, meter.key, 'GET', `/usage?keyId=${meter.id}`)).status).toBe(200);
    expect((await self(kg, meter.key, 'GET', '/usage')).status).toBe(200); // the tenant's totals name no key
  });

  it('pages of a filtered list hold only covered keys, whatever the page size', async () => {
    const { root, reader } = await scene();
    const peers = [await make(root.key, ['api-keys:read']), await make(root.key, ['api-keys:read'])];
    for (let i = 0; i < 3; i++) await make(root.key, ['usage:read']); // wider, interleaved in id order
    peers.push(await make(root.key, ['api-keys:read']));
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const r: Reply = await self(kg, reader.key, 'GET', `/api-keys?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.data.length).toBeLessThanOrEqual(1);
      seen.push(...r.body.data.map((k: { id: string }) => k.id));
      cursor = r.body.nextCursor;
      if (!cursor) break;
    }
    expect(cursor).toBeNull();
    expect(seen.sort()).toEqual([reader.id, ...peers.map((p) => p.id)].sort());
  });

  it('a PATCH never widens: not past the target, so not past the caller', async () => {
    const { tenant, root, deleter } = await scene();
    const covered = await make(deleter.key, ['api-keys:write'], 'covered');
    for (const permissions of [['*'], ['api-keys:write', 'calls:read'], ['api-keys:*'], ['api-keys:delete']]) {
      const r = await self(kg, deleter.key, 'PATCH', `/api-keys/${covered.id}`, { permissions });
      expectError(r, 400, 'validation_error');
    }
    // Not even the `*` key can widen a key, nor itself regain what it gave up.
    expectError(await self(kg, root.key, 'PATCH', `/api-keys/${covered.id}`, { permissions: ['calls:read'] }), 400, 'validation_error');
    expect((await adminKey(tenant.id, covered.id)).body.permissions).toEqual(['api-keys:write']);
    expect((await self(kg, deleter.key, 'PATCH', '/api-keys/current', { permissions: ['api-keys:write'] })).status).toBe(200);
    expectError(await self(kg, deleter.key, 'PATCH', '/api-keys/current', { permissions: ['api-keys:write', 'api-keys:delete'] }), 400, 'validation_error');
  });

  it('every refusal is in the tenant audit log, naming the operation and what the caller lacked', async () => {
    const { tenant, root, writer, reader, deleter } = await scene();
    expectRefused(await self(kg, writer.key, 'POST', `/api-keys/${root.id}/rotate`));
    expectRefused(await self(kg, writer.key, 'PATCH', `/api-keys/${root.id}`, { isActive: false }));
    expectRefused(await self(kg, reader.key, 'GET', `/api-keys/${deleter.id}`));
    expectRefused(await self(kg, deleter.key, 'DELETE', `/api-keys/${root.id}`));
    const denied = (await auditOf(tenant.id)).filter((e) => e.action === 'key.access_denied').reverse();
    expect(denied).toEqual([
      expect.objectContaining({ actor: writer.id, keyId: root.id, details: expect.objectContaining({ operation: 'rotate', permissionsMissing: ['*'] }) }),
      expect.objectContaining({ actor: writer.id, keyId: root.id, details: expect.objectContaining({ operation: 'update', permissionsMissing: ['*'] }) }),
      expect.objectContaining({ actor: reader.id, keyId: deleter.id, details: { operation: 'read', permissionsMissing: ['api-keys:delete', 'api-keys:write'], count: 1, firstAt: expect.any(String) } }),
      expect.objectContaining({ actor: deleter.id, keyId: root.id, details: expect.objectContaining({ operation: 'revoke', permissionsMissing: ['*'] }) }),
    ]);
  });

  it('another tenant’s key is 404 not_found, even to a `*` key, and nothing is audited there', async () => {
    const a = await scene();
    const b = await scene();
    for (const target of [b.root, b.calls]) {
      for (const reader of [a.root, a.reader]) expectError(await self(kg, reader.key, 'GET', `/api-keys/${target.id}`), 404, 'not_found');
      for (const writer of [a.root, a.writer, a.deleter]) {
        expectError(await self(kg, writer.key, 'PATCH', `/api-keys/${target.id}`, { name: 'x' }), 404, 'not_found');
        expectError(await self(kg, writer.key, 'POST', `/api-keys/${target.id}/rotate`), 404, 'not_found');
      }
      for (const deleter of [a.root, a.deleter]) expectError(await self(kg, deleter.key, 'DELETE', `/api-keys/${target.id}`), 404, 'not_found');
      expect((await self(kg, target.key, 'GET', '/tenants/me')).status).toBe(200);
    }
    // A wider key of the caller's own tenant is 403: its existence is no secret there, its contents are.
    expectRefused(await self(kg, a.reader.key, 'GET', `/api-keys/${a.root.id}`));
    for (const t of [a.tenant, b.tenant]) {
      const denied = (await auditOf(t.id)).filter((e) => e.action === 'key.access_denied');
      expect(denied.filter((e) => [b.root.id, b.calls.id].includes(e.keyId ?? ''))).toEqual([]);
    }
  });
});

describe('authority that holds', () => {
  it('a narrow key acts on keys it covers and on itself', async () => {
    const { tenant, writer, deleter, reader } = await scene();
    const child = await make(writer.key, ['api-keys:write'], 'child');
    expect((await self(kg, writer.key, 'PATCH', `/api-keys/${child.id}`, { name: 'renamed' })).body.name).toBe('renamed');
    const rotated = await self(kg, writer.key, 'POST', `/api-keys/${child.id}/rotate`);
    expect(rotated.status).toBe(201);
    expect((await self(kg, rotated.body.key, 'GET', '/tenants/me')).status).toBe(200);
    expectError(await self(kg, child.key, 'GET', '/tenants/me'), 401, 'invalid_api_key');
    expect((await self(kg, writer.key, 'PATCH', `/api-keys/${child.id}`, { isActive: false })).body.isActive).toBe(false);
    expect((await self(kg, writer.key, 'PATCH', `/api-keys/${child.id}`, { isActive: true })).body.isActive).toBe(true);

    // Itself, by id and by `current`.
    expect((await self(kg, writer.key, 'PATCH', `/api-keys/${writer.id}`, { name: 'me' })).status).toBe(200);
    expect((await self(kg, reader.key, 'GET', '/api-keys/current')).body.id).toBe(reader.id);
    expect((await self(kg, reader.key, 'GET', `/api-keys/${reader.id}`)).body.id).toBe(reader.id);
    const own = await self(kg, writer.key, 'POST', '/api-keys/current/rotate');
    expect(own.status).toBe(201);
    expect(own.body.id).toBe(writer.id);

    // api-keys:delete + write covers a key holding either.
    const doomed = await make(deleter.key, ['api-keys:delete'], 'doomed');
    expect((await self(kg, deleter.key, 'DELETE', `/api-keys/${doomed.id}`)).status).toBe(204);
    expectError(await adminKey(tenant.id, doomed.id), 404, 'not_found');
    expect((await auditOf(tenant.id)).map((e) => e.action)).not.toContain('key.access_denied');
  });

  it('the `*` key covers every key of its tenant', async () => {
    const { root, writer, calls } = await scene();
    for (const target of [writer, calls]) {
      expect((await self(kg, root.key, 'GET', `/api-keys/${target.id}`)).status).toBe(200);
      expect((await self(kg, root.key, 'PATCH', `/api-keys/${target.id}`, { name: 'by root' })).status).toBe(200);
      expect((await self(kg, root.key, 'POST', `/api-keys/${target.id}/rotate`)).status).toBe(201);
      expect((await self(kg, root.key, 'DELETE', `/api-keys/${target.id}`)).status).toBe(204);
    }
  });

  it('the admin token has authority over every key', async () => {
    const { tenant, root, writer } = await scene();
    const base = `/tenants/${tenant.id}/api-keys`;
    expect((await admin(kg, 'GET', base)).body.data).toHaveLength(5);
    expect((await admin(kg, 'GET', `${base}/${root.id}`)).status).toBe(200);
    expect((await admin(kg, 'PATCH', `${base}/${root.id}`, { name: 'platform' })).body.name).toBe('platform');
    expect((await admin(kg, 'PATCH', `${base}/${root.id}`, { permissions: ['api-keys:*', 'calls:*'] })).status).toBe(200);
    const rotated = await admin(kg, 'POST', `${base}/${root.id}/rotate`);
    expect(rotated.status).toBe(201);
    expect((await self(kg, rotated.body.key, 'GET', '/tenants/me')).status).toBe(200);
    expect((await admin(kg, 'DELETE', `${base}/${writer.id}`)).status).toBe(204);
    expect((await admin(kg, 'DELETE', `${base}/${root.id}`)).status).toBe(204);
    expect((await auditOf(tenant.id)).map((e) => e.action)).not.toContain('key.access_denied');
  });
});

describe('restrictions are part of what a key holds', () => {
  it('a key bound to assistants or origins has no authority over an unbound key, even with every permission', async () => {
    const { root } = await scene();
    const bound = (await self(kg, root.key, 'POST', '/api-keys', { permissions: ['*'], allowedAssistants: ['asst_ok'] })).body;
    const free = await make(root.key, ['calls:read'], 'free');
    expectRefused(await self(kg, bound.key, 'POST', `/api-keys/${free.id}/rotate`, {}));
    expectRefused(await self(kg, bound.key, 'GET', `/api-keys/${root.id}`));
    const origins = (await self(kg, root.key, 'POST', '/api-keys', { permissions: ['*'], allowedOrigins: ['https://app.example.com'] })).body;
    expectRefused(await self(kg, origins.key, 'DELETE', `/api-keys/${free.id}`));
    // What it covers — a key bound at least as tightly — it manages.
    const child = (await self(kg, bound.key, 'POST', '/api-keys', { permissions: ['calls:read'] })).body;
    expect(child.allowedAssistants).toEqual(['asst_ok']);
    expect((await self(kg, bound.key, 'POST', `/api-keys/${child.id}/rotate`, {})).status).toBe(201);
  });

  it('a child inherits its creator’s mTLS binding and expires no later than its creator', async () => {
    const kg2 = await servers.keygate({ config: { tls: { trustXfccFrom: ['127.0.0.1/32'] } } });
    const { key } = await createTenant(kg2, { name: 'inherit', plan: 'pro' });
    const hash = 'ab'.repeat(32);
    const soon = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const parent = (await self(kg2, key, 'POST', '/api-keys', { permissions: ['api-keys:write', 'calls:read'], enforceMtls: true, clientCertFingerprints: [hash], expiresAt: soon })).body;
    const xfcc = { 'x-api-key': parent.key, 'x-forwarded-client-cert': `Hash=${hash}`, 'content-type': 'application/json' };
    const made = await fetch(`${kg2.url}/keygate/v1/api-keys`, { method: 'POST', headers: xfcc, body: JSON.stringify({ permissions: ['calls:read'] }) });
    const child = (await made.json()) as { enforceMtls: boolean; clientCertFingerprints: string[]; expiresAt: string };
    expect(made.status).toBe(201);
    expect(child).toMatchObject({ enforceMtls: true, clientCertFingerprints: [hash], expiresAt: soon });
    const unbound = await fetch(`${kg2.url}/keygate/v1/api-keys`, { method: 'POST', headers: xfcc, body: JSON.stringify({ permissions: ['calls:read'], enforceMtls: false }) });
    expect(unbound.status).toBe(403);
    const later = await fetch(`${kg2.url}/keygate/v1/api-keys`, { method: 'POST', headers: xfcc, body: JSON.stringify({ permissions: ['calls:read'], expiresInDays: 30 }) });
    expect(later.status).toBe(403);
  });

  it('an explicit expiry is bounded by keys.allowedExpiryDays where keys must expire', async () => {
    const { root } = await scene();
    const far = await self(kg, root.key, 'POST', '/api-keys', { permissions: ['calls:read'], expiresAt: '9999-01-01T00:00:00Z' });
    expectError(far, 400, 'validation_error');
    expect(far.body.error.details).toContainEqual(expect.objectContaining({ path: 'expiresAt' }));
  });

  it('the `*` key still loosens what it covers: re-pins, adds assistants, lifts origins of a narrower key', async () => {
    const { root } = await scene();
    const child = (await self(kg, root.key, 'POST', '/api-keys', { permissions: ['calls:read', 'api-keys:write'], allowedAssistants: ['asst_1'], allowedOrigins: ['https://a.example.com'] })).body;
    const patched = await self(kg, root.key, 'PATCH', `/api-keys/${child.id}`, { allowedAssistants: ['asst_1', 'asst_2'], allowedOrigins: null });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ allowedAssistants: ['asst_1', 'asst_2'], allowedOrigins: null });
    // The child on itself only narrows.
    expect((await self(kg, child.key, 'PATCH', '/api-keys/current', { allowedAssistants: ['asst_1', 'asst_3'] })).status).toBe(400);
  });
});
