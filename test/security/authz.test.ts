import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, self } from '../helpers/api.ts';
import { check, startAuthzKeygate, type AuthzKeygate, type CheckReply } from '../helpers/gateways.ts';
import { root } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// The authorizer listener as an attack surface: who may ask, which description of the original
// request is believed, whose address failed attempts count against, and what it refuses because a gateway
// (unlike keygate as the proxy) forwards the request as the client sent it.

const POLICY = join(root, 'test/fixtures/policy.yaml');
const noSessionCaps = { maxConcurrentConnections: { default: null, max: null }, sessionMinutesPerMonth: { default: null, max: null } };
const servers = useServers();
let kg: AuthzKeygate; // trusts loopback; failed-attempt block after 3; 10.9.9.9 is a trusted proxy
let elsewhere: AuthzKeygate; // trusts only 10.0.0.0/8 as gateways
let handshake: AuthzKeygate; // authz.websocket: handshake
let key: string;
let narrow: string;

beforeAll(async () => {
  const common = { redisUrl: servers.redis.url, upstream: servers.upstream.url, env: { KEYGATE_POLICY: POLICY } };
  [kg, elsewhere, handshake] = await Promise.all([
    startAuthzKeygate({
      ...common,
      server: { trustedProxies: ['10.9.9.9/32'] },
      config: { limits: { failedAttempts: { maxFailures: 3, windowSeconds: 60, blockSeconds: 120 } }, tls: { trustXfccFrom: ['10.0.0.0/8'] } },
    }),
    startAuthzKeygate({ ...common, authz: { trustedGateways: ['10.0.0.0/8'] } }),
    startAuthzKeygate({ ...common, authz: { websocket: 'handshake' }, config: { plans: { free: noSessionCaps, pro: noSessionCaps, enterprise: noSessionCaps } } }),
  ]);
  ({ key } = await createTenant(kg, { name: 'authz-security', plan: 'pro' }));
  narrow = (await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] })).body.key as string;
});
afterAll(async () => {
  await Promise.all([kg?.stop(), elsewhere?.stop(), handshake?.stop()]);
});

const forwardAuth = (target: AuthzKeygate, uri: string, headers: Record<string, string | string[]> = {}, method = 'GET') =>
  check(target.authzUrl, { path: '/forward-auth', headers: { 'x-forwarded-method': method, 'x-forwarded-uri': uri, ...headers } });

function refused(r: CheckReply, status: number, code: string): void {
  expect(r.status, r.body).toBe(status);
  expect(r.json?.error?.code).toBe(code);
  // nginx's copy of the envelope: the same JSON, one ASCII line.
  expect(r.headers['x-keygate-error']).toBe(r.body);
}

