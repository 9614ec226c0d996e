import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DROP, fateOf, KEEP, NAMED_REMOVALS, removalList, type RemovalContext } from '../../../src/decision/strip.ts';
import { DOCS } from '../../helpers/gateways.ts';

// The removal rule's named fields are cleared by the gateways' configurations (keygate refuses, on the nginx and
// forward-auth forms, any field it would remove that is not named): each configuration must name every one.

const nginx = readFileSync(join(DOCS, 'nginx.conf'), 'utf8');
const caddy = readFileSync(join(DOCS, 'Caddyfile'), 'utf8');
const traefik = parse(readFileSync(join(DOCS, 'traefik-dynamic.yaml'), 'utf8')) as any;

/** The nginx location that proxies to the upstream (not the check's). */
const nginxMain = nginx.slice(nginx.indexOf('location / {'), nginx.indexOf('location = /_keygate'));

describe('docs/gateways/ clear every field the removal rule names', () => {
  it.each(NAMED_REMOVALS)('%s', (name) => {
    expect(new RegExp(`^\\s*proxy_set_header\\s+${name}\\s`, 'im').test(nginxMain), 'nginx.conf').toBe(true);
    expect(new RegExp(`^\\s*request_header\\s+-${name}\\s*$`, 'im').test(caddy), 'Caddyfile').toBe(true);
    // Traefik sets X-Forwarded-Host, -Port and -Uri itself (trustForwardHeader: false).
    if (!['x-forwarded-host', 'x-forwarded-port', 'x-forwarded-uri'].includes(name)) {
      const cleared = Object.entries(traefik.http.middlewares['keygate-strip-key'].headers.customRequestHeaders as Record<string, string>)
        .some(([n, v]) => n.toLowerCase() === name && v === '');
      expect(cleared, 'traefik-dynamic.yaml').toBe(true);
    }
  });
});

describe("docs/gateways/ keep a client's trace context from keygate's check", () => {
  // keygate continues the trace a trusted gateway's check carries: the gateway must not pass on the client's.
  it.each(['traceparent', 'tracestate'])('%s', (name) => {
    const check = nginx.slice(nginx.indexOf('location = /_keygate'));
    expect(new RegExp(`^\\s*proxy_set_header\\s+${name}\\s+""`, 'im').test(check.slice(0, check.indexOf('}'))), 'nginx.conf').toBe(true);
    const forwardAuth = caddy.slice(caddy.indexOf('forward_auth 127.0.0.1:8081'));
    expect(new RegExp(`^\\s*header_up\\s+-${name}\\s*$`, 'im').test(forwardAuth.slice(0, forwardAuth.indexOf('}'))), 'Caddyfile').toBe(true);
    const preflight = nginx.slice(nginx.indexOf('location = /_keygate_preflight'));
    expect(new RegExp(`^\\s*proxy_set_header\\s+${name}\\s+""`, 'im').test(preflight.slice(0, preflight.indexOf('}'))), 'nginx.conf preflight').toBe(true);
    const caddyPreflight = caddy.slice(caddy.indexOf('reverse_proxy @preflight'));
    expect(new RegExp(`^\\s*header_up\\s+-${name}\\s*$`, 'im').test(caddyPreflight.slice(0, caddyPreflight.indexOf('}'))), 'Caddyfile preflight').toBe(true);
    const chain = traefik.http.routers.api.middlewares as string[];
    const before = chain.slice(0, chain.indexOf('keygate'));
    const cleared = before.some((m) => Object.entries(traefik.http.middlewares[m].headers?.customRequestHeaders ?? {}).some(([n, v]) => n.toLowerCase() === name && v === ''));
    expect(cleared, 'traefik-dynamic.yaml').toBe(true);
  });
});

