import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createTenant, expectError, proxied, self } from '../helpers/api.ts';
import { useServers } from '../helpers/servers.ts';

// Rows 2 and 8 (the rule "One gate for every door"): `/keygate/v1` passes the proxy's checks before any
// handler or body parser runs — failed-attempt block and counting, key status, mTLS and certificate binding,
// origins, public keys, rate limits — and an unauthenticated request is answered without reading its body.

const servers = useServers();
const HASH = 'ab'.repeat(32);
const XFCC = `By=spiffe://mesh/keygate;Hash=${HASH};Subject="CN=dialer"`;
const ORIGIN = 'https://app.example.com';

/** Sends a request head that promises `declared` body bytes and writes only `sent`; resolves with the raw reply. */
function slowBody(url: string, headers: Record<string, string>, declared: number, sent: number): Promise<{ status: number; body: string; ms: number }> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      text += c;
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
        resolve({ status: Number(text.slice(9, 12)), body: text.slice(end + 4), ms: Date.now() - started });
        socket.destroy();
      }
    });
    socket.on('error', reject);
    const head = [`POST /keygate/v1/api-keys HTTP/1.1`, `Host: ${hostname}`, 'Content-Type: application/json', `Content-Length: ${declared}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(`${head.join('\r\n')}\r\n\r\n${'{'.repeat(sent)}`);
  });
}

describe('one gate for both doors', () => {
  it('holds an mTLS-bound key to its certificate on /keygate/v1 as on the proxy', async () => {
    const kg = await servers.keygate({ config: { tls: { trustXfccFrom: ['127.0.0.1/32'] } } });
    const { key } = await createTenant(kg, { name: 'mtls', plan: 'pro' });
    const bound = await self(kg, key, 'POST', '/api-keys', { enforceMtls: true, clientCertFingerprints: [HASH] });
    const k = bound.body.key as string;
    expectError(await proxied(kg, '/v1/x', { 'x-api-key': k }), 403, 'mtls_required');
    // Without the certificate the management API refuses too: no listing, no new unbound key, no unbinding.
    expectError(await self(kg, k, 'GET', '/api-keys'), 403, 'mtls_required');
    expectError(await self(kg, k, 'POST', '/api-keys', {}), 403, 'mtls_required');
    expectError(await self(kg, k, 'PATCH', '/api-keys/current', { enforceMtls: false }), 403, 'mtls_required');
    const other = `Hash=${'cd'.repeat(32)}`;
    const wrongCert = await fetch(`${kg.url}/keygate/v1/tenants/me`, { headers: { 'x-api-key': k, 'x-forwarded-client-cert': other } });
    expect(wrongCert.status).toBe(403);
    expect((await self(kg, key, 'GET', `/api-keys/${bound.body.id}`)).body.enforceMtls).toBe(true);
    // With it, the key manages as its permissions allow.
    const withCert = await fetch(`${kg.url}/keygate/v1/tenants/me`, { headers: { 'x-api-key': k, 'x-forwarded-client-cert': XFCC } });
    expect(withCert.status).toBe(200);
  });

  it('holds origins and refuses public keys on /keygate/v1', async () => {
    const kg = await servers.keygate();
    const { key } = await createTenant(kg, { name: 'origins', plan: 'pro' });
    const bound = (await self(kg, key, 'POST', '/api-keys', { permissions: ['audit:read'], allowedOrigins: [ORIGIN] })).body.key as string;
    const from = (origin: string, k: string, path: string) => fetch(`${kg.url}/keygate/v1${path}`, { headers: { 'x-api-key': k, origin } });
    expect((await from('https://evil.example.net', bound, '/audit-log')).status).toBe(403);
    expect((await from('https://evil.example.net', bound, '/tenants/me')).status).toBe(403);
    const allowed = await from(ORIGIN, bound, '/audit-log');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);

    const pub = (await self(kg, key, 'POST', '/api-keys', { keyType: 'public', permissions: ['calls:read'], allowedOrigins: [ORIGIN] })).body.key as string;
    const refused = await from(ORIGIN, pub, '/tenants/me');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('public_key_not_allowed');
  });

  it('answers preflights on /keygate/v1 like the proxy, and serves the OpenAPI document without a key', async () => {
    const kg = await servers.keygate();
    const preflight = await fetch(`${kg.url}/keygate/v1/api-keys`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('x-api-key');
    expect((await fetch(`${kg.url}/keygate/v1/openapi.json`)).status).toBe(200);
    expectError(await self(kg, '', 'GET', '/tenants/me'), 401, 'missing_api_key');
  });

  it('counts bad keys on /keygate/v1 towards the address block, which then closes both doors', async () => {
    const kg = await servers.keygate({ config: { limits: { failedAttempts: { maxFailures: 3, windowSeconds: 60, blockSeconds: 60 } } } });
    const { key } = await createTenant(kg, { name: 'blocked' });
    // The count is per address, in Redis: start from none (this file's other tests fail from 127.0.0.1 too).
    const counted = await servers.redis.client.keys('kg:fail:*');
    if (counted.length) await servers.redis.client.del(...counted);
    for (let i = 0; i < 3; i++) expectError(await self(kg, `kg_sk_${'x'.repeat(30)}${i}`, 'GET', '/api-keys'), 401, 'invalid_api_key');
    const blocked = await self(kg, key, 'GET', '/tenants/me');
    expectError(blocked, 429, 'too_many_failed_attempts');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expectError(await proxied(kg, '/v1/x', { 'x-api-key': key }), 429, 'too_many_failed_attempts');
  });

  it("applies the key's rate limit to management calls", async () => {
    const kg = await servers.keygate();
    const { key } = await createTenant(kg, { name: 'limited', plan: 'pro' });
    const k = (await self(kg, key, 'POST', '/api-keys', { permissions: ['api-keys:read'], rateLimit: { requestsPerMinute: 3 } })).body.key as string;
    for (let i = 0; i < 3; i++) expect((await self(kg, k, 'GET', '/api-keys')).status).toBe(200);
    const limited = await self(kg, k, 'GET', '/api-keys');
    expectError(limited, 429, 'rate_limited');
    expect(limited.headers.get('retry-after')).not.toBeNull();
  });

  it('answers an unauthenticated request at once, without waiting for its body', async () => {
    const kg = await servers.keygate();
    const reply = await slowBody(kg.url, {}, 16_000, 10);
    expect(reply.status).toBe(401);
    expect(JSON.parse(reply.body).error.code).toBe('missing_api_key');
    const bad = await slowBody(kg.url, { 'X-API-Key': `kg_sk_${'y'.repeat(31)}` }, 16_000, 10);
    expect(bad.status).toBe(401);
  });

  it('gives an authenticated management body a deadline: 408 request_timeout', async () => {
    const kg = await servers.keygate({ config: { server: { managementBodyTimeoutMs: 300 } } });
    const { key } = await createTenant(kg, { name: 'slow' });
    const before = (await self(kg, key, 'GET', '/api-keys')).body.data.length as number;
    const reply = await slowBody(kg.url, { 'X-API-Key': key }, 16_000, 10);
    expect(reply.status).toBe(408);
    expect(JSON.parse(reply.body).error.code).toBe('request_timeout');
    expect((await self(kg, key, 'GET', '/api-keys')).body.data.length).toBe(before); // nothing half-written
  });

  it('answers 503 store_unavailable on /keygate/v1 for an uncached key while Redis is down, never 401', async () => {
    const kg = await servers.keygate();
    const { key } = await createTenant(kg, { name: 'down', plan: 'pro' });
    const fresh = (await self(kg, key, 'POST', '/api-keys', { permissions: ['api-keys:read'] })).body.key as string;
    servers.redis.pause();
    try {
      const reply = await self(kg, fresh, 'GET', '/api-keys');
      expectError(reply, 503, 'store_unavailable');
    } finally {
      servers.redis.resume();
    }
  });

  it('refuses WebSocket upgrades on /keygate/v1', async () => {
    const kg = await servers.keygate();
    const { key } = await createTenant(kg, { name: 'ws' });
    const { hostname, port } = new URL(kg.url);
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname);
      socket.setEncoding('latin1');
      socket.once('data', (c: string) => {
        resolve(c.slice(9, 12));
        socket.destroy();
      });
      socket.on('error', reject);
      const head = ['GET /keygate/v1/tenants/me HTTP/1.1', `Host: ${hostname}`, `X-API-Key: ${key}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
    });
    expect(status).toBe('400');
  });
});
