import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTenant, self } from '../helpers/api.ts';
import { exchangeBytes as raw } from '../helpers/doors.ts';
import { startCaddy, startNginx, useGateways, type GatewayPair } from '../helpers/gateways.ts';
import { useServers, type Servers } from '../helpers/servers.ts';
import { startUpgradeUpstream, type SeenRequest, type Upstream } from '../helpers/upstream.ts';

// Attacks on the day's changes, against real processes: the upstream's own Host, X-Script-Name, a key offered as a
// WebSocket subprotocol, and the CORS preflight that nginx and Caddy answer from keygate rather than forward.

const SECRET = 'last-changes-attacks-secret-0123456789';
const servers = useServers();
const gateways: Array<[string, GatewayPair]> = [
  ['nginx', useGateways(servers, startNginx, SECRET)],
  ['Caddy', useGateways(servers, startCaddy, SECRET)],
];

const since = (s: Servers, before: number): SeenRequest[] => s.upstream.seen.slice(before);
/** Every field value the upstream received, joined: a key must be in none. */
const allValues = (seen: SeenRequest) => seen.rawHeaders.filter((_, i) => i % 2 === 1).join('\n');

describe.each(gateways)('through %s: preflights as the gateway and keygate tell them apart', (_name, pair) => {
  it('forwards no OPTIONS without a key, however the preflight is spelt, and answers each with JSON or CORS', async () => {
    const { key } = await createTenant(pair.kg, { name: 'preflight-spellings', plan: 'pro' });
    const body = 'GET /v1/admin/nuke HTTP/1.1\r\nHost: x\r\n\r\n';
    const heads: Array<[string, string]> = [
      ['lower-case method', `options /v1/admin/nuke HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n`],
      ['mixed-case method', `Options /v1/admin/nuke HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n`],
      ['field names in odd case', `OPTIONS /v1/admin/nuke HTTP/1.1\r\norigin: https://a.example\r\naccess-control-REQUEST-method: POST\r\n`],
      ['whitespace-only method field', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: \t \r\n`],
      ['whitespace-only origin', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nOrigin:   \r\nAccess-Control-Request-Method: POST\r\n`],
      ['duplicated method field', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Method: DELETE\r\n`],
      ['empty then filled origin', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nOrigin:\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n`],
      ['null origin', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nOrigin: null\r\nAccess-Control-Request-Method: POST\r\n`],
      ['with a key', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nX-API-Key: ${key}\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n`],
      ['also an upgrade', `OPTIONS /v1/voice/asst_1/stream HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: GET\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`],
      ['a path keygate refuses', `OPTIONS /v1/calls/%2e%2e/admin HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n`],
      ['a query key', `OPTIONS /v1/calls/1?api_key=${key} HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n`],
      ['a chunked body', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\nTransfer-Encoding: chunked\r\n`],
      ['no Origin, body', `OPTIONS /v1/admin/nuke HTTP/1.1\r\nAccess-Control-Request-Method: POST\r\n`],
    ];
    const before = servers.upstream.seen.length;
    for (const [what, start] of heads) {
      for (const version of ['1.1', '1.0']) {
        const line = version === '1.1' ? start : start.replace(' HTTP/1.1\r\n', ' HTTP/1.0\r\n');
        const chunked = line.includes('chunked');
        const framed = chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
        const r = await raw(pair.gateway.url, `${line}Host: api.example.com\r\n${chunked ? '' : `Content-Length: ${body.length}\r\n`}Connection: close\r\n\r\n${framed}`);
        const label = `${what} HTTP/${version}: ${r.status} ${r.head.split('\r\n')[0]} ${r.body.slice(0, 200)}`;
        expect(r.status, label).toBeGreaterThanOrEqual(200);
        // nginx refuses a method not in upper case, and a chunked HTTP/1.0 body, itself before any location (its own
        // page); all else is keygate's answer.
        const gatewayOwn = /^(options|Options) /.test(line) || (chunked && version === '1.0');
        if (r.status >= 400 && !gatewayOwn) expect(() => JSON.parse(r.body), label).not.toThrow();
        else if (r.status >= 400) expect(r.status, label).toBe(400);
        else expect(r.head, label).toMatch(/\r\nX-Request-Id: /i);
      }
    }
    expect(since(servers, before).map((s) => `${s.method} ${s.url}`)).toEqual([]);
  });
});

describe.each(gateways)('through %s: a key offered as a subprotocol', (_name, pair) => {
  it('never reaches the upstream, whichever prefix, on a request that is no upgrade', async () => {
    const { key } = await createTenant(pair.kg, { name: 'subprotocol-gateway', plan: 'pro' });
    const pub = await self(pair.kg, key, 'POST', '/api-keys', { keyType: 'public', permissions: ['calls:read'], allowedOrigins: ['https://a.example'] });
    const before = servers.upstream.seen.length;
    for (const offered of [key, `chat, ${key}`, pub.body.key as string]) {
      const r = await raw(pair.gateway.url, `GET /v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\nX-API-Key: ${key}\r\nSec-WebSocket-Protocol: ${offered}\r\nConnection: close\r\n\r\n`);
      // Refused: the gateway cannot take one member out of the list it forwards.
      expect(r.status, r.body).toBe(400);
      expect(JSON.parse(r.body).error.code).toBe('malformed_request');
    }
    expect(since(servers, before)).toEqual([]);
    for (const seen of since(servers, before)) {
      expect(allValues(seen)).not.toContain(key);
      expect(allValues(seen)).not.toContain(pub.body.key);
    }
  });
});

describe.each(gateways)('through %s: an upgrade to another protocol than WebSocket', (_name, pair) => {
  it('never reaches the upstream as an upgrade, and the authorizer refuses it as the proxy does', async () => {
    // An Upgrade other than websocket would switch the upstream's connection to a protocol no check sees again.
    const { key } = await createTenant(pair.kg, { name: 'other-upgrade', plan: 'pro' });
    const before = servers.upstream.seen.length;
    for (const connection of ['close', 'Upgrade, close']) {
      await raw(pair.gateway.url, `GET /v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\nX-API-Key: ${key}\r\nUpgrade: foo\r\nConnection: ${connection}\r\n\r\n`);
    }
    for (const seen of since(servers, before)) expect(seen.headers.upgrade, JSON.stringify(seen.headers)).toBeUndefined();
    const checked = await raw(pair.kg.authzUrl, `GET /forward-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /v1/calls/1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: api.example.com\r\nX-API-Key: ${key}\r\nUpgrade: foo\r\nConnection: close\r\n\r\n`);
    expect(checked.status, checked.body).toBe(400);
    expect(JSON.parse(checked.body).error.code).toBe('malformed_request');
  });
});

describe("keygate's own proxy", () => {
  let upstream: Upstream & { upgrades: IncomingHttpHeaders[] };
  beforeAll(async () => {
    upstream = await startUpgradeUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it('passes no key offered as a subprotocol on, on a plain request or an upgrade, whichever prefix', async () => {
    const kg = await servers.keygate({ upstream: upstream.url });
    const { key } = await createTenant(kg, { name: 'subprotocol-proxy', plan: 'pro' });
    const pub = await self(kg, key, 'POST', '/api-keys', { keyType: 'public', permissions: ['calls:read'], allowedOrigins: ['https://a.example'] });
    expect(pub.status, JSON.stringify(pub.body)).toBe(201);
    const before = upstream.seen.length;
    for (const offered of [key, `chat, ${key}`, `chat, ${pub.body.key}`]) {
      const r = await raw(kg.url, `GET /v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\nX-API-Key: ${key}\r\nSec-WebSocket-Protocol: ${offered}\r\nConnection: close\r\n\r\n`);
      expect(r.status, r.body).toBe(200);
    }
    const seen = upstream.seen.slice(before);
    expect(seen).toHaveLength(3);
    for (const s of seen) expect(allValues(s), JSON.stringify(s.headers)).not.toMatch(/kg_[sp]k_/);
    const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/sub/stream`, ['chat', pub.body.key as string], { headers: { 'x-api-key': key } });
    await new Promise((resolve) => ws.once('close', resolve).once('error', resolve));
    expect(JSON.stringify(upstream.upgrades.at(-1))).not.toMatch(/kg_[sp]k_/);
  });

  it('sends the upstream its own Host for an absolute-form target, a duplicated Host and none', async () => {
    const kg = await servers.keygate({ upstream: upstream.url });
    const { key } = await createTenant(kg, { name: 'host-forms', plan: 'pro' });
    const own = `127.0.0.1:${upstream.port}`;
    const cases: Array<[string, string]> = [
      ['absolute-form', `GET http://internal-admin.local/v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\n`],
      ['absolute-form with a port', `GET http://internal-admin.local:8443/v1/calls/1 HTTP/1.1\r\nHost: api.example.com:8443\r\n`],
      ['duplicate Host', `GET /v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\nHost: internal-admin.local\r\n`],
      ['HTTP/1.0 without Host', `GET /v1/calls/1 HTTP/1.0\r\n`],
    ];
    for (const [what, start] of cases) {
      const before = upstream.seen.length;
      const r = await raw(kg.url, `${start}X-API-Key: ${key}\r\nConnection: close\r\n\r\n`);
      const seen = upstream.seen.slice(before);
      if (r.status === 200) expect(seen.map((s) => s.headers.host), what).toEqual([own]);
      else expect(seen, what).toEqual([]);
    }
  });

  it("with upstream.preserveHost passes on one Host: the first, the upstream's own when none came, an empty one as sent", async () => {
    const kg = await servers.keygate({ upstream: upstream.url, config: { upstream: { preserveHost: true } } });
    const { key } = await createTenant(kg, { name: 'host-preserved-forms', plan: 'pro' });
    const cases: Array<[string, string]> = [
      ['absolute-form', `GET http://internal-admin.local/v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\n`],
      ['duplicate Host', `GET /v1/calls/1 HTTP/1.1\r\nHost: api.example.com\r\nHost: internal-admin.local\r\n`],
      ['HTTP/1.0 without Host', `GET /v1/calls/1 HTTP/1.0\r\n`],
      ['empty Host', `GET /v1/calls/1 HTTP/1.1\r\nHost:\r\n`],
    ];
    for (const [what, start] of cases) {
      const before = upstream.seen.length;
      const r = await raw(kg.url, `${start}X-API-Key: ${key}\r\nConnection: close\r\n\r\n`);
      const seen = upstream.seen.slice(before);
      const hosts = seen.flatMap((x) => x.rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === 'host'));
      if (what === 'absolute-form') expect(r.status, r.body).toBe(400);
      else expect(hosts, what).toEqual([{ 'duplicate Host': 'api.example.com', 'HTTP/1.0 without Host': `127.0.0.1:${upstream.port}`, 'empty Host': '' }[what]]);
    }
  });
});
