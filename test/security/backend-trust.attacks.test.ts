import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/verify.ts';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// Attacks on what a backend behind keygate trusts: the path it routes, the identity fields and the signature.
// A client holds a narrow key (calls:read) and reaches the backend only through a real keygate; the backend is a
// real node:http server that records what it received (head, trailers) and checks X-Keygate-Signature with
// keygate/verify, as a backend would.

const SECRET = 'backend-trust-signing-secret-0123456789';

interface Received {
  method: string;
  url: string;
  rawHeaders: string[];
  rawTrailers: string[];
  signatureOk: boolean;
}

let upstream: Upstream;
let direct: KeygateProcess; // 127.0.0.1, the test client, is not a trusted proxy
let behindProxy: KeygateProcess; // 127.0.0.1 is a trusted proxy
let narrow: string;
let tenantId: string;
const received: Received[] = [];

const pathOf = (url: string) => url.split('?')[0]!;

function check(req: IncomingMessage): boolean {
  return verifySignature(SECRET, req.headers['x-keygate-signature'], {
    method: req.method!,
    path: pathOf(req.url!),
    tenantId: String(req.headers['x-tenant-id']),
    keyId: String(req.headers['x-api-key-id']),
  }).ok;
}

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, signatureOk: check(req) });
      res.end('ok');
    });
  });
  const env = { KEYGATE_SIGNING_SECRET: SECRET };
  [direct, behindProxy] = await Promise.all([
    startKeygate({ upstream: upstream.url, env }),
    startKeygate({ upstream: upstream.url, env, config: { server: { trustedProxies: ['127.0.0.1/32'] } } }),
  ]);
  for (const kg of [direct, behindProxy]) {
    const created = await createTenant(kg, { name: 'backend-trust', plan: 'pro' });
    const made = await self(kg, created.key, 'POST', '/api-keys', { name: 'narrow', permissions: ['calls:read'] });
    expect(made.status).toBe(201);
    if (kg === direct) [narrow, tenantId] = [made.body.key as string, created.tenant.id as string];
    else behindNarrow = made.body.key as string;
  }
});
let behindNarrow: string;
afterAll(async () => {
  await Promise.all([direct?.stop(), behindProxy?.stop()]);
  await upstream?.close();
});

