import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { checksum } from '../../src/keys/format.ts';
import { call, createTenant, expectError, rawRequest, self } from '../helpers/api.ts';
import { consoleApi, consoleLogin, cookieOf, OPERATORS, operatorConfig, signIn } from '../helpers/console.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { tool } from '../helpers/tools.ts';
import { openWebSocket } from '../helpers/ws-raw.ts';

// Session tokens and the operator console attacked with real processes: replicas and workers on one Redis, a
// replica that has retired the signing key, hand-edited tokens, tokens in every place a client can put one, and
// the console reached from the public listener, from spoofed addresses and through tenant-controlled text in a
// real Chromium.

const OLD = 'kid1:an-old-token-signing-secret-of-32-chars-or-more';
const NEW = 'kid2:a-new-token-signing-secret-of-32-chars-or-more';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

let redis: RedisServer;
let upstream: Server;
const seen: Seen[] = [];
/** a: two workers, ring kid1 only; b: one worker, ring kid1 + kid2 (signs with kid1); c: kid1 retired. */
let a!: KeygateProcess;
let b!: KeygateProcess;
let c!: KeygateProcess;

beforeAll(async () => {
  const { WebSocketServer } = await import('ws');
  upstream = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ url: req.url }));
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => (offered.has('voice.v1') ? 'voice.v1' : false) });
  upstream.on('upgrade', (req, socket, head) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(m)));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  redis = await startRedis();
  const config = { websocket: { revalidateSeconds: 1 }, admin: { tokens: operatorConfig } };
  [a, b, c] = await Promise.all([
    startKeygate({ config: { ...config, server: { workers: 2 } }, env: { KEYGATE_TOKEN_SIGNING_KEYS: OLD }, upstream: upstreamUrl, redisUrl: redis.url }),
    startKeygate({ config, env: { KEYGATE_TOKEN_SIGNING_KEYS: `${OLD},${NEW}` }, upstream: upstreamUrl, redisUrl: redis.url }),
    startKeygate({ config, env: { KEYGATE_TOKEN_SIGNING_KEYS: NEW }, upstream: upstreamUrl, redisUrl: redis.url }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  upstream?.close();
  await redis?.close();
});

async function backend(kg: KeygateProcess = b) {
  const { tenant, key: root } = await createTenant(kg, { name: 'attacked', plan: 'pro' });
  const made = await self(kg, root, 'POST', '/api-keys', { name: 'backend', permissions: ['session-tokens:write', 'voice:connect', 'calls:read'] });
  expect(made.status).toBe(201);
  return { tenant, root, key: made.body.key as string, keyId: made.body.id as string };
}
const mint = async (kg: KeygateProcess, key: string, body: Record<string, unknown> = {}) => {
  const r = await self(kg, key, 'POST', '/session-tokens', body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { token: string; id: string };
};
const bearer = (kg: KeygateProcess, token: string, path = '/v1/calls/1', headers: Record<string, string> = {}) =>
  call<any>(`${kg.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

const open = openWebSocket;
const closeAll = (results: Array<{ ws: WebSocket } | { status: number; code: string }>) => {
  for (const r of results) if ('ws' in r) r.ws.close();
};

/** A token with its payload replaced and its checksum made right again (a scanner-valid, wrongly signed token). */
function withPayload(token: string, edit: (payload: string) => string): string {
  const [payload, kid, sig] = token.slice('kg_st_'.length, -6).split('.') as [string, string, string];
  const body = `kg_st_${edit(payload)}.${kid}.${sig}.`;
  return body + checksum(body);
}
function withParts(token: string, edit: (parts: [string, string, string]) => [string, string, string]): string {
  const parts = token.slice('kg_st_'.length, -6).split('.').slice(0, 3) as [string, string, string];
  const body = `kg_st_${edit(parts).join('.')}.`;
  return body + checksum(body);
}

describe('session tokens under attack', () => {
  it('spends maxUses exactly once each when 60 requests race across two replicas, one with two workers', async () => {
    const { key } = await backend();
    const t = await mint(b, key, { maxUses: 5, ttlSeconds: 300 });
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => bearer(i % 3 === 0 ? b : a, t.token)));
    expect(results.filter((r) => r.status === 200).length).toBe(5);
    for (const r of results) if (r.status !== 200) expectError(r, 401, 'invalid_api_key');
  });

  it('opens exactly maxSessions sessions when 40 upgrades race across replicas and workers, by query and by subprotocol', async () => {
    const { key } = await backend();
    const t = await mint(b, key, { maxSessions: 3, ttlSeconds: 300 });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? open(a, `/v1/voice/asst_1/stream?token=${t.token}`) : open(b, '/v1/voice/asst_1/stream', ['keygate.token', t.token, 'voice.v1']))),
    );
    expect(results.filter((r) => 'ws' in r).length).toBe(3);
    closeAll(results);
  });

  it('dies on every door of every replica within seconds of its key being revoked', async () => {
    const { key, keyId, root } = await backend();
    const t = await mint(b, key, { maxSessions: 5, ttlSeconds: 300 });
    const live = await open(a, `/v1/voice/asst_1/stream?token=${t.token}`);
    expect('ws' in live).toBe(true);
    const closed = new Promise<number>((r) => (live as { ws: WebSocket }).ws.once('close', (code) => r(code)));
    expect((await bearer(a, t.token)).status).toBe(200);
    expect((await bearer(c, key)).status).toBe(200);
    const started = performance.now();
    expect((await self(b, root, 'DELETE', `/api-keys/${keyId}`)).status).toBeLessThan(300);
    await expect.poll(async () => (await bearer(a, t.token)).status, { timeout: 5_000, interval: 20 }).toBe(401);
    const httpMs = performance.now() - started;
    // Every door, every replica: none lets the token (or the key) through now.
    for (const kg of [a, b]) {
      expect((await bearer(kg, t.token)).status).toBe(401);
      expect(await open(kg, `/v1/voice/asst_1/stream?token=${t.token}`)).toMatchObject({ status: 401 });
    }
    expect((await bearer(c, key)).status).toBe(401);
    expect(await closed).toBe(1008);
    console.log(`token refused ${Math.round(httpMs)} ms after its key was revoked on another replica; live session closed ${Math.round(performance.now() - started)} ms after`);
  });

  it('verifies only with a signing key in the ring: a replica that retired kid1 refuses its tokens; kid2 tokens work where kid2 is listed', async () => {
    const { key } = await backend();
    const old = await mint(a, key, { maxUses: 10 });
    expect(old.token).toContain('.kid1.');
    expect((await bearer(b, old.token)).status).toBe(200);
    expectError(await bearer(c, old.token), 401, 'invalid_api_key');
    const fresh = await mint(c, key, { maxUses: 10 });
    expect(fresh.token).toContain('.kid2.');
    expect((await bearer(b, fresh.token)).status).toBe(200);
    expectError(await bearer(a, fresh.token), 401, 'invalid_api_key');
    // Relabelling an old token with the kid the retired replica knows does not make it verify.
    expectError(await bearer(c, withParts(old.token, ([p, , s]) => [p, 'kid2', s])), 401, 'invalid_api_key');
  });

  it('refuses a hand-edited token in every encoding: padded, standard base64, re-signed with no key, widened claims, re-padded signature', async () => {
    const { key } = await backend();
    const t = await mint(b, key, { maxUses: 100, permissions: ['calls:read'] });
    expect((await bearer(b, t.token)).status).toBe(200);
    const claims = JSON.parse(Buffer.from(t.token.slice('kg_st_'.length).split('.')[0]!, 'base64url').toString('utf8'));
    const widened = Buffer.from(JSON.stringify({ ...claims, p: ['*'], u: 1_000_000, exp: claims.exp + 86_400 })).toString('base64url');
    const forged = [
      withPayload(t.token, (p) => `${p}=`),
      withPayload(t.token, (p) => `${p}==`),
      withPayload(t.token, (p) => Buffer.from(p, 'base64url').toString('base64')),
      withPayload(t.token, (p) => `${p} `.trim() + 'A'),
      withPayload(t.token, () => widened),
      withParts(t.token, ([p, k, s]) => [p, k, `${s}=`]),
      withParts(t.token, ([p, k, s]) => [p, k, Buffer.from(s, 'base64url').toString('base64')]),
      withParts(t.token, ([p]) => [p, '', '']),
      withParts(t.token, ([p, k]) => [p, k, '']),
      withParts(t.token, ([p, , s]) => [p, 'KID1', s]),
      t.token.slice(0, -1) + (t.token.endsWith('A') ? 'B' : 'A'),
      t.token.toUpperCase(),
    ];
    for (const f of forged) {
      expect(f).not.toBe(t.token);
      expectError(await bearer(b, f), 401, 'invalid_api_key');
      expect(await open(b, `/v1/voice/asst_1/stream?token=${encodeURIComponent(f)}`)).toMatchObject({ status: 401 });
    }
  });

  it('never forwards a ?token= on a plain HTTP request, nor reads it as the credential, nor writes it to the access log', async () => {
    const { key } = await backend();
    const t = await mint(b, key, { maxUses: 10 });
    // A plain request reads no credential from the query: the token there authenticates nothing.
    expectError(await call(`${b.url}/v1/calls/1?token=${t.token}`, {}), 401, 'missing_api_key');
    const r = await call<any>(`${b.url}/v1/calls/7?a=1&token=${t.token}&b=2`, { headers: { 'x-api-key': key } });
    expect(r.status).toBe(200);
    expect(r.body.url).toBe('/v1/calls/7?a=1&b=2');
    const r2 = await bearer(b, t.token, `/v1/calls/8?token=${encodeURIComponent(t.token)}`);
    expect(r2.status).toBe(200);
    expect(r2.body.url).toBe('/v1/calls/8');
    expect(JSON.stringify(seen)).not.toContain(t.token);
    expect(b.output()).not.toContain(t.token);
    expect(b.output()).not.toContain(t.token.slice(0, 40));
  });

  it('takes the token from the keygate.token pair among several subprotocols, and forwards only the others', async () => {
    const { key } = await backend();
    const t = await mint(b, key, { maxSessions: 10 });
    const other = await mint(b, key, { maxSessions: 10 });
    const cases: string[][] = [
      ['voice.v1', 'keygate.token', t.token],
      ['keygate.token', t.token, 'voice.v1', 'chat'],
      ['keygate.token', t.token, 'voice.v1', other.token],
      [other.token, 'voice.v1', 'keygate.token', t.token],
      // A keygate key offered as a subprotocol (a client that put it there by mistake) does not travel on either.
      ['keygate.token', t.token, 'voice.v1', key],
    ];
    for (const [i, protocols] of cases.entries()) {
      const path = `/v1/voice/asst_1/stream?case=${i}`;
      const r = await open(b, path, protocols);
      expect('ws' in r, protocols.join()).toBe(true);
      if ('ws' in r) {
        expect(r.ws.protocol).toBe('voice.v1');
        r.ws.close();
      }
      const up = seen.findLast((s) => s.url === path)!;
      expect(up.headers['sec-websocket-protocol']).not.toContain('kg_st_');
      expect(up.headers['sec-websocket-protocol']).not.toContain('keygate.token');
      expect(up.headers['sec-websocket-protocol']).not.toContain(key);
    }
    // The marker alone, or followed by nothing usable, authenticates nothing.
    expect(await open(b, '/v1/voice/asst_1/stream', ['keygate.token', 'voice.v1'])).toMatchObject({ status: 401 });
    expect(await open(b, '/v1/voice/asst_1/stream', ['voice.v1', 'keygate.token'])).toMatchObject({ status: 401 });
  });

  it('cannot mint another token, nor reach the management API or the admin API, on any replica', async () => {
    const { tenant, key } = await backend();
    const t = await mint(b, key, { maxUses: 100 });
    for (const kg of [a, b]) {
      const r = await call<any>(`${kg.url}/keygate/v1/session-tokens`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: '{}' });
      expectError(r, 403, 'insufficient_permissions');
      const up = await call<any>(`${kg.url}/KEYGATE/v1/session-tokens`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: '{}' });
      expect(up.body.token).toBeUndefined();
      expect((await call<any>(`${kg.opsUrl}/admin/v1/tenants/${tenant.id}/session-tokens`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ keyId: 'x' }) })).status).toBe(401);
      expect((await call<any>(`${kg.opsUrl}/console/login`, { method: 'POST', headers: { origin: kg.opsUrl, 'content-type': 'application/json' }, body: JSON.stringify({ token: t.token }) })).status).toBe(401);
    }
  });
});

describe('the console under attack', () => {
  it('is not served on the public listener, with or without a key', async () => {
    const { root: key } = await backend();
    const login = await call<any>(`${b.url}/console/login`, { method: 'POST', headers: { origin: b.url, 'content-type': 'application/json' }, body: JSON.stringify({ token: OPERATORS.alice.token }) });
    expect(login.headers.get('set-cookie')).toBeNull();
    expect(login.status).toBe(401);
    for (const path of ['/console', '/console/login', '/console/api/admin/v1/tenants']) {
      const r = await call<any>(`${b.url}${path}`, { headers: { 'x-api-key': key } });
      // Forwarded to the upstream like any path (the echo upstream answers the path), never keygate's console.
      expect(r.body?.url, `${r.status} ${JSON.stringify(r.body)}`).toBe(path);
      expect(r.headers.get('content-security-policy')).toBeNull();
    }
  });

  it('blocks sign-in guessing per real address: X-Forwarded-For from an untrusted peer does not buy new attempts', async () => {
    // A replica of its own with a small failure threshold (the shared ones are started with a very high one).
    // The embedded store: on the shared Redis the other replicas' failures from 127.0.0.1 would count too.
    const kg = await startKeygate({ config: { admin: { tokens: operatorConfig }, limits: { failedAttempts: { maxFailures: 3, windowSeconds: 60, blockSeconds: 60 } } } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await consoleLogin(kg, `wrong-${i}`, { origin: kg.opsUrl, 'x-forwarded-for': `203.0.113.${i}`, 'x-real-ip': `198.51.100.${i}` });
        statuses.push(r.status);
      }
      expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
      expect(statuses.slice(4)).toEqual([429, 429, 429, 429]);
      // Blocked even with the right token.
      expectError(await consoleLogin(kg, OPERATORS.alice.token, { origin: kg.opsUrl, 'x-forwarded-for': '192.0.2.1' }), 429, 'too_many_failed_attempts');
    } finally {
      await kg.stop();
    }
  });

  it('accepts a session cookie on no replica once it is signed out on another', async () => {
    const r = await consoleLogin(a, OPERATORS.alice.token, { origin: a.opsUrl });
    const cookie = `kg_console=${cookieOf(r)!}`;
    expect((await consoleApi(b, '/tenants', { origin: b.opsUrl, cookie })).status).toBe(200);
    expect((await call(`${c.opsUrl}/console/logout`, { method: 'POST', headers: { origin: c.opsUrl, cookie } })).status).toBe(204);
    expectError(await consoleApi(a, '/tenants', { origin: a.opsUrl, cookie }), 401, 'missing_api_key');
    expectError(await consoleApi(b, '/tenants', { origin: b.opsUrl, cookie }), 401, 'missing_api_key');
  });

  it('refuses a cookie from another Host (DNS rebinding): the Origin that matches an attacker Host still finds no session', async () => {
    const r = await consoleLogin(b, OPERATORS.alice.token, { origin: b.opsUrl });
    const cookie = `kg_console=${cookieOf(r)!}`;
    // A rebinding page cannot send the operator's cookie (the browser keeps it for the real host); without it, nothing.
    const rebound = await rawRequest(`${b.opsUrl}/console/api/admin/v1/tenants`, { headers: { origin: 'http://rebound.example:1', host: 'rebound.example:1' } });
    expect(rebound.status).toBe(401);
    expect(JSON.parse(rebound.body).error.code).toBe('missing_api_key');
    // With a mismatched Host and Origin, even the real cookie is refused.
    expectError(await consoleApi(b, '/tenants', { origin: 'http://rebound.example:1', cookie }), 403, 'origin_not_allowed');
  });
});

describe('the console renders tenant-controlled text inert (Chromium)', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: tool('chromium'), args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('shows hostile tenant names, key names, metadata, audit details and user agents as text; no markup is made from them', async () => {
    const xss = (n: string) => `<img src=x data-xss="${n}" onerror="window.__xss='${n}'"><svg data-xss="${n}" onload="window.__xss='${n}'"></svg>"'><a data-xss="${n}" href="javascript:window.__xss='${n}'">x</a>`;
    const { tenant, key: root } = await createTenant(b, { name: xss('tenant').slice(0, 100), plan: 'pro' });
    const made = await self(b, root, 'POST', '/api-keys', { name: xss('key').slice(0, 100), permissions: ['calls:read'], metadata: { note: xss('metadata') } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    // The key's traffic, with a hostile user agent, and a refused request for the audit/usage views.
    await call(`${b.url}/v1/calls/1`, { headers: { 'x-api-key': made.body.key, 'user-agent': xss('ua') } });
    expect((await self(b, root, 'PATCH', `/api-keys/${made.body.id}`, { name: xss('renamed').slice(0, 100) })).status).toBe(200);
    const hook = await self(b, root, 'POST', '/webhooks', { url: `https://hooks.example/${encodeURIComponent(xss('hook'))}`, events: ['key.revoked'] });
    expect(hook.status, JSON.stringify(hook.body)).toBeLessThan(500);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const dialogs: string[] = [];
    const violations: string[] = [];
    try {
      const page = await signIn(context, b, OPERATORS.alice.token);
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
      });
      for (const hash of [`#/tenants?q=${encodeURIComponent('<img')}`, '#/tenants', `#/tenants/${tenant.id}`, `#/tenants/${tenant.id}/keys/${made.body.id}`, `#/audit/${tenant.id}`, '#/fleet', '#/webhooks']) {
        await page.goto(`${b.opsUrl}/console/${hash}`);
        await page.waitForLoadState('networkidle');
        await page.waitForTimeout(300);
        // Evaluated as source in the page (this file is compiled without the DOM's types).
        const injected = await page.evaluate(`({ nodes: document.querySelectorAll('[data-xss], [onerror], [onload]').length, flag: window.__xss ?? null, js: document.querySelectorAll('a[href^="javascript:" i]').length })`);
        expect(injected, hash).toEqual({ nodes: 0, flag: null, js: 0 });
      }
      // The hostile text is on screen as text somewhere (the tenant page shows the renamed key).
      await page.goto(`${b.opsUrl}/console/#/tenants/${tenant.id}`);
      await page.getByText('<img src=x data-xss="renamed"', { exact: false }).first().waitFor({ timeout: 10_000 });
    } finally {
      await context.close();
    }
    expect(dialogs).toEqual([]);
    expect(violations).toEqual([]);
  }, 90_000);
});
