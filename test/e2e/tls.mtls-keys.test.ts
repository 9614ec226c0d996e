import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// HTTPS on the public listener; client certificates requested, not required; keys with enforceMtls
// need one verified against tls.clientCa, and with clientCertFingerprints one of those.

const dir = mkdtempSync(join(tmpdir(), 'keygate-tls-'));
const f = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

function issue(name: string, subject: string, ca: string, extensions: string): void {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-subj', subject, '-out', f(`${name}.csr`));
  writeFileSync(f(`${name}.ext`), extensions);
  openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
}

let upstream: Upstream;
let kg: KeygateProcess;

beforeAll(async () => {
  for (const ca of ['ca', 'rogue']) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${ca}.key`), '-subj', `/CN=${ca}`, '-days', '2', '-out', f(`${ca}.crt`));
  }
  issue('server', '/CN=localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=dialer', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue('other', '/CN=other', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue('outsider', '/CN=outsider', 'rogue', 'extendedKeyUsage=clientAuth\n');
  upstream = await startUpstream();
  kg = await startKeygate({ upstream: upstream.url, config: { tls: { cert: f('server.crt'), key: f('server.key'), clientCa: f('ca.crt') } } });
});
afterAll(async () => {
  await kg?.stop();
  await upstream?.close();
});

function call(path: string, headers: Record<string, string>, cert?: string, body?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: kg.port,
        path,
        method: body ? 'POST' : 'GET',
        headers: body ? { ...headers, 'content-type': 'application/json' } : headers,
        ca: readFileSync(f('ca.crt')),
        ...(cert ? { cert: readFileSync(f(`${cert}.crt`)), key: readFileSync(f(`${cert}.key`)) } : {}),
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const fingerprint = (name: string) => new X509Certificate(readFileSync(f(`${name}.crt`))).fingerprint256;

describe('mTLS-bound keys', () => {
  it('serve HTTPS, require a verified certificate for enforceMtls keys, and pin fingerprints', async () => {
    const created = await fetch(`${kg.opsUrl}/admin/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'mtls', plan: 'pro' }),
    });
    const { apiKey } = (await created.json()) as { apiKey: { key: string } };
    const admin = apiKey.key;
    // A plain key works over HTTPS without a client certificate.
    expect((await call('/v1/x', { 'x-api-key': admin })).status).toBe(200);

    const bound = await call('/keygate/v1/api-keys', { 'x-api-key': admin }, undefined, JSON.stringify({ enforceMtls: true, permissions: ['calls:read'] }));
    expect(bound.status).toBe(201);
    const pinned = await call('/keygate/v1/api-keys', { 'x-api-key': admin }, undefined, JSON.stringify({ enforceMtls: true, clientCertFingerprints: [fingerprint('client')] }));
    expect(pinned.status).toBe(201);

    const none = await call('/v1/calls/x', { 'x-api-key': bound.body.key });
    expect([none.status, none.body.error.code]).toEqual([403, 'mtls_required']);
    const rogue = await call('/v1/calls/x', { 'x-api-key': bound.body.key }, 'outsider');
    expect([rogue.status, rogue.body.error.code]).toEqual([403, 'mtls_required']); // not verified against tls.clientCa
    expect((await call('/v1/calls/x', { 'x-api-key': bound.body.key }, 'client')).status).toBe(200);
    expect((await call('/v1/calls/x', { 'x-api-key': bound.body.key }, 'other')).status).toBe(200);

    expect((await call('/v1/x', { 'x-api-key': pinned.body.key }, 'client')).status).toBe(200);
    const wrong = await call('/v1/x', { 'x-api-key': pinned.body.key }, 'other');
    expect([wrong.status, wrong.body.error.code]).toEqual([403, 'client_certificate_not_allowed']);
    // The upstream learns the scheme was https.
    expect(upstream.seen.at(-2)!.headers['x-forwarded-proto']).toBe('https');
  });
});