describe('which description of the original request is believed', () => {
  it('reads only the fields of the form its path names, never a client-sent header of another form', async () => {
    // The narrow key may GET /v1/calls/**; /v1/nowhere is denied by the policy. Each check names /v1/nowhere in
    // its own fields and /v1/calls/1 in the other form's, which a client can send through any gateway.
    refused(await forwardAuth(kg, '/v1/nowhere', { 'x-api-key': narrow, 'x-original-uri': '/v1/calls/1', 'x-original-method': 'GET' }), 404, 'route_not_allowed');
    refused(
      await check(kg.authzUrl, { path: '/auth-request', headers: { 'x-api-key': narrow, 'x-original-method': 'GET', 'x-original-uri': '/v1/nowhere', 'x-forwarded-uri': '/v1/calls/1', 'x-forwarded-method': 'GET' } }),
      404,
      'route_not_allowed',
    );
    refused(await check(kg.authzUrl, { path: '/ext-authz/v1/nowhere', headers: { 'x-api-key': narrow, 'x-forwarded-uri': '/v1/calls/1', 'x-original-uri': '/v1/calls/1' } }), 404, 'route_not_allowed');
    expect((await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': narrow, 'x-original-uri': '/v1/nowhere' })).status).toBe(200);
  });

  it('refuses a check whose fields are missing, repeated or not a method, and paths that are no endpoint', async () => {
    refused(await check(kg.authzUrl, { path: '/forward-auth', headers: { 'x-api-key': key, 'x-forwarded-method': 'GET' } }), 400, 'malformed_request');
    refused(await check(kg.authzUrl, { path: '/forward-auth', headers: { 'x-api-key': key, 'x-forwarded-uri': '/v1/calls/1' } }), 400, 'malformed_request');
    refused(await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': key, 'x-forwarded-uri': ['/v1/calls/1', '/v1/nowhere'] }), 400, 'malformed_request');
    refused(await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': key }, 'GET /v1/calls/1 HTTP/1.1'), 400, 'malformed_request');
    refused(await check(kg.authzUrl, { path: '/', headers: { 'x-api-key': key } }), 404, 'not_found');
    refused(await check(kg.authzUrl, { path: '/ext-authz', headers: { 'x-api-key': key } }), 404, 'not_found');
    refused(await check(kg.authzUrl, { path: '/forward-auth/../auth-request', headers: { 'x-api-key': key } }), 404, 'not_found');
  });

  it('decides on the canonical target, and refuses what it would have rewritten, a query key and what routers read differently', async () => {
    expect((await forwardAuth(kg, '/v1/CALLS/1/', { 'x-api-key': narrow })).status).toBe(200); // matching only: no rewrite
    refused(await forwardAuth(kg, '/v1/%63alls/1', { 'x-api-key': narrow }), 400, 'malformed_request');
    refused(await forwardAuth(kg, '/v1/open/../calls/1', { 'x-api-key': narrow }), 400, 'malformed_request');
    refused(await forwardAuth(kg, '/v1/open/%2e%2e/calls/1', { 'x-api-key': narrow }), 400, 'malformed_request');
    refused(await forwardAuth(kg, '/v1/calls//1', { 'x-api-key': narrow }), 400, 'malformed_request');
    refused(await forwardAuth(kg, '/v1/calls/1#x', { 'x-api-key': narrow }), 400, 'malformed_request');
    refused(await forwardAuth(kg, 'http://evil.example.com/v1/calls/1', { 'x-api-key': narrow }), 400, 'malformed_request');
    // A key in the query would reach the upstream through the gateway, whichever spelling.
    for (const query of [`?api_key=${narrow}`, `?x=1&api%5Fkey=${narrow}`]) {
      const r = await forwardAuth(kg, `/v1/calls/1${query}`, { 'x-api-key': narrow });
      refused(r, 400, 'malformed_request');
      expect(r.json.error.message).toContain('X-API-Key header');
    }
  });
});

describe('who may ask', () => {
  it('answers only authz.trustedGateways: anyone else gets 403 gateway_not_trusted, even with a valid key', async () => {
    const { key: theirs } = await createTenant(elsewhere, { name: 'elsewhere' });
    refused(await forwardAuth(elsewhere, '/v1/calls/1', { 'x-api-key': theirs }), 403, 'gateway_not_trusted');
    refused(await check(elsewhere.authzUrl, { path: '/ext-authz/v1/calls/1', headers: { 'x-api-key': theirs } }), 403, 'gateway_not_trusted');
  });

  it('believes X-Forwarded-Client-Cert only from tls.trustXfccFrom peers, not from every trusted gateway', async () => {
    // The gateway (loopback) is trusted to ask, but not to vouch for certificates: nginx, Traefik and Caddy pass
    // a client's X-Forwarded-Client-Cert on as they got it.
    const bound = await self(kg, key, 'POST', '/api-keys', { enforceMtls: true, clientCertFingerprints: ['ab'.repeat(32)] });
    expect(bound.status).toBe(201);
    refused(await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': bound.body.key, 'x-forwarded-client-cert': `Hash=${'ab'.repeat(32)}` }), 403, 'mtls_required');
  });
});

describe('whose address failed attempts count against', () => {
  it('the right-most X-Forwarded-For entry the gateway sent, past trusted proxies only, not one a client put left of it', async () => {
    const bad = { 'x-api-key': 'kg_sk_notakeyatall' };
    for (let i = 0; i < 3; i++) refused(await forwardAuth(kg, '/v1/calls/1', { ...bad, 'x-forwarded-for': `198.51.100.${i}, 203.0.113.9` }), 401, 'invalid_api_key');
    // Blocked, whatever the client writes to the left, and even with a valid key.
    const blocked = await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': key, 'x-forwarded-for': '192.0.2.77, 203.0.113.9' });
    refused(blocked, 429, 'too_many_failed_attempts');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // Through a trusted proxy (a load balancer in front of the gateway) the address left of it is the client's.
    refused(await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': key, 'x-forwarded-for': '203.0.113.9, 10.9.9.9' }), 429, 'too_many_failed_attempts');
    // Another client behind the same gateway is not blocked; nor is the gateway itself.
    expect((await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': key, 'x-forwarded-for': '203.0.113.10' })).status).toBe(200);
    expect((await forwardAuth(kg, '/v1/calls/1', { 'x-api-key': key })).status).toBe(200);
  });
});

describe('what only keygate as the proxy can enforce', () => {
  it('refuses a route whose assistant rule reads the body when the gateway does not send the body whole', async () => {
    const scoped = await self(kg, key, 'POST', '/api-keys', { allowedAssistants: ['asst_1'] });
    const body = '{"assistantId":"asst_1"}'; // allowed, were the body decided on
    const json = { 'x-api-key': scoped.body.key, 'content-type': 'application/json' };
    // A body on a /forward-auth check (Traefik's forwardBody) is not decided on: the gateway's framing is not the client's.
    refused(await check(kg.authzUrl, { path: '/forward-auth', method: 'POST', headers: { ...json, 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/v1/calls' }, body }), 403, 'assistant_not_allowed');
    // Envoy without authz.requestBody, and Envoy's body without its with_request_body flag.
    refused(await check(kg.authzUrl, { path: '/ext-authz/v1/calls', method: 'POST', headers: { ...json, 'x-envoy-auth-partial-body': 'false' }, body }), 403, 'assistant_not_allowed');
  });

  it('refuses WebSocket handshakes by default, however the gateway describes them', async () => {
    const described: Array<Record<string, string>> = [
      { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      { upgrade: 'WebSocket' },
      // A gateway that passes the hop-by-hop fields on: the check itself asks to upgrade, and is still answered.
      { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
    ];
    for (const headers of described) refused(await forwardAuth(kg, '/v1/voice/asst_1/stream', { 'x-api-key': key, ...headers }), 403, 'inline_proxy_required');
  });

  it('with authz.websocket: handshake, authorises a handshake only for keys that cap no sessions, and never with a query key', async () => {
    const { key: owner } = await createTenant(handshake, { name: 'handshake' });
    const ws = { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
    expect((await forwardAuth(handshake, '/v1/voice/asst_1/stream', { 'x-api-key': owner, ...ws })).status).toBe(200);
    const capped = await self(handshake, owner, 'POST', '/api-keys', { maxConcurrentConnections: 2 });
    refused(await forwardAuth(handshake, '/v1/voice/asst_1/stream', { 'x-api-key': capped.body.key, ...ws }), 403, 'inline_proxy_required');
    refused(await forwardAuth(handshake, `/v1/voice/asst_1/stream?api_key=${owner}`, ws), 400, 'malformed_request');
    // An upgrade has no body for an assistant rule to read.
    refused(await forwardAuth(handshake, '/v1/calls', { 'x-api-key': owner, ...ws }, 'POST'), 403, 'assistant_not_allowed');
  });
});
