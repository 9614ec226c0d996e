import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTenant, expectError, proxied, rawRequest, self } from '../helpers/api.ts';
import { root, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { startUpstream } from '../helpers/upstream.ts';

const servers = useServers();
let kg: KeygateProcess;
let admin: string;

beforeAll(async () => {
  kg = await servers.keygate({ env: { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml') } });
  ({ key: admin } = await createTenant(kg, { name: 'policy', plan: 'enterprise' }));
});

async function key(body: Record<string, unknown>): Promise<string> {
  const r = await self(kg, admin, 'POST', '/api-keys', body);
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.key as string;
}

const asReply = (r: { status: number; body: string }) => ({ status: r.status, headers: new Headers({ 'content-type': 'application/json' }), body: JSON.parse(r.body) });

describe('route policy', () => {
  it('allows listed routes, refuses unlisted ones under deny, and checks permissions with wildcards', async () => {
    const reader = await key({ permissions: ['calls:read'] });
    const wild = await key({ permissions: ['calls:*'] });
    expect((await proxied(kg, '/v1/calls/123/events', { 'x-api-key': reader })).status).toBe(200);
    expect((await proxied(kg, '/v1/calls', { 'x-api-key': reader })).status).toBe(200); // ** matches nothing too
    expectError(await proxied(kg, '/v1/unknown', { 'x-api-key': reader }), 404, 'route_not_allowed');
    expectError(await proxied(kg, '/v1/calls', { 'x-api-key': reader, 'content-type': 'application/json' }, { method: 'POST', body: '{}' }), 403, 'insufficient_permissions');
    expect((await proxied(kg, '/v1/calls', { 'x-api-key': wild, 'content-type': 'application/json' }, { method: 'POST', body: '{}' })).status).toBe(200);
    expect((await proxied(kg, '/v1/open/anything', { 'x-api-key': reader })).status).toBe(200);
    expectError(await proxied(kg, '/v1/open/a/b', { 'x-api-key': reader }), 404, 'route_not_allowed');
  });

  it('refuses paths whose dot segments or encoded slashes could reach another route', async () => {
    const reader = await key({ permissions: ['calls:read'] });
    for (const path of ['/v1/calls/../admin', '/v1/calls/%2e%2e/admin', '/v1/calls/a%2Fb', '/v1/calls//x']) {
      const r = await rawRequest(`${kg.url}${path}`, { headers: { 'x-api-key': reader } });
      expectError(asReply(r), 400, 'malformed_request');
    }
  });

  it('keeps public keys to public routes and allowed origins', async () => {
    const pub = await key({ keyType: 'public', permissions: ['assistants:read', 'calls:read'], allowedOrigins: ['https://app.example.com', 'https://*.example.org'] });
    const ok = await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub, origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(ok.headers.get('vary')).toContain('Origin');
    expect(ok.headers.get('access-control-expose-headers')).toContain('RateLimit-Remaining');
    expect((await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub, origin: 'https://eu.example.org' })).status).toBe(200);
    expectError(await proxied(kg, '/v1/calls/1', { 'x-api-key': pub, origin: 'https://app.example.com' }), 403, 'public_key_not_allowed');
    expectError(await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub }), 403, 'origin_not_allowed');
    expectError(await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub, origin: 'https://evil.com' }), 403, 'origin_not_allowed');
    expectError(await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub, origin: 'https://evilexample.org' }), 403, 'origin_not_allowed');
    expectError(await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub, origin: 'https://app.example.com.evil.com' }), 403, 'origin_not_allowed');
    expectError(await proxied(kg, '/v1/assistants/a1', { 'x-api-key': pub, origin: 'null' }), 403, 'origin_not_allowed');
    const priv = await key({ permissions: ['assistants:read'], allowedOrigins: ['https://app.example.com'] });
    expect((await proxied(kg, '/v1/assistants/a1', { 'x-api-key': priv })).status).toBe(200);
    expectError(await proxied(kg, '/v1/assistants/a1', { 'x-api-key': priv, origin: 'https://other.example.com' }), 403, 'origin_not_allowed');
  });

  it('answers CORS preflights without a key and never passes upstream CORS headers twice', async () => {
    const pre = await fetch(`${kg.url}/v1/assistants/a1`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key, x-custom' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(pre.headers.get('access-control-allow-headers')).toContain('x-api-key');
    expect(pre.headers.get('access-control-allow-headers')).toContain('x-custom');
    expect(pre.headers.get('access-control-max-age')).toBe('600');
    expect(pre.headers.get('vary')).toContain('Origin');
    const nullOrigin = await fetch(`${kg.url}/v1/assistants/a1`, { method: 'OPTIONS', headers: { origin: 'null', 'access-control-request-method': 'GET' } });
    expect(nullOrigin.headers.get('access-control-allow-origin')).toBeNull();
    const corsUp = await startUpstream((_req, res) => {
      res.setHeader('access-control-allow-origin', '*');
      res.end('ok');
    });
    const kg2 = await startKeygate({ redisUrl: servers.redis.url, upstream: corsUp.url, env: { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml') } });
    try {
      const { key: k } = await createTenant(kg2, { name: 'cors' });
      const r = await rawRequest(`${kg2.url}/v1/open/x`, { headers: { 'x-api-key': k, origin: 'https://app.example.com' } });
      expect(r.status).toBe(200);
      const res = await fetch(`${kg2.url}/v1/open/x`, { headers: { 'x-api-key': k, origin: 'https://app.example.com' } });
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    } finally {
      await kg2.stop();
      await corsUp.close();
    }
  });
});

describe('assistant rules', () => {
  const post = (k: string, body: string, path = '/v1/calls') =>
    rawRequest(`${kg.url}${path}`, { method: 'POST', headers: { 'x-api-key': k, 'content-type': 'application/json' }, body });

  it('reads the assistant from the body and forwards the exact bytes', async () => {
    const k = await key({ permissions: ['calls:write'], allowedAssistants: ['asst_1'] });
    const body = '{"assistantId":  "asst_1", "note": "spacing kept"}';
    const ok = await post(k, body);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).bodyBytes).toBe(Buffer.byteLength(body));
    expect(servers.upstream.seen.at(-1)!.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expectError(asReply(await post(k, '{"assistantId":"asst_2"}')), 403, 'assistant_not_allowed');
    expectError(asReply(await post(k, '{}')), 403, 'assistant_not_allowed');
    expectError(asReply(await post(k, '{"assistant":{"model":"x"}}')), 403, 'transient_assistant_not_allowed');
    expectError(asReply(await post(k, '{not json')), 400, 'malformed_request');
    const transient = await key({ permissions: ['calls:write'], transientAssistant: true });
    expect((await post(transient, '{"assistant":{"model":"x"}}')).status).toBe(200);
  });

  it('refuses a body over 64 KiB on an assistant route with 413, and streams it elsewhere', async () => {
    const k = await key({ permissions: ['calls:write'] });
    const big = JSON.stringify({ assistantId: 'a', pad: 'x'.repeat(70 * 1024) });
    expectError(asReply(await post(k, big)), 413, 'payload_too_large');
    const up = await post(k, big, '/v1/upload');
    expect(up.status).toBe(200);
    expect(JSON.parse(up.body).bodyBytes).toBe(Buffer.byteLength(big));
  });

  it('reads the assistant from the path, the query and a header', async () => {
    const k = await key({ permissions: ['assistants:read', 'chat:write'], allowedAssistants: ['asst_1'] });
    expect((await proxied(kg, '/v1/assistants/asst_1', { 'x-api-key': k })).status).toBe(200);
    expectError(await proxied(kg, '/v1/assistants/asst_9', { 'x-api-key': k }), 403, 'assistant_not_allowed');
    expect((await proxied(kg, '/v1/search?assistant=asst_1', { 'x-api-key': k })).status).toBe(200);
    expectError(await proxied(kg, '/v1/search?assistant=asst_9', { 'x-api-key': k }), 403, 'assistant_not_allowed');
    expectError(await proxied(kg, '/v1/search?inline=1', { 'x-api-key': k }), 403, 'transient_assistant_not_allowed');
    expect((await proxied(kg, '/v1/chat', { 'x-api-key': k, 'x-assistant-id': 'asst_1' })).status).toBe(200);
    expectError(await proxied(kg, '/v1/chat', { 'x-api-key': k, 'x-assistant-id': 'asst_2' }), 403, 'assistant_not_allowed');
    const any = await key({ permissions: ['assistants:read'] });
    expect((await proxied(kg, '/v1/assistants/whatever', { 'x-api-key': any })).status).toBe(200);
  });
});
