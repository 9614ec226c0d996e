import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createTenant, self } from '../helpers/api.ts';
import { check, DOCS, startAuthzKeygate, type AuthzKeygate, type CheckReply } from '../helpers/gateways.ts';
import { root } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// Envoy's ext_authz HTTP service contract (no Envoy binary on this machine; Istio's envoyExtAuthzHttp
// provider is the same filter). Checks are shaped as Envoy documents them (api/envoy/extensions/filters/http/
// ext_authz/v3/ext_authz.proto): the original method; `path_prefix` before the original path and query; Host,
// Content-Length and Authorization always, other client headers only when `allowed_headers` matches them; with
// `with_request_body`, the buffered body and `x-envoy-auth-partial-body`. keygate's answers are applied as Envoy
// applies them: 200 allows, the `allowed_upstream_headers` set on the upstream request (replacing client copies),
// then `x-envoy-auth-headers-to-remove` removed; any other status is the client's response with the
// `allowed_client_headers`. Every list is read from docs/gateways/envoy.yaml, so the docs are what is tested.

interface Matcher {
  exact?: string;
  prefix?: string;
}
const envoyDoc = parse(readFileSync(join(DOCS, 'envoy.yaml'), 'utf8')) as any;
const extAuthz = envoyDoc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters.find((f: any) => f.name === 'envoy.filters.http.ext_authz').typed_config;
const http = extAuthz.http_service;
const PREFIX: string = http.path_prefix;
const matches = (list: Matcher[]) => (name: string) => list.some((m) => (m.exact !== undefined ? m.exact === name : name.startsWith(m.prefix!)));
const allowedHeader = matches(extAuthz.allowed_headers.patterns);
const toUpstream = matches(http.authorization_response.allowed_upstream_headers.patterns);
const toClientOnSuccess = matches(http.authorization_response.allowed_client_headers_on_success.patterns);
const toClientOnDeny = matches(http.authorization_response.allowed_client_headers.patterns);
const MAX_BODY: number = extAuthz.with_request_body.max_request_bytes;

interface ClientRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

interface Outcome {
  /** What the client receives when refused, or the extra response fields when allowed. */
  status: number;
  clientHeaders: Record<string, string>;
  body: string;
  /** The upstream request's headers when allowed, else null. */
  upstream: Record<string, string> | null;
  answer: CheckReply;
}

