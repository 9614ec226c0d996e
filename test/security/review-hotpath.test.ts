import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, proxied, rawRequest } from '../helpers/api.ts';
import { ADMIN_TOKEN } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// Adversarial review of the hot-path changes since 594f7c7: the background refresh of the key cache, the one
// deadline list for upstream exchanges, the internal listener's probes without Express and the management APIs
// loaded on first request. Each test states the behaviour keygate must keep.

const servers = useServers();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The verification records (`vr:<hash>`) of one key, found in Redis by their pointer. */
async function verificationRecordsOf(keyId: string): Promise<string[]> {
  const client = servers.redis.client;
  const names = await client.keys('*vr:*');
  if (names.length === 0) return [];
  const values = await client.mget(...names);
  return names.filter((_, i) => values[i] !== null && (JSON.parse(values[i]!) as { k: string }).k === keyId);
}

describe('key cache background refresh', () => {
  it('a key revoked behind keygate\'s back (its event lost) stops verifying within the cache TTL although it is used all the time', async () => {
    const kg = await servers.keygate({ config: { cache: { ttlSeconds: 2, negativeTtlSeconds: 1, staleIfErrorSeconds: 300 } } });
    const { key, apiKey } = await createTenant(kg, { name: 'lost-event' });
    expect((await proxied(kg, '/x', { 'x-api-key': key })).status).toBe(200);
    const vr = await verificationRecordsOf(apiKey.id as string);
    expect(vr.length).toBe(1);
    // Keep the key hot so that every entry is refreshed in the background before its TTL ends.
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      expect((await proxied(kg, '/x', { 'x-api-key': key })).status).toBe(200);
      await sleep(20);
    }
    // The verification record removed without a published event (as a lost pub/sub message would leave it).
    await servers.redis.client.del(...vr);
    const revokedAt = Date.now();
    let lastOk = revokedAt;
    while (Date.now() - revokedAt < 5_000) {
      const r = await proxied(kg, '/x', { 'x-api-key': key });
      if (r.status === 200) lastOk = Date.now();
      else expect(r.status).toBe(401);
      await sleep(20);
    }
    // Before the change the bound was the TTL (2 s); the refresh must not extend it.
    expect(lastOk - revokedAt).toBeLessThan(2_000 + 500);
  }, 20_000);

  it('a revoke racing the background refresh is never undone: refused from the revoke\'s answer on', async () => {
    // ttl 0.3 s: entries are in their last third (refresh queued, tick 25 ms) most of the time.
    const kg = await servers.keygate({ config: { cache: { ttlSeconds: 0.3, negativeTtlSeconds: 0.3, staleIfErrorSeconds: 300 } } });
    const { tenant } = await createTenant(kg, { name: 'refresh-race', maxKeys: 50 });
    for (let round = 0; round < 15; round++) {
      const made = await admin(kg, 'POST', `/tenants/${tenant.id}/api-keys`, { permissions: ['*'] });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      const key = made.body.key as string;
      // Hot: many concurrent requests so refreshes are queued and in flight when the revoke lands.
      let stop = false;
      const hammer = (async () => {
        while (!stop) await Promise.all(Array.from({ length: 8 }, () => proxied(kg, '/x', { 'x-api-key': key })));
      })();
      await sleep(150 + round * 17);
      const revoked = await admin(kg, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.body.id}`);
      expect([200, 204]).toContain(revoked.status);
      stop = true;
      await hammer;
      // From the revoke's answer on, and for a while after (a late refresh would put the record back).
      for (let i = 0; i < 10; i++) {
        expect((await proxied(kg, '/x', { 'x-api-key': key })).status, `round ${round} request ${i}`).toBe(401);
        await sleep(40);
      }
    }
  }, 60_000);
});

describe('upstream deadline list', () => {
  let slow: Upstream;
  beforeAll(async () => {
    // /slow/* never answers; /fast answers at once; /late/<ms> answers after <ms>.
    slow = await startUpstream((req, res) => {
      req.resume();
      const url = req.url ?? '';
      if (url.startsWith('/slow')) return; // head never comes
      const late = /^\/late\/(\d+)/.exec(url);
      setTimeout(() => res.end('ok'), late ? Number(late[1]) : 0);
    });
  });
  afterAll(async () => {
    await slow?.close();
  });

  it('every exchange gets its 504 at its own deadline, not earlier and not much later, however they start and end', async () => {
    const timeoutMs = 600;
    const kg = await servers.keygate({ upstream: slow.url, config: { upstream: { timeoutMs } } });
    const { key } = await createTenant(kg, { name: 'deadlines', plan: 'enterprise' });
    const h = { 'x-api-key': key };
    expect((await proxied(kg, '/fast', h)).status).toBe(200);
    const timed = async (path: string, signal?: AbortSignal) => {
      const t0 = performance.now();
      try {
        const r = await fetch(`${kg.url}${path}`, { headers: h, signal });
        await r.text();
        return { status: r.status, ms: performance.now() - t0 };
      } catch {
        return { status: -1, ms: performance.now() - t0 };
      }
    };
    const jobs: Array<Promise<{ path: string; status: number; ms: number }>> = [];
    for (let i = 0; i < 30; i++) {
      const kind = i % 5;
      if (kind === 0) {
        // A client that leaves early: the upstream request is cancelled, and must not disturb the others' timers.
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 50 + i * 3);
        jobs.push(timed(`/slow/${i}`, ac.signal).then((r) => ({ path: 'abort', ...r })));
      } else if (kind === 1) jobs.push(timed(`/late/${(i * 37) % 400}`).then((r) => ({ path: 'late', ...r })));
      else jobs.push(timed(`/slow/${i}`).then((r) => ({ path: 'slow', ...r })));
      await sleep(i % 3 === 0 ? 35 : 5);
    }
    const results = await Promise.all(jobs);
    for (const r of results) {
      if (r.path === 'abort') expect(r.status).toBe(-1);
      else if (r.path === 'late') expect(r.status, JSON.stringify(r)).toBe(200);
      else {
        expect(r.status, JSON.stringify(r)).toBe(504);
        expect(r.ms, JSON.stringify(r)).toBeGreaterThanOrEqual(timeoutMs - 5);
        expect(r.ms, JSON.stringify(r)).toBeLessThan(timeoutMs + 400);
      }
    }
    // After a burst, a lone slow request still times out (the one timer is armed again).
    await sleep(1_500);
    const lone = await timed('/slow/lone');
    expect(lone.status).toBe(504);
    expect(lone.ms).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(lone.ms).toBeLessThan(timeoutMs + 400);
  }, 30_000);
});

/** A raw request on a fresh socket: the request line exactly as given. */
function rawLine(host: string, port: number, line: string, headers: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    {
      const sock = connect(port, host, () => sock.write(`${line}\r\nHost: x\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`));
      let buf = '';
      sock.setEncoding('latin1');
      sock.on('data', (c: string) => (buf += c));
      sock.on('error', reject);
      sock.on('close', () => {
        const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
        resolve({ status: m ? Number(m[1]) : 0, body: buf.slice(buf.indexOf('\r\n\r\n') + 4) });
      });
    }
  });
}

describe('internal listener probes and the lazily loaded admin API', () => {
  it('the first management requests, all at once and without the admin token, are all refused 401', async () => {
    const kg = await servers.keygate();
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        rawRequest(`${kg.opsUrl}/admin/v1/tenants`, { method: i % 2 ? 'GET' : 'POST', headers: { 'content-type': 'application/json', ...(i % 3 ? { authorization: 'Bearer wrong-token-0123456789' } : {}) }, body: i % 2 ? undefined : '{}' }),
      ),
    );
    for (const r of replies) expect(r.status, r.body).toBe(401);
    expect((await admin(kg, 'GET', '/tenants')).status).toBe(200);
  }, 20_000);

  it('refuses a caller without the admin token before reading its body: a malformed or oversized body gets 401, not 400 or 413', async () => {
    const kg = await servers.keygate({ config: { server: { maxBodyBytes: 1024 } } });
    const bodies = ['{not json', '{"a":1,"a":2}', JSON.stringify({ name: 'x'.repeat(10_000) })];
    for (const body of bodies) {
      const r = await rawRequest(`${kg.opsUrl}/admin/v1/tenants`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status, r.body).toBe(401);
      expect(JSON.parse(r.body).error.code).toBe('missing_api_key');
    }
    // With the token, the body is parsed as before.
    const parsed = await rawRequest(`${kg.opsUrl}/admin/v1/tenants`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: '{not json' });
    expect([parsed.status, JSON.parse(parsed.body).error.code]).toEqual([400, 'malformed_request']);
  }, 20_000);

  it('odd forms of the probe paths never reach the admin API without its token, and never break the listener', async () => {
    const kg = await servers.keygate();
    const { hostname, port } = new URL(kg.opsUrl);
    const lines = [
      'GET /healthz/..%2fadmin/v1/tenants HTTP/1.1',
      'GET /healthz/../admin/v1/tenants HTTP/1.1',
      'GET /healthz%2f..%2fadmin%2fv1%2ftenants HTTP/1.1',
      'GET http://x/admin/v1/tenants HTTP/1.1',
      'GET http://x/healthz/../admin/v1/tenants HTTP/1.1',
      'HEAD /admin/v1/tenants HTTP/1.1',
      'GET /ADMIN/V1/tenants HTTP/1.1',
      'GET //admin/v1/tenants HTTP/1.1',
      'GET /admin/v1//tenants HTTP/1.1',
      'GET /metrics/../admin/v1/tenants HTTP/1.1',
      'get /healthz HTTP/1.1',
      'GET * HTTP/1.1',
      'OPTIONS * HTTP/1.1',
      'GET healthz HTTP/1.1',
      'GET /healthz?/../admin/v1/tenants HTTP/1.1',
      'HEAD /metrics HTTP/1.1',
      'POST /healthz HTTP/1.1',
    ];
    for (const line of lines) {
      const r = await rawLine(hostname, Number(port), line, line.startsWith('POST') ? ['Content-Length: 0'] : []);
      expect(r.body, line).not.toMatch(/"tenants"|"items"|"data"/);
      if (/admin/i.test(line.split('?')[0]!) && r.status !== 404 && r.status !== 400) expect(r.status, line).toBe(401);
    }
    // The listener is still up and the probes still answer.
    expect((await fetch(`${kg.opsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${kg.opsUrl}/admin/v1/tenants`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    expect(kg.proc.exitCode).toBeNull();
  }, 20_000);

  it('the admin API asked for before the store is open is not served without its token later', async () => {
    const kg = await servers.keygate({ waitForPorts: 'ops' });
    const early = await rawRequest(`${kg.opsUrl}/admin/v1/tenants`, {});
    expect([401, 404]).toContain(early.status);
    await sleep(1_500);
    expect((await rawRequest(`${kg.opsUrl}/admin/v1/tenants`, {})).status).toBe(401);
    expect((await admin(kg, 'GET', '/tenants')).status).toBe(200);
  }, 20_000);
});
