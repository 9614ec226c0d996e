import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTenant, proxied } from '../helpers/api.ts';
import { root, startKeygate, runCli } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';


const keygate = runCli;

const servers = useServers();

describe('configuration', () => {
  it('reports every problem with its path and exits 78', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'server:\n  port: "eighty"\n  surprise: 1\ncache:\n  ttlSeconds: -1\nkeys:\n  privatePrefix: "bad prefix!"\n');
    const r = await keygate(['config', 'check'], { KEYGATE_CONFIG: file, UPSTREAM_URL: 'ftp://nope' });
    expect(r.code).toBe(78);
    for (const path of ['server.port', 'server', 'cache.ttlSeconds', 'keys.privatePrefix', 'upstream.url (from UPSTREAM_URL)']) {
      expect(r.stderr).toContain(`- ${path}:`);
    }
  });

  it('checks the route policy file too, as serve does at start-up (78, with its path)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-cfg-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'defaultAction: maybe\nroutes:\n  - method: GET\n    path: /v1/x\n    surprise: true\n');
    const r = await keygate(['config', 'check'], { KEYGATE_POLICY: policy });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`policy(${policy}).defaultAction`);
    expect(r.stderr).toContain(`policy(${policy}).routes.0`);
    expect((await keygate(['config', 'check'], { KEYGATE_POLICY: join(root, 'config', 'policy.yaml') })).code).toBe(0);
  });

  it('prints the effective configuration with secrets redacted', async () => {
    const r = await keygate(['config', 'check'], {
      KEYGATE_ADMIN_TOKEN: 'super-secret-admin-token',
      REDIS_URL: 'redis://user:hunter2-password@redis.internal:6379',
      KEYGATE_SIGNING_SECRET: 'signing-secret-value-123',
      PORT: '8181',
    });
    expect(r.code).toBe(0);
    const cfg = JSON.parse(r.stdout);
    expect(cfg.server.port).toBe(8181);
    expect(cfg.admin.token).toBe('[redacted]');
    expect(cfg.upstream.signingSecret).toBe('[redacted]');
    expect(cfg.redis.url).toBe('redis://[redacted]@redis.internal:6379');
    for (const secret of ['super-secret-admin-token', 'hunter2-password', 'signing-secret-value-123']) expect(r.stdout).not.toContain(secret);
  });
});

describe('embedded store (no Redis configured)', () => {
  it('warns that keys vanish, prints a generated admin token once, and works', async () => {
    const kg = await startKeygate({ upstream: servers.upstream.url, env: { KEYGATE_ADMIN_TOKEN: '' } });
    try {
      await expect.poll(() => /kg_admin_[A-Za-z0-9_-]+/.exec(kg.output())?.[0]).toBeTruthy();
      const token = /kg_admin_[A-Za-z0-9_-]+/.exec(kg.output())![0];
      expect(kg.output().split(token)).toHaveLength(2);
      expect(kg.output()).toContain('vanish');
      const r = await fetch(`${kg.opsUrl}/admin/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'embedded' }),
      });
      expect(r.status).toBe(201);
      const { apiKey } = (await r.json()) as { apiKey: { key: string } };
      expect((await proxied(kg, '/v1/hello', { 'x-api-key': apiKey.key })).status).toBe(200);
    } finally {
      expect(await kg.stop()).toBe(0);
    }
  });

  it('serves the OpenAPI document generated from the request schemas', async () => {
    const kg = await startKeygate({ upstream: servers.upstream.url });
    try {
      const doc = (await (await fetch(`${kg.url}/keygate/v1/openapi.json`)).json()) as any;
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/keygate/v1/api-keys', '/keygate/v1/api-keys/{id}/rotate', '/admin/v1/tenants', '/admin/v1/overview']));
      const create = doc.components.requestBodies.CreateApiKey.content['application/json'].schema;
      expect(create.additionalProperties).toBe(false);
      expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(['name', 'permissions', 'keyType', 'expiresInDays', 'rateLimit']));
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/(\w+)\/([^"]+)"/g)].map((m) => [m[1]!, m[2]!] as const);
      expect(refs.length).toBeGreaterThan(10);
      expect(refs.filter(([kind, name]) => !doc.components[kind]?.[name])).toEqual([]);
      const { tenant } = await createTenant(kg);
      expect(tenant.id).toMatch(/^ten_/);
    } finally {
      await kg.stop();
    }
  });
});
