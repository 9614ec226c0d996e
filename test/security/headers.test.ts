import { request } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// The rule "Forwarded request": from a peer outside server.trustedProxies, the fields that
// claim another client address, scheme, host, path or client certificate never reach the upstream (in any
// case, duplicated or not); from a trusted proxy they pass. And no second credential travels on: every
// X-API-Key, and every `Authorization: Bearer <keygate key>`, whichever credential authenticated. The
// upstream is a real node:http server recording the raw header list it received.

const servers = useServers();
let direct: KeygateProcess; // the test client (127.0.0.1) is an untrusted peer
let behindProxy: KeygateProcess; // 127.0.0.1 is a trusted proxy
let key: string;
let otherKey: string;

beforeAll(async () => {
  [direct, behindProxy] = await Promise.all([servers.keygate(), servers.keygate({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } })]);
  ({ key } = await createTenant(direct, { name: 'headers', plan: 'pro' }));
  otherKey = (await self(direct, key, 'POST', '/api-keys', { name: 'second' })).body.key as string;
});

/** Sends a raw header list (names exactly as given, duplicates kept) and returns the raw list the upstream saw. */
async function seenUpstream(kg: KeygateProcess, headers: string[]): Promise<string[]> {
  const path = `/v1/h/${Math.random().toString(36).slice(2)}`;
  const status = await new Promise<number>((resolve, reject) => {
    // A raw list is sent as it is: node adds no Host of its own.
    const req = request({ host: '127.0.0.1', port: kg.port, path, headers: ['Host', `127.0.0.1:${kg.port}`, ...headers] }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
  expect(status).toBe(200);
  const seen = servers.upstream.seen.find((s) => s.url === path);
  expect(seen).toBeDefined();
  return seen!.rawHeaders;
}

const valuesOf = (raw: string[], name: string) => raw.flatMap((n, i) => (i % 2 === 0 && n.toLowerCase() === name ? [raw[i + 1]!] : []));
const namesOf = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

/** Every field a direct client must not be able to set for the upstream, each sent twice in two spellings. */
const SPOOFABLE = [
  'Forwarded', 'X-Real-IP', 'True-Client-IP', 'X-Original-URL', 'X-Rewrite-URL', 'X-Forwarded-Prefix',
  'X-Client-IP', 'CF-Connecting-IP', 'X-Forwarded-Uri', 'X-Original-URI', 'X-Script-Name',
  // client certificates: nginx/HAProxy/Apache conventions, RFC 9440, Traefik, AWS ALB, Cloudflare, CloudFront, Azure
  'X-Client-Cert', 'X-SSL-Client-Cert', 'SSL-Client-Cert', 'X-Client-Certificate', 'X-SSL-Client-Verify', 'Client-Cert',
  'X-Forwarded-Tls-Client-Cert', 'X-Forwarded-Tls-Client-Cert-Info', 'X-Amzn-Mtls-Clientcert', 'X-Amzn-Mtls-Clientcert-Subject',
  'Cf-Cert-Verified', 'CloudFront-Viewer-Cert-Sha256', 'X-ARR-ClientCert',
];

function spoofedHeaders(): string[] {
  const out: string[] = [];
  for (const name of SPOOFABLE) out.push(name, `first-${name}`, name.toUpperCase(), `second-${name}`);
  return out;
}

describe('forwarding and client-certificate fields', () => {
  it('removes every spoofable field (any case, duplicated) sent by a direct client', async () => {
    const raw = await seenUpstream(direct, ['X-API-Key', key, ...spoofedHeaders(), 'X-Custom', 'kept']);
    const names = namesOf(raw);
    for (const name of SPOOFABLE) expect(names, name).not.toContain(name.toLowerCase());
    expect(valuesOf(raw, 'x-custom')).toEqual(['kept']);
    // keygate's own X-Forwarded-For names the real peer
    expect(valuesOf(raw, 'x-forwarded-for')).toEqual(['127.0.0.1']);
  });

  it('passes them on, unchanged, from a trusted proxy', async () => {
    const raw = await seenUpstream(behindProxy, ['X-API-Key', key, ...spoofedHeaders()]);
    for (const name of SPOOFABLE) expect(valuesOf(raw, name.toLowerCase()), name).toEqual([`first-${name}`, `second-${name}`]);
  });

  it('drops method overrides from every peer (keygate authorised the request method, not the override)', async () => {
    for (const kg of [direct, behindProxy]) {
      const raw = await seenUpstream(kg, ['X-API-Key', key, 'X-HTTP-Method-Override', 'DELETE', 'x-http-method', 'DELETE', 'X-Method-Override', 'PUT']);
      expect(namesOf(raw).filter((n) => n.includes('method'))).toEqual([]);
    }
  });
});

describe('no second credential reaches the upstream', () => {
  it('X-API-Key with Authorization: Bearer <another keygate key>: neither travels on', async () => {
    for (const authorization of [`Bearer ${otherKey}`, `bearer ${otherKey}`, `BEARER   ${otherKey}`, 'Bearer kg_pk_0123456789abcdef']) {
      const raw = await seenUpstream(direct, ['X-API-Key', key, 'Authorization', authorization]);
      expect(namesOf(raw), authorization).not.toContain('authorization');
      expect(namesOf(raw)).not.toContain('x-api-key');
      expect(raw.join('\n')).not.toContain(otherKey);
      expect(raw.join('\n')).not.toContain(key);
    }
  });

  it('Authorization: Bearer <keygate key> that authenticated, beside a second one: none travels on', async () => {
    const raw = await seenUpstream(direct, ['Authorization', `Bearer ${key}`, 'authorization', `Bearer ${otherKey}`]);
    expect(namesOf(raw)).not.toContain('authorization');
    expect(raw.join('\n')).not.toContain(otherKey);
  });

  it("keeps an Authorization that is the upstream's own (another bearer token, or another scheme)", async () => {
    const jwt = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl';
    expect(valuesOf(await seenUpstream(direct, ['X-API-Key', key, 'Authorization', jwt]), 'authorization')).toEqual([jwt]);
    const basic = 'Basic dXNlcjpwYXNz';
    expect(valuesOf(await seenUpstream(direct, ['X-API-Key', key, 'Authorization', basic]), 'authorization')).toEqual([basic]);
  });
});
