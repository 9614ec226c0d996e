import { describe, expect, it } from 'vitest';
import { verifySignature } from '../../dist/verify.js';
import { createTenant, self } from '../helpers/api.ts';
import { exchangeBytes, type BytesReply } from '../helpers/doors.ts';
import { startCaddy, startNginx, useGateways, type Gateway, type GatewayPair } from '../helpers/gateways.ts';
import { useServers, type Servers } from '../helpers/servers.ts';
import type { SeenRequest } from '../helpers/upstream.ts';

// Attacks on keygate as the authorizer of a real gateway: nginx (auth_request) and Caddy (forward_auth), each
// running its docs/gateways/ configuration as it stands, in front of a real upstream that records what it gets.
// The gateway must forward exactly what keygate decided on: no request keygate refused, no identity field it did
// not set, no client copy of one beside it, none of its own taken away, and only the target it decided on.

const SECRET = 'authorizer-attacks-secret-0123456789';
const servers = useServers();
const doors: Array<[string, GatewayPair]> = [
  ['nginx', useGateways(servers, startNginx, SECRET)],
  ['Caddy', useGateways(servers, startCaddy, SECRET)],
];

/** Exactly these bytes to the gateway, read to the end. */
const raw = (gw: Pick<Gateway, 'url'>, bytes: string) => exchangeBytes(gw.url, bytes);

/** One GET (or `method`) through the gateway on its own connection, with the fields given line by line. */
const send = (gw: Gateway, target: string, fields: string[], method = 'GET') =>
  raw(gw, `${method} ${target} HTTP/1.1\r\nHost: api.example.com\r\n${fields.map((f) => `${f}\r\n`).join('')}Connection: close\r\n\r\n`);

/** What the upstream received after `before` requests. */
const since = (s: Servers, before: number): SeenRequest[] => s.upstream.seen.slice(before);

/** The reply's fields, names in lower case, repeated ones joined. */
function fieldsOf(r: BytesReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of r.head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

/** The CORS answer: the Access-Control-* fields and Vary. */
const corsOf = (r: BytesReply) => Object.fromEntries(Object.entries(fieldsOf(r)).filter(([n]) => n.startsWith('access-control-') || n === 'vary'));

const valuesOf = (seen: SeenRequest, name: string) => seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]!.toLowerCase() === name).length;

