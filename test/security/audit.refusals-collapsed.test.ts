import { beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// A narrow key refused again and again must not be able to push a key's lifecycle record out of the capped
// audit log: 150 refused reads with `audit.maxEntries: 100` evicted the record of the key's creation. Repeated
// refusals of one actor, key and operation in one window are one entry carrying their count. Both stores.

const servers = useServers();
const stores: Record<string, KeygateProcess> = {};
const config = { audit: { maxEntries: 100 } };
beforeAll(async () => {
  [stores.redis, stores.embedded] = await Promise.all([servers.keygate({ config }), servers.keygate({ config, redisUrl: null })]);
});

async function auditLog(kg: KeygateProcess, tenantId: string): Promise<Array<{ action: string; keyId: string | null; details: Record<string, unknown> }>> {
  const out = [];
  let cursor: string | null = null;
  do {
    const r = await admin(kg, 'GET', `/tenants/${tenantId}/audit-log?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(r.status).toBe(200);
    out.push(...r.body.data);
    cursor = r.body.nextCursor;
  } while (cursor);
  return out;
}

describe.each(['redis', 'embedded'])('refusals in the audit log on the %s store', (store) => {
  it('150 refused reads leave the creation record in place, as one entry with a count', async () => {
    const kg = stores[store]!;
    const { tenant, key } = await createTenant(kg, { name: `audit-${store}`, plan: 'pro' });
    const wide = await self(kg, key, 'POST', '/api-keys', { name: 'wide' });
    const narrow = await self(kg, key, 'POST', '/api-keys', { name: 'narrow', permissions: ['api-keys:read', 'api-keys:delete'] });
    for (let i = 0; i < 150; i++) expect((await self(kg, narrow.body.key, 'GET', `/api-keys/${wide.body.id}`)).status).toBe(403);
    const log = await auditLog(kg, tenant.id);
    const denied = log.filter((e) => e.action === 'key.access_denied');
    console.log(`${store}: ${log.length} entries after 150 refusals; ${denied.length} key.access_denied; created record kept: ${log.some((e) => e.action === 'key.created' && e.keyId === wide.body.id)}`);
    expect(log.some((e) => e.action === 'key.created' && e.keyId === wide.body.id)).toBe(true);
    expect(denied).toHaveLength(1);
    expect(denied[0]!.keyId).toBe(wide.body.id);
    expect(denied[0]!.details).toMatchObject({ operation: 'read', count: 150 });
    expect(typeof denied[0]!.details.firstAt).toBe('string');
    // Another operation on the same key is its own entry.
    expect((await self(kg, narrow.body.key, 'DELETE', `/api-keys/${wide.body.id}`)).status).toBe(403);
    const again = (await auditLog(kg, tenant.id)).filter((e) => e.action === 'key.access_denied');
    expect(again.map((e) => [e.details.operation, e.details.count])).toEqual([['revoke', 1], ['read', 150]]);
  });
});
