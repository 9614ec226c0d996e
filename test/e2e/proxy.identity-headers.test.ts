import { beforeAll, describe, expect, it } from 'vitest';
import { createTenant, proxied, rawRequest, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

const servers = useServers();
let kg: KeygateProcess;

beforeAll(async () => {
  kg = await servers.keygate();
});

describe('what the upstream sees', () => {
  it('gets the identity headers with the right values and never the credential', async () => {
    const { tenant, key } = await createTenant(kg, { name: 'hdr', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read', 'voice:*'] });
    const reply = await proxied(kg, '/v1/calls/42?x=1', { 'x-api-key': made.body.key, 'x-request-id': 'req-abc.123' });
    expect(reply.status).toBe(200);
    const seen = servers.upstream.seen.at(-1)!;
    expect(seen.url).toBe('/v1/calls/42?x=1');
    expect(seen.headers['x-tenant-id']).toBe(tenant.id);
    expect(seen.headers['x-api-key-id']).toBe(made.body.id);
    expect(seen.headers['x-api-key-type']).toBe('private');
    expect(seen.headers['x-api-key-permissions']).toBe('calls:read,voice:*');
    expect(seen.headers['x-request-id']).toBe('req-abc.123');
    expect(reply.headers.get('x-request-id')).toBe('req-abc.123');
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(made.body.key);

    await proxied(kg, '/v1/b', { authorization: `Bearer ${made.body.key}` });
    const bearer = servers.upstream.seen.at(-1)!;
    expect(bearer.headers.authorization).toBeUndefined();
    expect(JSON.stringify(bearer.rawHeaders)).not.toContain(made.body.key);
  });

  it('never passes a client-sent X-Tenant-Id, in any case, duplicated, or named in Connection', async () => {
    const { tenant, key } = await createTenant(kg, { name: 'spoof' });
    const variants: Array<Record<string, string | string[]>> = [
      { 'X-Tenant-Id': 'ten_EVIL' },
      { 'x-tenant-id': ['ten_EVIL', 'ten_EVIL2'] },
      { 'X-TENANT-ID': 'ten_EVIL', 'x-api-key-id': 'key_EVIL', 'X-Api-Key-Permissions': '*' },
      { Connection: 'X-Tenant-Id, X-Custom', 'X-Custom': 'hop', 'x-tenant-id': 'ten_EVIL' },
    ];
    for (const extra of variants) {
      const r = await rawRequest(`${kg.url}/v1/spoof`, { headers: { 'x-api-key': key, ...extra } });
      expect(r.status).toBe(200);
      const seen = servers.upstream.seen.at(-1)!;
      expect(seen.headers['x-tenant-id']).toBe(tenant.id);
      expect(seen.headers['x-api-key-permissions']).toBe('*');
      expect(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-tenant-id')).toHaveLength(1);
      expect(JSON.stringify(seen.rawHeaders)).not.toContain('EVIL');
      expect(seen.headers['x-custom']).toBeUndefined();
    }
  });

  it('replaces X-Forwarded-* from an untrusted peer', async () => {
    const { key } = await createTenant(kg, { name: 'xff' });
    await rawRequest(`${kg.url}/v1/xff`, { headers: { 'x-api-key': key, 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } });
    const seen = servers.upstream.seen.at(-1)!;
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${kg.port}`);
  });

  it('streams request bodies to the upstream', async () => {
    const { key } = await createTenant(kg, { name: 'body' });
    const body = 'x'.repeat(200_000);
    const r = await rawRequest(`${kg.url}/v1/upload`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'text/plain' }, body });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).bodyBytes).toBe(200_000);
  });
});