describe.each(doors)('through %s with keygate as the authorizer', (_name, pair) => {
  async function keys() {
    const { tenant, apiKey, key } = await createTenant(pair.signing, { name: 'authorizer-attacks', plan: 'pro' });
    const narrow = await self(pair.signing, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    expect(narrow.status).toBe(201);
    return { tenant, apiKey, key, narrow: narrow.body.key as string, narrowId: narrow.body.id as string };
  }

  it('keeps keygate\'s identity fields on the request when the client names them in Connection', async () => {
    // Connection makes the fields it names hop-by-hop; a proxy that removes them after setting keygate's answer
    // (Go's, under Caddy) would send the upstream an allowed request without its permissions or signature.
    const { tenant, narrow, narrowId } = await keys();
    const before = servers.upstream.seen.length;
    const names = 'X-Tenant-Id, X-Api-Key-Id, X-Api-Key-Type, X-Api-Key-Permissions, X-Keygate-Signature, X-Request-Id';
    const r = await raw(pair.signingGateway, `GET /v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\nX-API-Key: ${narrow}\r\nConnection: close, ${names}\r\n\r\n`);
    expect(r.status, r.body).toBe(200);
    const [seen] = since(servers, before);
    expect(seen).toBeDefined();
    expect(seen!.headers['x-tenant-id']).toBe(tenant.id);
    expect(seen!.headers['x-api-key-id']).toBe(narrowId);
    expect(seen!.headers['x-api-key-type']).toBe('private');
    expect(seen!.headers['x-api-key-permissions']).toBe('calls:read');
    expect(seen!.headers['x-request-id']).toMatch(/./);
    const fields = { method: 'GET', path: '/v1/calls/1', tenantId: tenant.id, keyId: narrowId };
    expect(verifySignature(SECRET, seen!.headers['x-keygate-signature'] as string, fields).ok).toBe(true);
  });

  it("sends the upstream its own Host, as keygate's proxy does, the client's in X-Forwarded-Host", async () => {
    // An upstream that routes by host name (an ingress, virtual hosts) would otherwise hand the request keygate
    // allowed on its path to whichever site the client named.
    const { narrow } = await keys();
    const before = servers.upstream.seen.length;
    const r = await raw(pair.signingGateway, `GET /v1/calls/1 HTTP/1.1\r\nHost: internal-admin.local\r\nX-API-Key: ${narrow}\r\nConnection: close\r\n\r\n`);
    expect(r.status, r.body).toBe(200);
    const [seen] = since(servers, before);
    expect({ host: seen!.headers.host, forwarded: seen!.headers['x-forwarded-host'] }).toEqual({ host: `127.0.0.1:${servers.upstream.port}`, forwarded: 'internal-admin.local' });
  });

  it('gives the upstream the client\'s address alone in X-Forwarded-For, as keygate\'s proxy does, not entries the client wrote', async () => {
    const { key } = await keys();
    const before = servers.upstream.seen.length;
    const r = await send(pair.signingGateway, '/v1/calls/1', [`X-API-Key: ${key}`, 'X-Forwarded-For: 203.0.113.66', 'X-Forwarded-For: 198.51.100.7']);
    expect(r.status, r.body).toBe(200);
    const [seen] = since(servers, before);
    expect(seen!.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('replaces a client\'s identity fields in any case and repeated, and refuses the spellings the gateway cannot clear', async () => {
    const { tenant, narrow, narrowId } = await keys();
    const spoofs = ['x-tenant-id: ten_spoofed', 'X-TENANT-ID: ten_spoofed2', 'X-Api-Key-Permissions: *', 'x-api-key-permissions: *', 'X-Api-Key-Id: key_spoofed', 'X-Api-Key-Type: private', 'X-Session-Token-Id: tok_spoofed', 'X-Session-Token-Metadata: {"role":"admin"}', 'X-Keygate-Signature: t=1,v1=forged'];
    const before = servers.upstream.seen.length;
    const r = await send(pair.signingGateway, '/v1/calls/1', [`X-API-Key: ${narrow}`, ...spoofs]);
    expect(r.status, r.body).toBe(200);
    const [seen] = since(servers, before);
    for (const name of ['x-tenant-id', 'x-api-key-id', 'x-api-key-permissions', 'x-api-key-type', 'x-keygate-signature']) expect(valuesOf(seen!, name), name).toBe(1);
    expect(seen!.headers['x-tenant-id']).toBe(tenant.id);
    expect(seen!.headers['x-api-key-id']).toBe(narrowId);
    expect(seen!.headers['x-api-key-permissions']).toBe('calls:read');
    expect(seen!.headers['x-session-token-id']).toBeUndefined();
    expect(seen!.headers['x-session-token-metadata']).toBeUndefined();
    expect(seen!.headers['x-api-key']).toBeUndefined();
    // An underscore spelling (which CGI and WSGI servers read as X-Api-Key-Permissions) never reaches the upstream:
    // nginx drops such names itself; Caddy passes them, so keygate refuses the request.
    const underscored = await send(pair.signingGateway, '/v1/calls/1', [`X-API-Key: ${narrow}`, 'X_Api_Key_Permissions: *']);
    expect([200, 400]).toContain(underscored.status);
    for (const s of since(servers, before + 1)) expect(s.rawHeaders.some((n, i) => i % 2 === 0 && n.includes('_'))).toBe(false);
  });

  it('forwards no target keygate refused or would have read differently, whatever its spelling', async () => {
    const { narrow } = await keys();
    const before = servers.upstream.seen.length;
    // The narrow key may GET /v1/calls/**, nothing else: each of these reaches another route, or is read as one.
    const targets = [
      '/v1/calls/../nowhere', '/v1/calls/%2e%2e/nowhere', '/v1/calls/.%2E/nowhere', '/v1/calls/..;/nowhere', '/v1/calls/1%2f..%2f..%2fnowhere',
      '/v1/calls/1%5c..%5cnowhere', '/v1/calls//1', '/v1/%63alls/1', '/v1/calls/%7e', '/v1/calls/1%00', '/v1/calls/1\\..\\nowhere',
      `/v1/calls/1?api_key=${narrow}`, `/v1/calls/1?x=1&api%5Fkey=${narrow}`,
    ];
    for (const target of targets) {
      const r = await send(pair.gateway, target, [`X-API-Key: ${narrow}`]);
      expect(r.status, `${target}: ${r.body}`).toBe(400);
    }
    // A route the key is not allowed, through an absolute-form target naming another host, and a method in lower case.
    expect((await send(pair.gateway, 'http://internal.example/v1/nowhere', [`X-API-Key: ${narrow}`])).status).toBe(404);
    expect((await send(pair.gateway, '/v1/calls/1', [`X-API-Key: ${narrow}`], 'delete')).status).toBe(400);
    expect((await send(pair.gateway, '/v1/calls/1', [`X-API-Key: ${narrow}`], 'DELETE')).status).toBe(404);
    expect(since(servers, before)).toEqual([]);
    // The absolute form is decided on its path, which is what the upstream then receives.
    const ok = await send(pair.gateway, 'http://internal.example/v1/calls/1', [`X-API-Key: ${narrow}`]);
    expect(ok.status, ok.body).toBe(200);
    expect(since(servers, before).map((s) => s.url)).toEqual(['/v1/calls/1']);
  });

  it('lets no body-ruled request, WebSocket handshake or query key through, and the method it decided on is the one forwarded', async () => {
    const { key } = await keys();
    const before = servers.upstream.seen.length;
    // The assistant rule of POST /v1/calls reads the body, which neither gateway sends keygate: refused.
    const body = '{"assistantId":"asst_anything"}';
    const posted = await raw(pair.gateway, `POST /v1/calls HTTP/1.1\r\nHost: api.example.com\r\nX-API-Key: ${key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(posted.status, posted.body).toBe(403);
    expect(JSON.parse(posted.body).error.code).toBe('assistant_not_allowed');
    // authz.websocket: refuse (the default).
    const ws = await send(pair.gateway, '/v1/voice/asst_1/stream', [`X-API-Key: ${key}`, 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
    expect(ws.status, ws.body).toBe(403);
    expect(JSON.parse(ws.body).error.code).toBe('inline_proxy_required');
    // A session token offered as a subprotocol, and a key in the query, would travel on: refused.
    const sub = await send(pair.gateway, '/v1/calls/1', [`X-API-Key: ${key}`, `Sec-WebSocket-Protocol: keygate.token, kgst_x`]);
    expect([400, 403]).toContain(sub.status);
    expect((await send(pair.gateway, `/v1/voice/asst_1/stream?api_key=${key}`, ['Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])).status).toBe(400);
    // A method override would have the upstream run DELETE where keygate allowed GET: the gateway removes it.
    const overridden = await send(pair.gateway, '/v1/calls/1', [`X-API-Key: ${key}`, 'X-HTTP-Method-Override: DELETE', 'X-Method-Override: DELETE', 'X-HTTP-Method: DELETE']);
    expect(overridden.status, overridden.body).toBe(200);
    const seen = since(servers, before);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /v1/calls/1']);
    for (const name of ['x-http-method-override', 'x-method-override', 'x-http-method', 'sec-websocket-key']) expect(seen[0]!.headers[name]).toBeUndefined();
  });

  it("answers a CORS preflight as keygate's proxy does, whatever the origin, and never forwards it or its body", async () => {
    // A preflight carries no key: forwarded, it would reach any path of the upstream, body and all, unauthenticated.
    const proxy = { url: pair.kg.url };
    const before = servers.upstream.seen.length;
    for (const origin of ['https://app.example.com', 'https://no-key-allows.example.net', 'null']) {
      for (const target of ['/v1/admin/nuke', '/v1/calls/1?page=2']) {
        const body = 'hello=1';
        const head = `OPTIONS ${target} HTTP/1.1\r\nHost: api.example.com\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: POST\r\n` +
          `Access-Control-Request-Headers: X-API-Key, Content-Type, X-Custom\r\nX-Tenant-Id: ten_spoofed\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
        const [viaGateway, viaProxy] = await Promise.all([raw(pair.gateway, head), raw(proxy, head)]);
        const what = `${origin} ${target}: ${viaGateway.head}`;
        expect(viaProxy.status, what).toBe(204);
        expect(viaGateway.status, what).toBeGreaterThanOrEqual(200);
        expect(viaGateway.status, what).toBeLessThan(300);
        expect(corsOf(viaGateway), what).toEqual(corsOf(viaProxy));
        if (origin !== 'null') expect(corsOf(viaGateway)['access-control-allow-origin'], what).toBe(origin);
        // What keygate tells the gateway stays with the gateway; no identity goes to anyone.
        const fields = fieldsOf(viaGateway);
        for (const name of ['x-envoy-auth-headers-to-remove', 'x-keygate-error', 'x-tenant-id', 'x-api-key-id']) expect(fields[name], `${what} ${name}`).toBeUndefined();
        expect(fields['x-request-id'], what).toMatch(/./);
      }
    }
    expect(since(servers, before)).toEqual([]);
  });

  it('refuses an OPTIONS that is no preflight without a key, as the proxy does', async () => {
    const proxy = { url: pair.kg.url };
    const before = servers.upstream.seen.length;
    // No Access-Control-Request-Method, or no Origin: a request like any other, which needs a key.
    for (const fields of [['Origin: https://app.example.com'], ['Access-Control-Request-Method: POST'], []]) {
      const [viaGateway, viaProxy] = await Promise.all([send(pair.gateway, '/v1/admin/nuke', fields, 'OPTIONS'), send(proxy as Gateway, '/v1/admin/nuke', fields, 'OPTIONS')]);
      expect(viaProxy.status, viaProxy.body).toBe(401);
      expect(viaGateway.status, `${fields.join(' ')}: ${viaGateway.body}`).toBe(401);
      expect(JSON.parse(viaGateway.body).error.code).toBe(JSON.parse(viaProxy.body).error.code);
    }
    expect(since(servers, before)).toEqual([]);
  });

  it('never forwards a preflight whose Origin or Access-Control-Request-Method is empty', async () => {
    // keygate takes the request as a preflight (the fields are there); a gateway that cannot see an empty field must
    // not forward it without a key either: it is answered as a preflight, or refused.
    const before = servers.upstream.seen.length;
    for (const fields of [['Origin:', 'Access-Control-Request-Method: POST'], ['Origin: https://app.example.com', 'Access-Control-Request-Method:'],
      ['Origin:', 'Origin: https://app.example.com', 'Access-Control-Request-Method: POST'], ['Origin: https://app.example.com', 'Access-Control-Request-Method:', 'Access-Control-Request-Method: POST']]) {
      const r = await send(pair.gateway, '/v1/admin/nuke', fields, 'OPTIONS');
      const what = `${fields.join(' ')}: ${r.status} ${r.body}`;
      if (r.status >= 300) expect(JSON.parse(r.body).error.code, what).toBe('malformed_request');
      else expect(r.status, what).toBeGreaterThanOrEqual(200);
    }
    expect(since(servers, before)).toEqual([]);
  });
});