/** Writes `head` (and `body`) on a raw connection; resolves with the status line's code. */
function sendRaw(kg: KeygateProcess, head: string, body = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(kg.port, '127.0.0.1');
    let reply = '';
    socket.on('data', (c: Buffer) => {
      reply += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(reply);
      if (m && reply.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
    socket.write(head + body);
  });
}

const namesOf = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
const lastFor = (url: string) => received.filter((r) => r.url === url).at(-1);

describe('a field that moves the route the backend takes', () => {
  // gunicorn reads a `SCRIPT_NAME` field as the request's SCRIPT_NAME from the peers in its forwarded_allow_ips
  // (127.0.0.1 by default, where a sidecar keygate connects from): `/v1/calls/admin/users` with
  // `SCRIPT_NAME: /v1/calls` ran Django's `/admin/users` view for a calls:read key, under a signature that
  // verified (it covers the whole path keygate authorised). PATH_INFO and REMOTE_USER are gunicorn's other
  // forwarder fields; RAW_URI and REQUEST_URI are what the Django middleware reads the wire path from.
  const CGI = ['SCRIPT_NAME', 'script_name', 'Script_Name', 'PATH_INFO', 'REMOTE_USER', 'RAW_URI', 'REQUEST_URI', 'QUERY_STRING', 'REQUEST_METHOD'];

  for (const [door, which] of [['a direct client', 'direct'], ['a trusted proxy', 'proxy']] as const) {
    it(`never reaches the upstream as a CGI variable's name, from ${door}`, async () => {
      const kg = which === 'direct' ? direct : behindProxy;
      const key = which === 'direct' ? narrow : behindNarrow;
      const url = `/v1/calls/admin/users-${which}`;
      const fields = CGI.map((n) => `${n}: /v1/calls\r\n`).join('');
      const status = await sendRaw(kg, `GET ${url} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${key}\r\n${fields}X-Custom: kept\r\nConnection: close\r\n\r\n`);
      expect(status).toBe(200);
      const seen = lastFor(url)!;
      expect(seen.signatureOk).toBe(true);
      const names = namesOf(seen.rawHeaders);
      for (const name of CGI) expect(names, name).not.toContain(name.toLowerCase());
      expect(names).toContain('x-custom');
    });
  }

  it('keeps fields that only look like them (hyphenated: no server reads them as the variable)', async () => {
    const url = '/v1/calls/hyphen';
    const status = await sendRaw(direct, `GET ${url} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${narrow}\r\nScript-Name: a\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n`);
    expect(status).toBe(200);
    const names = namesOf(lastFor(url)!.rawHeaders);
    expect(names).toContain('script-name');
    expect(names).toContain('content-type');
  });
});

describe('identity fields smuggled past keygate', () => {
  it('in the trailer of a chunked body: the upstream receives no trailer at all', async () => {
    const url = '/v1/calls/trailers';
    const head = `POST ${url} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${narrow}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Tenant-Id, X-Api-Key-Permissions\r\nConnection: close\r\n\r\n`;
    const body = '2\r\nhi\r\n0\r\nX-Tenant-Id: ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Z\r\nX-Api-Key-Permissions: *\r\nX-Keygate-Signature: t=1,v1=00\r\n\r\n';
    // calls:read does not cover POST /v1/calls/**: keygate refuses it before the upstream.
    expect(await sendRaw(direct, head, body)).toBe(403);
    expect(lastFor(url)).toBeUndefined();
    // A private key with every permission: forwarded, the trailer left behind.
    const { key } = await createTenant(direct, { name: 'trailers', plan: 'pro' });
    const url2 = '/v1/anything/trailers';
    expect(await sendRaw(direct, head.replace(url, url2).replace(narrow, key), body)).toBe(200);
    const seen = lastFor(url2)!;
    expect(seen.rawTrailers).toEqual([]);
    expect(namesOf(seen.rawHeaders).filter((n) => n === 'x-tenant-id')).toHaveLength(1);
    expect(seen.signatureOk).toBe(true);
  });

  it('in odd spellings (obs-fold, a space before the colon, a NUL) is refused before the upstream', async () => {
    const tries = [
      `X-Api-Key-Permissions: calls:read\r\n *\r\n`, // obs-fold (RFC 9112 §5.2)
      `X-Tenant-Id : ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Z\r\n`, // whitespace before the colon
      `X-Tenant-Id\0: ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Z\r\n`,
    ];
    for (const [i, extra] of tries.entries()) {
      const url = `/v1/calls/odd-${i}`;
      const status = await sendRaw(direct, `GET ${url} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${narrow}\r\n${extra}Connection: close\r\n\r\n`);
      expect(status, extra).toBe(400);
      expect(lastFor(url), extra).toBeUndefined();
    }
  });
});

describe('the signature, replayed or rewritten by whoever sees it', () => {
  async function signed(method: string, url: string): Promise<Received> {
    const status = await sendRaw(direct, `${method} ${url} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${narrow}\r\nConnection: close\r\n\r\n`);
    expect(status).toBe(200);
    const seen = lastFor(url)!;
    expect(seen.signatureOk).toBe(true);
    return seen;
  }
  const field = (seen: Received, name: string) => seen.rawHeaders[seen.rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === name) + 1]!;

  it('covers the method: HEAD, signed as HEAD, does not verify as GET, nor GET as POST', async () => {
    const head = await signed('HEAD', '/v1/calls/head');
    const get = await signed('GET', '/v1/calls/get');
    const fields = (s: Received, method: string) => ({ method, path: pathOf(s.url), tenantId: tenantId, keyId: field(s, 'x-api-key-id') });
    expect(verifySignature(SECRET, field(head, 'x-keygate-signature'), fields(head, 'HEAD')).ok).toBe(true);
    expect(verifySignature(SECRET, field(head, 'x-keygate-signature'), fields(head, 'GET'))).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(SECRET, field(get, 'x-keygate-signature'), fields(get, 'POST'))).toEqual({ ok: false, reason: 'mismatch' });
    // The verifier upper-cases the method: a backend that received `get` is checking GET, which keygate signed.
    expect(verifySignature(SECRET, field(get, 'x-keygate-signature'), fields(get, 'get')).ok).toBe(true);
  });

  it('covers the path: not another path, a decoded one, or one with the query moved into it', async () => {
    const seen = await signed('GET', '/v1/calls/7?next=/admin');
    const header = field(seen, 'x-keygate-signature');
    const keyId = field(seen, 'x-api-key-id');
    for (const path of ['/v1/calls/8', '/v1/calls/7/', '/V1/calls/7', '/v1/calls/7?next=/admin', '/v1/calls/7/admin', '/v1/calls/%37']) {
      expect(verifySignature(SECRET, header, { method: 'GET', path, tenantId, keyId }), path).toEqual({ ok: false, reason: 'mismatch' });
    }
  });

  it('refuses rewritten forms of a genuine header (upper-case hex, two v1, whitespace, 13 digits, a v0)', async () => {
    const seen = await signed('GET', '/v1/calls/forms');
    const header = field(seen, 'x-keygate-signature');
    const fields = { method: 'GET', path: '/v1/calls/forms', tenantId, keyId: field(seen, 'x-api-key-id') };
    const [t, v1] = header.split(',') as [string, string];
    const mac = v1.slice(3);
    const rewritten = [
      `${t},v1=${mac.toUpperCase()}`,
      `${t},v1=${mac},v1=${mac}`,
      `${t},v1=${'0'.repeat(64)},v1=${mac}`,
      ` ${header}`,
      `${header} `,
      `${t}, v1=${mac}`,
      `${header}\n`,
      `t=0${t.slice(2).padStart(12, '0')},v1=${mac}`,
      `v1=${mac},${t}`,
      `${t},v0=${mac}`,
    ];
    for (const h of rewritten) expect(verifySignature(SECRET, h, fields).ok, JSON.stringify(h)).toBe(false);
    // Two copies of the field reach a node backend as an array: never verified.
    expect(verifySignature(SECRET, [header, header], fields)).toEqual({ ok: false, reason: 'missing' });
    // Leading zeros within 12 digits say the same second and the same MAC: it verifies, but it is the
    // signature keygate made (no other request can be made to match by it).
    expect(verifySignature(SECRET, `t=00${t.slice(2)},v1=${mac}`, fields).ok).toBe(true);
  });

  it('is stale beyond the tolerance either way, and a far-future t (12 digits) never verifies', async () => {
    const seen = await signed('GET', '/v1/calls/stale');
    const header = field(seen, 'x-keygate-signature');
    const fields = { method: 'GET', path: '/v1/calls/stale', tenantId, keyId: field(seen, 'x-api-key-id') };
    const t = Number(/^t=(\d+)/.exec(header)![1]);
    expect(verifySignature(SECRET, header, fields, { nowSeconds: t + 300 }).ok).toBe(true);
    expect(verifySignature(SECRET, header, fields, { nowSeconds: t + 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, header, fields, { nowSeconds: t - 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(SECRET, `t=999999999999,v1=${header.slice(-64)}`, fields)).toEqual({ ok: false, reason: 'stale' });
  });
});