describe("docs/gateways/ send the upstream its own Host, as keygate's proxy does", () => {
  // An upstream that routes by host name would otherwise hand the request to whichever site the client named.
  // nginx and Caddy are run with these files too (test/security/authorizer.attacks.test.ts); Traefik is not.
  it('nginx, Caddy and Traefik', () => {
    expect(/^\s*proxy_set_header\s+Host\s+127\.0\.0\.1:3000;/m.test(nginxMain), 'nginx.conf').toBe(true);
    expect(/reverse_proxy 127\.0\.0\.1:3000 \{\s*header_up Host \{upstream_hostport\}/.test(caddy), 'Caddyfile').toBe(true);
    expect(traefik.http.services.api.loadBalancer.passHostHeader, 'traefik-dynamic.yaml').toBe(false);
  });
});

describe('docs/gateways/ answer a CORS preflight with keygate\'s answer, never forwarding it', () => {
  // A preflight carries no key: forwarded, it would reach any path of the upstream with its body. nginx and Caddy are
  // run with these files (test/security/authorizer.attacks.test.ts); here, that each sends it to keygate's check
  // before anything could forward it. Traefik cannot (docs/gateways/README.md).
  it('nginx', () => {
    expect(/^\s*if \(\$kg_preflight = OPTIONS\) \{\s*rewrite \^ \/_keygate_preflight last;/m.test(nginxMain.slice(0, nginxMain.indexOf('auth_request'))), 'nginx.conf').toBe(true);
    const preflight = nginx.slice(nginx.indexOf('location = /_keygate_preflight'));
    const block = preflight.slice(0, preflight.indexOf('\n    }'));
    expect(block).toMatch(/^\s*internal;/m);
    expect(block).toMatch(/^\s*proxy_pass http:\/\/keygate_authz\/auth-request;/m);
    expect(block).toMatch(/^\s*proxy_pass_request_body off;/m);
    expect(block).not.toMatch(/keygate_app/);
  });
  it('Caddy', () => {
    expect(caddy.indexOf('reverse_proxy @preflight 127.0.0.1:8081')).toBeGreaterThan(0);
    expect(caddy.indexOf('reverse_proxy @preflight')).toBeLessThan(caddy.indexOf('forward_auth 127.0.0.1:8081'));
    expect(/@preflight \{\s*method OPTIONS\s*header Origin \*\s*header Access-Control-Request-Method \*\s*\}/.test(caddy)).toBe(true);
  });
});

describe('the removal rule', () => {
  it('drops every spelling of the fields keygate sets and of the credential, from any peer', () => {
    for (const name of ['x_tenant_id', 'x-api_key-permissions', 'x_api_key', 'x_http_method_override', 'x-http-method-override', 'x_forwarded_for', 'x_real_ip', 'x_ssl_client_verify']) {
      expect(fateOf(name, true), name).toBe(DROP);
    }
    expect(fateOf('x_assistant_id', false)).toBe(KEEP);
    expect(fateOf('content-type', false)).toBe(KEEP);
  });

  it('keeps the forwarding and certificate fields of a trusted proxy only', () => {
    expect(fateOf('x-real-ip', false)).toBe(DROP);
    expect(fateOf('x-real-ip', true)).toBe(KEEP);
    expect(fateOf('x-ssl-client-fingerprint', false)).toBe(DROP);
    expect(fateOf('x-ssl-client-fingerprint', true)).toBe(KEEP);
  });

  it("lists a Bearer key beside X-API-Key, never a field the answer sets, and names what a gateway cannot clear", () => {
    const ctx: RemovalContext = { fromProxy: false, keepXfcc: false, usedBearer: false, keyPrefixes: ['kg_sk_', 'kg_pk_'], sets: new Set(['x-tenant-id', 'x-request-id']), own: new Set() };
    const unnamed: string[] = [];
    const list = removalList(['X-API-Key', 'kg_sk_a', 'Authorization', 'Bearer kg_sk_b', 'X_Tenant_Id', 'x', 'X-SSL-Client-Fingerprint', 'y', 'X-Tenant-Id', 'z'], ctx, unnamed);
    expect(list).toContain('authorization');
    expect(list).toContain('x_tenant_id');
    expect(list).toContain('x-http-method-override');
    expect(list).not.toContain('x-tenant-id');
    expect(unnamed).toEqual(['X_Tenant_Id', 'X-SSL-Client-Fingerprint']);
    expect(removalList(['Authorization', 'Bearer upstream-own'], ctx, null)).not.toContain('authorization');
  });
});
