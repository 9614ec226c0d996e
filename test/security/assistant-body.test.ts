import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { ROUTE_POLICY, sendRaw, startExpressUpstream, type RouterUpstream } from '../helpers/routers.ts';

// An assistant rule reads only JSON bodies, and refuses a body that names the
// assistant twice; what it read is what the upstream parses, and the exact bytes are forwarded.

const policyFile = join(mkdtempSync(join(tmpdir(), 'kg-policy-')), 'policy.yaml');
writeFileSync(policyFile, stringify({ ...ROUTE_POLICY, routes: [...ROUTE_POLICY.routes, { method: 'GET', path: '/v1/search', permission: 'calls:write', assistant: { from: 'query', field: 'assistant' } }, { method: 'GET', path: '/v1/chat', permission: 'calls:write', assistant: { from: 'header', field: 'X-Assistant-Id', transientField: 'X-Assistant-Config' } }] }));

let redis: RedisServer;
let upstream: RouterUpstream;
let kg: KeygateProcess;
let key: string;

beforeAll(async () => {
  [redis, upstream] = await Promise.all([startRedis(), startExpressUpstream()]);
  kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, config: { policy: { file: policyFile } } });
  const { key: admin } = await createTenant(kg, { name: 'assistants', plan: 'pro' });
  key = (await self(kg, admin, 'POST', '/api-keys', { permissions: ['calls:write'], allowedAssistants: ['asst_ok'] })).body.key as string;
});
afterAll(async () => {
  await kg?.stop();
  await Promise.all([upstream?.close(), redis?.close()]);
});

async function call(contentType: string | null, body: string, target = '/v1/calls', method = 'POST', headers: Record<string, string> = {}) {
  const before = upstream.hits.length;
  const res = await sendRaw(kg.url, method, target, { 'X-API-Key': key, ...(contentType === null ? {} : { 'Content-Type': contentType }), ...headers }, body);
  const error = res.status >= 400 ? ((JSON.parse(res.body) as { error?: { code: string } }).error?.code ?? null) : null;
  return { status: res.status, error, hits: upstream.hits.slice(before) };
}

describe('assistant rules on bodies', () => {
  it('refuses a JSON-looking body sent as a form (Express would read asst_evil from it)', async () => {
    const r = await call('application/x-www-form-urlencoded', '{"assistantId":"asst_ok","x":"&assistantId=asst_evil&"}');
    expect(r).toMatchObject({ status: 400, error: 'malformed_request', hits: [] });
  });

  it.each([
    ['no content type', null],
    ['text/plain', 'text/plain'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['UTF-16 JSON', 'application/json; charset=utf-16'],
    ['json as a parameter only', 'text/plain; type=application/json'],
  ])('refuses a body with %s', async (_name, type) => {
    expect(await call(type, '{"assistantId":"asst_ok"}')).toMatchObject({ status: 400, error: 'malformed_request', hits: [] });
  });

  it.each([
    ['repeated', '{"assistantId":"asst_ok","assistantId":"asst_evil"}'],
    ['repeated, the other order', '{"assistantId":"asst_evil","assistantId":"asst_ok"}'],
    ['repeated behind an escape', '{"assistantId":"asst_ok","assistant\\u0049d":"asst_evil"}'],
    ['the transient field repeated', '{"assistantId":"asst_ok","assistant":null,"assistant":{"model":"x"}}'],
  ])('refuses a body with the assistant %s', async (_name, body) => {
    expect(await call('application/json', body)).toMatchObject({ status: 400, error: 'malformed_request', hits: [] });
  });

  it('refuses a compressed body and a body with a top-level __proto__ (an upstream merge would make it a prototype)', async () => {
    expect(await call('application/json', '{"assistantId":"asst_ok"}', '/v1/calls', 'POST', { 'Content-Encoding': 'gzip' })).toMatchObject({ status: 400, error: 'malformed_request', hits: [] });
    const proto = '{"assistantId":"asst_ok","__proto__":{"assistant":{"model":"x"}}}';
    expect(await call('application/json', proto)).toMatchObject({ status: 400, error: 'malformed_request', hits: [] });
  });

  it('reads a header rule the way CGI-style servers do: X_Assistant_Id is X-Assistant-Id', async () => {
    const get = (headers: Record<string, string>) => call(null, '', '/v1/chat', 'GET', headers);
    expect((await get({ 'X-Assistant-Id': 'asst_ok' })).hits).toHaveLength(1);
    expect(await get({ 'X-Assistant-Id': 'asst_ok', X_Assistant_Id: 'asst_evil' })).toMatchObject({ status: 403, error: 'assistant_not_allowed', hits: [] });
    expect(await get({ 'X-Assistant-Id': 'asst_ok', X_Assistant_Config: '{"model":"x"}' })).toMatchObject({ status: 403, error: 'transient_assistant_not_allowed', hits: [] });
  });

  it('forwards the exact bytes of an allowed JSON body, +json types included', async () => {
    const body = '{ "assistantId" : "asst_ok",\n  "meta": {"a": 1, "a": 2} }';
    for (const type of ['application/json', 'application/json; charset=UTF-8', 'application/vnd.api+json']) {
      const r = await call(type, body);
      expect(r.status).toBe(200);
      expect(r.hits).toHaveLength(1);
    }
    expect((await call('application/json', '{"assistantId":"asst_evil"}')).error).toBe('assistant_not_allowed');
  });

  it('refuses a query that names the assistant twice', async () => {
    expect(await call(null, '', '/v1/search?assistant=asst_ok&assistant=asst_evil', 'GET')).toMatchObject({ status: 403, error: 'assistant_not_allowed', hits: [] });
    expect((await call(null, '', '/v1/search?assistant=asst_ok', 'GET')).hits).toHaveLength(1);
  });
});