/** The check Envoy sends for a client request, and what Envoy then does with keygate's answer. */
async function throughEnvoy(kg: AuthzKeygate, req: ClientRequest): Promise<Outcome> {
  const client = Object.fromEntries(Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const headers: Record<string, string> = { host: 'api.example.com' };
  for (const [name, value] of Object.entries(client)) if (name === 'authorization' || allowedHeader(name)) headers[name] = value;
  let body: Buffer | undefined;
  if (req.body !== undefined) {
    const whole = Buffer.from(req.body);
    body = whole.subarray(0, MAX_BODY);
    headers['x-envoy-auth-partial-body'] = String(whole.length > MAX_BODY);
  } else {
    headers['x-envoy-auth-partial-body'] = 'false';
  }
  headers['content-length'] = String(body?.length ?? 0);
  const answer = await check(kg.authzUrl, { method: req.method ?? 'GET', path: PREFIX + req.path, headers, body });
  const pick = (h: IncomingHttpHeaders, keep: (n: string) => boolean) =>
    Object.fromEntries(Object.entries(h).filter(([n]) => keep(n)).map(([n, v]) => [n, String(v)]));
  if (answer.status !== 200) {
    const auto = (n: string) => n === 'content-length' || n === 'www-authenticate' || n === 'location';
    return { status: answer.status, clientHeaders: pick(answer.headers, (n) => toClientOnDeny(n) || auto(n)), body: answer.body, upstream: null, answer };
  }
  const upstream: Record<string, string> = { ...client };
  for (const [n, v] of Object.entries(pick(answer.headers, toUpstream))) upstream[n] = v;
  const remove = String(answer.headers['x-envoy-auth-headers-to-remove'] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const n of remove) delete upstream[n];
  return { status: 200, clientHeaders: pick(answer.headers, toClientOnSuccess), body: '', upstream, answer };
}

function expectRefusal(o: Outcome, status: number, code: string): void {
  expect(o.status, o.body).toBe(status);
  expect(o.clientHeaders['content-type']).toBe('application/json');
  const parsed = JSON.parse(o.body) as { error: { code: string; message: string; requestId: string } };
  expect(parsed.error.code).toBe(code);
  expect(parsed.error.requestId).toBe(o.clientHeaders['x-request-id']);
  if (status === 401) expect(o.clientHeaders['www-authenticate']).toContain('ApiKey');
  expect(o.upstream).toBeNull();
}

const servers = useServers();
let kg: AuthzKeygate;
const HASH = 'ab'.repeat(32);

beforeAll(async () => {
  kg = await startAuthzKeygate({
    redisUrl: servers.redis.url,
    upstream: servers.upstream.url,
    env: { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml') },
    authz: { requestBody: true },
    config: { tls: { trustXfccFrom: ['127.0.0.1/32', '::1/128'] }, usage: { flushIntervalSeconds: 0.1 } },
  });
});
afterAll(async () => {
  await kg?.stop();
});

describe('Envoy ext_authz HTTP service (docs/gateways/envoy.yaml)', () => {
  it('allows a valid key: identity set on the upstream request, the key and spoofed copies gone, RateLimit-* to the client', async () => {
    const { tenant, apiKey, key } = await createTenant(kg, { name: 'envoy' });
    const o = await throughEnvoy(kg, {
      path: '/v1/calls/1?page=2',
      headers: { 'x-api-key': key, 'x-tenant-id': 'ten_spoofed', 'x-api-key-permissions': '*', 'x-keygate-signature': 't=1,v1=forged', 'x-request-id': 'envoy-req-1' },
    });
    expect(o.status).toBe(200);
    expect(o.upstream).toMatchObject({ 'x-tenant-id': tenant.id, 'x-api-key-id': apiKey.id, 'x-api-key-type': 'private', 'x-api-key-permissions': '*', 'x-request-id': 'envoy-req-1' });
    expect(o.upstream!['x-api-key']).toBeUndefined();
    expect(o.upstream!['x-keygate-signature']).toBeUndefined();
    expect(o.clientHeaders['ratelimit-limit']).toBe('600'); // the first key holds the free plan's maximum
  });

  it('removes Authorization only when it carried the key', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-bearer' });
    const bearer = await throughEnvoy(kg, { path: '/v1/calls/1', headers: { authorization: `Bearer ${key}` } });
    expect(bearer.status).toBe(200);
    expect(bearer.upstream!.authorization).toBeUndefined();
    const own = await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': key, authorization: 'Basic dXBzdHJlYW0=' } });
    expect(own.upstream!.authorization).toBe('Basic dXBzdHJlYW0=');
  });

  it('refuses with the status, envelope and fields Envoy passes to the client: 401, 403, 404, 429', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-refusals' });
    expectRefusal(await throughEnvoy(kg, { path: '/v1/calls/1' }), 401, 'missing_api_key');
    expectRefusal(await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': 'kg_sk_notakeyatall' } }), 401, 'invalid_api_key');
    const narrow = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:write'], rateLimit: { requestsPerMinute: 1 } });
    expectRefusal(await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': narrow.body.key } }), 403, 'insufficient_permissions');
    expectRefusal(await throughEnvoy(kg, { path: '/v1/nowhere', headers: { 'x-api-key': key } }), 404, 'route_not_allowed');
    const limited = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 1 } });
    expect((await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': limited.body.key } })).status).toBe(200);
    const over = await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': limited.body.key } });
    expectRefusal(over, 429, 'rate_limited');
    expect(Number(over.clientHeaders['retry-after'])).toBeGreaterThan(0);
    expect(over.clientHeaders['ratelimit-remaining']).toBe('0');
  });

  it('decides HEAD as GET and refuses a revoked key at once', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-revoke' });
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    expect((await throughEnvoy(kg, { method: 'HEAD', path: '/v1/calls/9', headers: { 'x-api-key': made.body.key } })).status).toBe(200);
    expect((await self(kg, key, 'DELETE', `/api-keys/${made.body.id}`)).status).toBe(204);
    expectRefusal(await throughEnvoy(kg, { path: '/v1/calls/9', headers: { 'x-api-key': made.body.key } }), 401, 'invalid_api_key');
  });

  it('decides an assistant rule on the body with_request_body sends, and refuses a body sent cut', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-body' });
    const scoped = await self(kg, key, 'POST', '/api-keys', { allowedAssistants: ['asst_1'] });
    const post = (body: string) => throughEnvoy(kg, { method: 'POST', path: '/v1/calls', headers: { 'x-api-key': scoped.body.key, 'content-type': 'application/json' }, body });
    expect((await post('{"assistantId":"asst_1"}')).status).toBe(200);
    expectRefusal(await post('{"assistantId":"asst_2"}'), 403, 'assistant_not_allowed');
    expectRefusal(await post('{"assistantId":"asst_2","assistantId":"asst_1"}'), 400, 'malformed_request');
    // Larger than max_request_bytes: Envoy sends the first part, flagged partial; keygate cannot read the field.
    const big = JSON.stringify({ assistantId: 'asst_1', pad: 'x'.repeat(MAX_BODY) });
    expectRefusal(await post(big), 403, 'assistant_not_allowed');
  });

  it('binds an enforceMtls key to the certificate in the X-Forwarded-Client-Cert Envoy passes (tls.trustXfccFrom)', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-mtls', plan: 'pro' });
    const bound = await self(kg, key, 'POST', '/api-keys', { enforceMtls: true, clientCertFingerprints: [HASH] });
    const withCert = await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': bound.body.key, 'x-forwarded-client-cert': `By=spiffe://mesh/api;Hash=${HASH}` } });
    expect(withCert.status).toBe(200);
    expectRefusal(await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': bound.body.key } }), 403, 'mtls_required');
    expectRefusal(await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': bound.body.key, 'x-forwarded-client-cert': `Hash=${'cd'.repeat(32)}` } }), 403, 'client_certificate_not_allowed');
  });

  it('allows a CORS preflight without a key, with the CORS fields for the client and no identity for the upstream', async () => {
    const o = await throughEnvoy(kg, { method: 'OPTIONS', path: '/v1/calls/1', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'x-tenant-id': 'ten_spoofed', 'x-keygate-signature': 'forged' } });
    expect(o.status).toBe(200);
    expect(o.clientHeaders['access-control-allow-origin']).toBe('https://app.example.com');
    expect(o.clientHeaders['access-control-allow-headers']).toContain('x-api-key');
    expect(o.upstream!['x-tenant-id']).toBeUndefined();
    expect(o.upstream!['x-keygate-signature']).toBeUndefined();
  });

  it('counts its decisions in usage, metrics and the access log as the proxy counts its own', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-usage', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'], rateLimit: { requestsPerMinute: 3 } });
    for (let i = 0; i < 5; i++) await throughEnvoy(kg, { path: '/v1/calls/1', headers: { 'x-api-key': made.body.key } }); // 3 allowed, 2 rate-limited
    await throughEnvoy(kg, { method: 'POST', path: '/v1/assistants', headers: { 'x-api-key': made.body.key } }); // denied (policy)
    const today = new Date().toISOString().slice(0, 10);
    let usage: any;
    for (let i = 0; i < 50; i++) {
      usage = await self(kg, key, 'GET', `/usage?keyId=${made.body.id}&from=${today}&to=${today}`);
      if (usage.body.data[0]?.requests === 6) break;
      await new Promise((r) => setTimeout(r, 100)); // usage.flushIntervalSeconds: 0.1
    }
    expect(usage.body.data[0]).toMatchObject({ requests: 6, allowed: 3, denied: 1, rateLimited: 2 });
    const metrics = await (await fetch(`${kg.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/keygate_requests_total\{listener="authz",method="GET",status_class="2xx"\} [1-9]/);
    expect(metrics).toMatch(/keygate_requests_total\{listener="authz",method="GET",status_class="4xx"\} [1-9]/);
    // Access lines are written in batches: wait for this one.
    const find = () => kg.output().split('\n').find((l) => l.includes('"listener":"authz"') && l.includes('"decision":"refused","code":"rate_limited"') && l.includes(made.body.id));
    for (let i = 0; i < 50 && !find(); i++) await new Promise((r) => setTimeout(r, 100));
    const line = find();
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ method: 'GET', path: '/v1/calls/1', status: 429, keyId: made.body.id });
  });

  it('refuses a WebSocket handshake: session caps and closing need keygate as the proxy', async () => {
    const { key } = await createTenant(kg, { name: 'envoy-ws' });
    const o = await throughEnvoy(kg, { path: '/v1/voice/asst_1/stream', headers: { 'x-api-key': key, upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    expectRefusal(o, 403, 'inline_proxy_required');
  });
});
