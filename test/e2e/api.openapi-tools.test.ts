import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../src/api/openapi.ts';
import { CLIENT_TYPES_FILE, clientTypes } from '../helpers/client-types.ts';
import { root } from '../helpers/keygate.ts';
import { run, scratchDir, typecheck } from '../helpers/tools.ts';

// The OpenAPI document as the tools its users point at it see it: Redocly's recommended rules with
// no error and no warning, and openapi-typescript's default output compiling for the calls a client makes.

const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const doc = buildOpenApi(version) as { paths: Record<string, Record<string, { operationId?: string }>> };
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

describe('the OpenAPI document', () => {
  it('names every operation (operationId) and declares its security and servers', () => {
    const ids: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      expect((item as { servers?: unknown[] }).servers, path).toHaveLength(1);
      for (const [method, op] of Object.entries(item).filter(([m]) => METHODS.includes(m))) {
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        expect((op as { security?: unknown[] }).security, `${method} ${path}`).toBeDefined();
        ids.push(op.operationId!);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(51); // 23, the 9 webhook operations on each API, 3 of session tokens, and the console's 7 admin reads (the platform audit log among them)
  });

  it('passes `redocly lint` (recommended rules) with no error and no warning', async () => {
    const file = join(scratchDir('openapi'), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const redocly = join(root, 'node_modules', '.bin', 'redocly');
    const r = await run(redocly, ['lint', file], { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' } });
    const output = r.stdout + r.stderr;
    expect(output).toContain('using built in recommended configuration');
    expect(output).toContain('Your API description is valid');
    expect({ code: r.code, warnings: output.match(/You have \d+ warnings?/)?.[0] ?? null }).toEqual({ code: 0, warnings: null });
  });

  it('generates, with openapi-typescript default options, the types keygate/client ships', async () => {
    expect(readFileSync(CLIENT_TYPES_FILE, 'utf8'), 'src/client/schema.ts is stale: run npm run client:types').toBe(await clientTypes());
  });

  it('generates types under which tsc accepts valid calls (defaulted request fields optional) and refuses wrong ones', async () => {
    const dir = scratchDir('client-types');
    writeFileSync(join(dir, 'schema.ts'), await clientTypes());
    writeFileSync(
      join(dir, 'calls.ts'),
      `import createClient from 'openapi-fetch';
import type { paths } from './schema.ts';

const client = createClient<paths>({ baseUrl: 'http://localhost:8080' });
export async function calls(id: string, tenantId: string) {
  // Valid calls: every field with a default (keyType, gracePeriodSeconds, limit, granularity) left out.
  await client.POST('/keygate/v1/api-keys', { body: { name: 'dialer' } });
  await client.POST('/keygate/v1/api-keys', {});
  await client.POST('/keygate/v1/api-keys/{id}/rotate', { params: { path: { id } } });
  await client.PATCH('/keygate/v1/api-keys/{id}', { params: { path: { id } }, body: { rateLimit: { requestsPerMinute: 10 } } });
  await client.GET('/keygate/v1/api-keys', {});
  await client.GET('/keygate/v1/usage', { params: { query: { from: '2026-01-01' } } });
  await client.POST('/admin/v1/tenants', { body: { name: 'acme' } });
  await client.PATCH('/admin/v1/tenants/{tenantId}', { params: { path: { tenantId } }, body: { status: 'suspended' } });
  const { data, error } = await client.GET('/keygate/v1/api-keys/{id}', { params: { path: { id } } });
  if (data) data.rateLimit.requestsPerMinute satisfies number | null;
  if (error) error.error.code satisfies string;

  // Wrong calls.
  // @ts-expect-error a name is a string
  await client.POST('/keygate/v1/api-keys', { body: { name: 42 } });
  // @ts-expect-error a wrong type
  await client.POST('/keygate/v1/api-keys', { body: { keyType: 'secret' } });
  // @ts-expect-error the tenant's name is required
  await client.POST('/admin/v1/tenants', { body: {} });
}
`,
    );
    expect(await typecheck([join(dir, 'calls.ts')])).toEqual({ code: 0, output: '' });
  }, 60_000);
});
